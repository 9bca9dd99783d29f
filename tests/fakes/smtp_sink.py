"""A real SMTP server (aiosmtpd) on loopback that keeps every message it accepts.

It runs on the test's own event loop (no thread), accepts AUTH PLAIN/LOGIN for one test
account, and can be told to refuse recipients with a given SMTP reply — enough to drive
aiosmtplib through success, temporary (4xx) and permanent (5xx) failures.

TLS modes, with a `TestCA`'s server certificate: "none" (plain SMTP, AUTH without TLS, no
STARTTLS offered), "starttls" (RFC 3207: every command but EHLO/NOOP/QUIT refused before
STARTTLS, AUTH offered and accepted only after it) and "tls" (implicit TLS from the first byte,
RFC 8314). `logins_over_tls` records, per accepted login, whether the connection was encrypted.

Pytest fixtures: `smtp_sink` (plain), `smtp_tls_sink` (each TLS mode in turn).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from tests.fakes.tls import TestCA, test_ca  # noqa: F401 — `smtp_tls_sink` uses the fixture

USER = "mailer"
PASSWORD = "smtp-test-pass"


@dataclass
class Received:
    """One accepted message: envelope and parsed content."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    message: EmailMessage = field(init=False)

    def __post_init__(self) -> None:
        self.message = email.message_from_bytes(self.data, policy=policy.default)  # type: ignore[assignment]


class SmtpSink:
    """Collects messages; `refuse[address] = "550 5.1.1 no such user"` rejects a recipient."""

    def __init__(self, mode: str = "none", ca: TestCA | None = None) -> None:
        assert mode == "none" or ca is not None, "TLS needs a certificate"
        self.host = "127.0.0.1"
        self.port = 0
        self.mode = mode
        self.ca = ca
        self.messages: list[Received] = []
        self.refuse: dict[str, str] = {}
        self.logins: list[str] = []
        self.logins_over_tls: list[bool] = []
        self._arrived = asyncio.Condition()
        self._server: asyncio.base_events.Server | None = None

    # aiosmtpd handler hooks
    async def handle_RCPT(self, server, session: Session, envelope: Envelope, address: str, rcpt_options) -> str:
        if address.lower() in self.refuse:
            return self.refuse[address.lower()]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or envelope.content
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(data)))
        async with self._arrived:
            self._arrived.notify_all()
        return "250 Message accepted"

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == USER and auth_data.password.decode() == PASSWORD
        if ok:
            self.logins.append(USER)
            self.logins_over_tls.append(server.transport.get_extra_info("ssl_object") is not None)
        return AuthResult(success=ok, handled=False)

    def _protocol(self) -> SMTP:
        options: dict = dict(hostname="sink.test", authenticator=self._authenticate, auth_required=False,
                             auth_require_tls=False)
        if self.mode == "starttls":
            options.update(tls_context=self.ca.server_context(), require_starttls=True, auth_require_tls=True)
        # "tls": aiosmtpd's auth_require_tls only knows STARTTLS and would refuse AUTH on an
        # implicit-TLS connection, which is encrypted from the first byte anyway
        return SMTP(self, **options)

    async def start(self) -> None:
        """Listen on a free loopback port."""
        loop = asyncio.get_running_loop()
        ssl = self.ca.server_context() if self.mode == "tls" else None
        self._server = await loop.create_server(self._protocol, self.host, 0, ssl=ssl)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Wait until at least `count` messages arrived."""
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.messages) >= count), timeout)
        return self.messages


@contextlib.asynccontextmanager
async def running(mode: str = "none", ca: TestCA | None = None) -> AsyncIterator[SmtpSink]:
    """A started sink, stopped on exit."""
    sink = SmtpSink(mode, ca)
    await sink.start()
    try:
        yield sink
    finally:
        await sink.stop()


@pytest.fixture
async def smtp_sink():
    """A running plain SMTP sink for one test."""
    async with running() as sink:
        yield sink


@pytest.fixture(params=["starttls", "tls"])
async def smtp_tls_sink(request: pytest.FixtureRequest, test_ca: TestCA):  # noqa: F811
    """A running sink in each TLS mode: STARTTLS required, then implicit TLS."""
    async with running(request.param, test_ca) as sink:
        yield sink
