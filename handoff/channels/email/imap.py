"""Inbound email: an aioimaplib loop that hands every unseen message to the core.

One cycle searches `UID SEARCH UNSEEN`, fetches each message with `BODY.PEEK[]` (which does
not set \\Seen, RFC 3501 §6.4.5), awaits `handle(raw)` — which returns only once the message
is committed — and only then stores `\\Seen`. A crash between fetch and commit leaves the
message unseen, so the next cycle fetches it again; the core's unique index on
(channel, Message-ID) makes that redelivery a no-op if the commit had in fact happened.

A message that cannot be handled — unparseable, or failing `max_failures` times in a row — is
moved to the `quarantine` folder (created when missing), unseen, so it neither blocks the loop
nor disappears: an operator finds it there with any mail client.

Between cycles the loop waits in IDLE (RFC 2177) when the server offers it, and polls every
`poll_interval` seconds otherwise. It enters IDLE only after a cycle that fetched nothing and
heard of no new mail after its NOOP: a server announces mail that lands during a command in that
command's untagged answers (`* 5 EXISTS` after a `UID SEARCH` result that misses it — Dovecot
searches the mailbox as of its last sync) and never again in IDLE, so a loop that idled then
would not see that mail until something else arrived. aioimaplib drops an `EXISTS` that comes
with SEARCH, FETCH or STORE (it keeps those of NOOP and IDLE), so `_Protocol` counts them. As a
safety net against an announcement lost anyway, IDLE lasts at most `poll_interval` seconds (and
at most `idle_refresh`) before the loop looks again. A dropped connection or a server error
reconnects with exponential backoff and jitter.

With a `lease` (handoff.lease, in the database), one instance at a time reads the mailbox: the
others wait, trying to take the lease every `ttl / 3` seconds; the reader renews it as often,
and stops reading as soon as a renewal fails. When the reader dies, another takes over once
its lease expires (`ttl` seconds); `EmailChannel.close` releases it for an immediate takeover.

With `tls` (the default) the connection is implicit TLS (port 993) and the server's certificate
is verified against the system CAs plus `ca_file`; an untrusted one ends the session like any
failure (logged, reconnect with backoff) before credentials are sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from aioimaplib import IMAP4
from aioimaplib.aioimaplib import STOP_WAIT_SERVER_PUSH, Command, IMAP4ClientProtocol

from handoff import metrics
from handoff.backoff import exponential, spread
from handoff.channels.email.tls import client_context, untrusted
from handoff.lease import Lease

log = logging.getLogger(__name__)

T = TypeVar("T")


class ImapError(Exception):
    """The IMAP server refused a command; the loop reconnects."""


class Unprocessable(Exception):
    """`handle` can never process this message (e.g. unparseable): quarantine it at once."""


@dataclass(frozen=True)
class ImapConfig:
    """Server, credentials and timing of the inbound loop."""

    host: str
    port: int
    user: str
    password: str
    tls: bool = True
    ca_file: str = ""  # PEM CA(s) trusted besides the system ones
    mailbox: str = "INBOX"
    poll_interval: float = 30.0
    idle_refresh: float = 300.0
    timeout: float = 30.0
    backoff_min: float = 1.0
    backoff_max: float = 60.0
    use_idle: bool = True
    quarantine: str = "handoff-quarantine"
    max_failures: int = 5


@dataclass
class CycleStats:
    """What the last fetch cycle did, for logs and benchmarks."""

    fetched: int = 0
    delivered: int = 0
    failed: int = 0
    quarantined: int = 0
    announced: int = 0  # EXISTS answers heard after the cycle's NOOP: mail SEARCH may have missed
    seconds: float = 0.0


class _Protocol(IMAP4ClientProtocol):
    """aioimaplib's protocol, counting every `* n EXISTS` the server sends, whichever command
    it arrives with (aioimaplib itself drops those that come with SEARCH, FETCH or STORE)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, conn_lost_cb: Callable[[Exception | None], None]) -> None:
        super().__init__(loop, conn_lost_cb)
        self.exists_heard = 0

    def _untagged_response(self, line: bytes) -> Command:  # where aioimaplib hands over each untagged line
        if line.endswith(b" EXISTS"):
            self.exists_heard += 1
        return super()._untagged_response(line)


class _Client(IMAP4):
    """IMAP4 over `_Protocol`."""

    protocol: _Protocol

    def create_client(self, host: str, port: int, loop: asyncio.AbstractEventLoop | None,
                      conn_lost_cb: Callable[[Exception | None], None] | None = None,
                      ssl_context: ssl.SSLContext | None = None) -> None:
        running = loop or asyncio.get_running_loop()
        self.protocol = _Protocol(running, conn_lost_cb)
        self._client_task = running.create_task(
            running.create_connection(lambda: self.protocol, host, port, ssl=ssl_context))


def _ok(response, what: str):
    if response.result != "OK":
        raise ImapError(f"{what} failed: {response.result} {response.lines!r}")
    return response


class ImapLoop:
    """Fetch unseen mail forever, handing each raw message to `handle` before marking it seen."""

    def __init__(self, config: ImapConfig, handle: Callable[[bytes], Awaitable[None]],
                 lease: Lease | None = None) -> None:
        self.config = config
        self.handle = handle
        self.lease = lease
        self.reading = asyncio.Event()  # set while this instance holds the lease (or needs none)
        self.last_cycle = CycleStats()
        self.cycles = 0
        self.connected = asyncio.Event()
        self._client: _Client | None = None
        self._lost = asyncio.Event()
        self._failures: dict[int, int] = {}  # uid -> failed attempts in a row

    async def run(self) -> None:
        """Run until cancelled: read the mailbox while holding the lease (always, without one)."""
        if self.lease is None:
            self.reading.set()
            await self._read()
            return
        renew_every = self.lease.ttl / 3
        while True:
            if not await self._hold_lease():
                await asyncio.sleep(spread(renew_every, 0.2))
                continue
            log.info("email: this instance reads the mailbox (lease %s)", self.lease.name)
            self.reading.set()
            reader = asyncio.create_task(self._read(), name="email-imap-reader")
            try:
                while not reader.done():
                    await asyncio.wait({reader}, timeout=renew_every)
                    if not reader.done() and not await self._hold_lease():
                        log.warning("email: lost the mailbox lease %s; another instance reads now", self.lease.name)
                        break
            finally:
                self.reading.clear()
                reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reader

    async def _hold_lease(self) -> bool:
        assert self.lease is not None
        try:
            return await self.lease.acquire()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 — the database is unreachable: nothing could be committed anyway
            log.warning("email: cannot reach the database to hold the mailbox lease", exc_info=True)
            return False

    async def _read(self) -> None:
        """Read the mailbox until cancelled, reconnecting with backoff after any failure."""
        failures, delay = 0, self.config.backoff_min
        while True:
            started = time.monotonic()
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 — any failure means: reconnect
                bad_cert = untrusted(exc)
                if bad_cert is not None:
                    log.error("email: IMAP server %s:%s has an untrusted TLS certificate (%s; a private CA "
                              "goes in HANDOFF_EMAIL_CA_FILE); reconnecting in %.1fs",
                              self.config.host, self.config.port, bad_cert.verify_message, delay)
                else:
                    log.warning("email: IMAP session ended (%r); reconnecting in %.1fs", exc, delay)
            finally:
                self.connected.clear()
                await self._disconnect()
            if time.monotonic() - started > 60:
                failures, delay = 0, self.config.backoff_min  # the session was healthy for a while
            await asyncio.sleep(spread(delay, 0.2))
            failures += 1
            delay = exponential(failures, self.config.backoff_min, self.config.backoff_max)

    async def _connect(self) -> _Client:
        cfg = self.config
        self._lost = asyncio.Event()
        lost = self._lost
        client = _Client(
            cfg.host, cfg.port, timeout=cfg.timeout,
            conn_lost_cb=lambda exc: lost.set(),
            ssl_context=client_context(cfg.ca_file) if cfg.tls else None,
        )
        self._client = client
        await self._cmd(client.wait_hello_from_server())
        _ok(await self._cmd(client.login(cfg.user, cfg.password)), "LOGIN")
        _ok(await self._cmd(client.select(cfg.mailbox)), f"SELECT {cfg.mailbox}")
        return client

    async def _disconnect(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        if not self._lost.is_set():
            with contextlib.suppress(Exception):
                if client.has_pending_idle():
                    client.idle_done()
                await asyncio.wait_for(client.logout(), 2)
        with contextlib.suppress(Exception):
            if client.protocol.transport is not None:
                client.protocol.transport.close()

    async def _session(self) -> None:
        client = await self._connect()
        self.connected.set()
        idle = self.config.use_idle and client.has_capability("IDLE")
        log.info("email: IMAP connected to %s:%s (%s)", self.config.host, self.config.port, "IDLE" if idle else "polling")
        failed_cycles = 0
        while True:
            stats = await self.fetch_cycle(client)
            if stats.failed:
                # the core could not commit: retry with backoff, without waiting for new mail
                await self._sleep_or_lost(exponential(failed_cycles, self.config.backoff_min, self.config.poll_interval))
                failed_cycles += 1
                continue
            failed_cycles = 0
            if stats.fetched or stats.announced:
                if stats.announced and not stats.fetched:
                    log.debug("email: new mail announced during a cycle that fetched nothing; looking again")
                continue  # look again before waiting: see the module docstring
            if idle:
                await self._idle(client)
            else:
                await self._sleep_or_lost(self.config.poll_interval)
            if self._lost.is_set():
                raise ImapError("connection lost")

    async def _cmd(self, awaitable: Awaitable[T]) -> T:
        """Await an IMAP command, failing fast when the connection drops (aioimaplib would wait
        for its timeout)."""
        command = asyncio.ensure_future(awaitable)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait({command, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
        if not command.done():
            command.cancel()
            raise ImapError("connection lost")
        return command.result()

    async def _sleep_or_lost(self, seconds: float) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._lost.wait(), seconds)

    async def _idle(self, client: _Client) -> None:
        """Wait in IDLE until the server pushes something, min(`idle_refresh`, `poll_interval`)
        seconds pass or the link drops."""
        wait = min(self.config.idle_refresh, self.config.poll_interval)
        idle_task = await self._cmd(client.idle_start(timeout=wait))
        push = asyncio.ensure_future(client.wait_server_push(timeout=wait + 5))
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            await asyncio.wait({push, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (push, lost):
                task.cancel()
        if self._lost.is_set():
            idle_task.cancel()
            return
        if push.done() and not push.cancelled() and push.exception() is None:
            if push.result() != STOP_WAIT_SERVER_PUSH:
                log.debug("email: IDLE push %r", push.result())
        client.idle_done()
        await self._cmd(asyncio.wait_for(idle_task, self.config.timeout))

    async def fetch_cycle(self, client: _Client) -> CycleStats:
        """Deliver every unseen message once; mark each seen only after `handle` returned."""
        started = time.monotonic()
        stats = CycleStats()
        # NOOP lets the server announce mail that arrived since the last command (RFC 3501
        # §6.1.2); Dovecot's SEARCH alone does not always see it
        _ok(await self._cmd(client.noop()), "NOOP")
        heard = client.protocol.exists_heard
        search = _ok(await self._cmd(client.uid_search("UNSEEN", charset=None)), "UID SEARCH")
        uids = [int(u) for line in search.lines[:-1] for u in bytes(line).split() if u.isdigit()]
        for uid in sorted(uids):
            raw = await self._fetch(client, uid)
            if raw is None:
                continue  # expunged meanwhile
            stats.fetched += 1
            try:
                await self.handle(raw)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures = self._failures[uid] = self._failures.get(uid, 0) + 1
                if isinstance(exc, Unprocessable) or failures >= self.config.max_failures:
                    log.error("email: message uid %s failed %d time(s) (%r); moving it to %s",
                              uid, failures, exc, self.config.quarantine)
                    await self._quarantine(client, uid)
                    stats.quarantined += 1
                    continue
                stats.failed += 1
                log.exception("email: message uid %s not committed; it stays unseen for a retry", uid)
                continue
            self._failures.pop(uid, None)
            _ok(await self._cmd(client.uid("store", str(uid), "+FLAGS.SILENT", r"(\Seen)")), "UID STORE")
            stats.delivered += 1
        stats.announced = client.protocol.exists_heard - heard
        stats.seconds = time.monotonic() - started
        self.last_cycle = stats
        self.cycles += 1
        if stats.fetched:
            log.info("email: fetched %d, delivered %d, failed %d, quarantined %d in %.3fs",
                     stats.fetched, stats.delivered, stats.failed, stats.quarantined, stats.seconds)
        return stats

    async def _quarantine(self, client: _Client, uid: int) -> None:
        """Move one message, unseen, to the quarantine folder (MOVE, else COPY + \\Deleted)."""
        folder = self.config.quarantine
        await self._cmd(client.create(folder))  # NO when it exists already: fine
        if client.has_capability("MOVE"):
            _ok(await self._cmd(client.uid("move", str(uid), folder)), "UID MOVE")
        else:
            _ok(await self._cmd(client.uid("copy", str(uid), folder)), "UID COPY")
            _ok(await self._cmd(client.uid("store", str(uid), "+FLAGS.SILENT", r"(\Deleted)")), "UID STORE")
            if client.has_capability("UIDPLUS"):
                _ok(await self._cmd(client.uid("expunge", str(uid))), "UID EXPUNGE")
        self._failures.pop(uid, None)
        metrics.EMAIL_QUARANTINED.inc()

    async def _fetch(self, client: _Client, uid: int) -> bytes | None:
        response = _ok(await self._cmd(client.uid("fetch", str(uid), "(UID BODY.PEEK[])")), "UID FETCH")
        for line in response.lines:
            if isinstance(line, bytearray):
                return bytes(line)
        return None
