"""Live events: an in-process publish/subscribe hub whose events other instances get through
Redis (HANDOFF_REDIS_URL) and, whatever Redis does, through the database's event log.

Subscribers get dicts `{"kind": ..., **data}`. A slow subscriber never blocks publishers: its
bounded queue drops the oldest event and it is told with a `{"kind": "stream.lagged"}` event.
Kinds under `internal.` (e.g. the widget's cross-instance pushes) reach only subscribers that
ask for them by kind, never the desk's catch-all stream.

With the log (`log=True`, as the app builds it), every event but the ephemeral ones (typing,
`stream.*`) is first appended to `LiveEvent` (handoff.eventlog) and carries its row id as
`seq`; Redis only rings the other instances' doorbell. Each instance hands its subscribers the
logged events in `seq` order, each once: an event whose `seq` skips ahead makes it read the
missing ones from the log first, and while Redis is down or not configured it reads the log
every `poll_interval` seconds (every `check_interval` seconds otherwise, for a message Redis
lost in silence). A lost pub/sub message therefore costs latency, never data. When the log
cannot be read to fill a gap, subscribers get `{"kind": "stream.resync", "seq"}`: reload
everything, then go on from `seq`. A desk stream resumes after a `seq` with `replay`.

`state()` says whether Redis works (`ok`, `down`, `not configured`) and since when; the same
is in /metrics (`handoff_hub_redis_up` and the hub's counters).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from handoff import eventlog, metrics
from handoff.backoff import exponential
from handoff.events import EventKind
from handoff.models import utcnow

log = logging.getLogger(__name__)

REDIS_CHANNEL = "handoff:events"
INTERNAL = "internal."
EPHEMERAL = frozenset({EventKind.TYPING, EventKind.STREAM_READY, EventKind.STREAM_LAGGED, EventKind.STREAM_RESYNC})
LOG_RETENTION = timedelta(days=1)
PRUNE_EVERY = 600.0  # seconds between two prunes of the log by one instance
FILL_LIMIT = 1000  # log rows read per query when filling a gap
REPLAY_LIMIT = 1000  # events a resuming client is given at most; past that it is told to resync
WRITE_BATCH = 200
REDIS_TIMEOUT = 1.0  # seconds a publish waits for Redis


class Subscription:
    """One subscriber's bounded queue of events: all public kinds, or only `kinds`."""

    def __init__(self, maxsize: int, kinds: frozenset[str] | None = None) -> None:
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize)
        self.lagged = False
        self.kinds = kinds

    def wants(self, kind: str) -> bool:
        """True when this subscriber receives events of `kind`."""
        return kind in self.kinds if self.kinds is not None else not kind.startswith(INTERNAL)

    def offer(self, event: dict[str, Any]) -> None:
        """Queue an event, dropping the oldest one when full."""
        if not self.wants(str(event.get("kind", ""))):
            return
        if self.queue.full():
            with contextlib.suppress(asyncio.QueueEmpty):
                self.queue.get_nowait()
            self.lagged = True
        self.queue.put_nowait(event)

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> dict[str, Any]:
        if self.lagged:
            self.lagged = False
            return {"kind": EventKind.STREAM_LAGGED}
        return await self.queue.get()


class Hub:
    """Publish/subscribe for live events, shared across instances through Redis and the event log."""

    def __init__(self, redis_url: str = "", queue_size: int = 1000, *, log: bool = False,
                 poll_interval: float = 1.0, check_interval: float = 10.0) -> None:
        self._subscribers: set[Subscription] = set()
        self._queue_size = queue_size
        self._redis_url = redis_url
        self._redis: Any = None
        self._log = log
        self._poll_interval = poll_interval
        self._check_interval = check_interval
        self._origin = uuid.uuid4().hex
        self._last = 0  # the highest seq handed to this instance's subscribers
        self._outgoing: asyncio.Queue[tuple[dict[str, Any], bool]] = asyncio.Queue()
        self._inbox: asyncio.Queue[tuple[dict[str, Any], str, bool] | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._relay_ok: bool | None = None  # None: not known yet
        self._publish_ok = True
        self._publish_tried = 0.0
        self._since = utcnow()
        self._pruned = 0.0

    async def start(self) -> None:
        """Read where the log ends, then start the log writer and reader and (with Redis) the relay."""
        if self._log:
            self._tasks += [asyncio.create_task(self._write(), name="hub-writer"),
                            asyncio.create_task(self._sequence(), name="hub-sequencer")]
        if self._redis_url:
            import redis.asyncio as redis  # lazy on purpose: loaded only with HANDOFF_REDIS_URL

            self._redis = redis.from_url(self._redis_url, socket_timeout=REDIS_TIMEOUT,
                                         socket_connect_timeout=REDIS_TIMEOUT)
            # The relay's connection waits for messages without a read timeout; pings find a dead one.
            listener = redis.from_url(self._redis_url, socket_connect_timeout=REDIS_TIMEOUT, health_check_interval=5)
            self._tasks.append(asyncio.create_task(self._relay(listener), name="hub-relay"))

    async def close(self) -> None:
        """Write what is still queued for the log (a second at most), stop, close Redis."""
        deadline = time.monotonic() + 1.0
        while self._log and not self._outgoing.empty() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._redis is not None:
            await self._redis.aclose()

    @property
    def shared(self) -> bool:
        """True when events cross to other instances (Redis configured, or the event log)."""
        return self._redis_url != "" or self._log

    @property
    def last(self) -> int:
        """The highest `seq` this instance's subscribers have been handed (0: none yet)."""
        return self._last

    def state(self) -> dict[str, Any]:
        """`{"redis": "ok" | "down" | "not configured", "since": ISO 8601, "seq": last}`."""
        return {"redis": self._redis_state(), "since": self._since.isoformat(), "seq": self._last}

    def publish(self, kind: str, *, local: bool = True, durable: bool | None = None, **data: Any) -> None:
        """Deliver an event to this instance's subscribers (unless `local` is False) and to the
        other instances'. With the log, a durable event (every kind but the ephemeral ones, unless
        `durable` says otherwise) is logged first and delivered with its `seq`."""
        event = {"kind": kind, **data}
        if self._log and (durable if durable is not None else kind not in EPHEMERAL):
            self._outgoing.put_nowait((event, local))
            return
        if local:
            self._deliver(event)
        if self._redis is not None:
            task = asyncio.ensure_future(self._to_redis([(event, local)]))
            task.add_done_callback(_log_failure)

    @contextlib.asynccontextmanager
    async def subscribe(self, kinds: frozenset[str] | None = None) -> AsyncIterator[Subscription]:
        """A subscription (to `kinds` only, when given) for the duration of the `async with` block."""
        sub = Subscription(self._queue_size, kinds)
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)

    async def replay(self, after: int, upto: int, sub: Subscription) -> list[dict[str, Any]] | None:
        """The logged events `sub` wants with `after < seq <= upto`, oldest first; None when they
        cannot all be given (no log, `after` pruned or ahead of `upto`, more than REPLAY_LIMIT)."""
        if not self._log or after > upto:
            return None
        if after == upto:
            return []
        first, _ = await eventlog.bounds()
        if first == 0 or first > after + 1:
            return None
        rows = await eventlog.after(after, upto=upto + 1, limit=REPLAY_LIMIT + 1)
        if len(rows) > REPLAY_LIMIT:
            return None
        return [eventlog.event_of(row) for row in rows
                if self._for_here(row.origin, row.everywhere) and sub.wants(row.kind)]

    def resync_sent(self) -> None:
        """Count a `stream.resync` a client was sent (handoff_hub_resyncs_total)."""
        metrics.HUB_RESYNCS.inc()

    # ---- delivery -------------------------------------------------------------------------

    def _deliver(self, event: dict[str, Any]) -> None:
        for sub in list(self._subscribers):
            sub.offer(event)

    def _for_here(self, origin: str, everywhere: bool) -> bool:
        return everywhere or origin != self._origin

    def _emit(self, event: dict[str, Any], origin: str, everywhere: bool) -> None:
        self._last = max(self._last, int(event["seq"]))
        if self._for_here(origin, everywhere):
            self._deliver(event)

    async def _write(self) -> None:
        """Append queued events to the log, in batches, then hand them on with their seq."""
        while True:
            batch = [await self._outgoing.get()]
            while not self._outgoing.empty() and len(batch) < WRITE_BATCH:
                batch.append(self._outgoing.get_nowait())
            try:
                ids = await eventlog.append(self._origin, batch)
            except Exception:
                # The database is unreachable: deliver as a hub without a log does (nothing to resume from).
                log.exception("hub: %d live events could not be logged; delivering them without a seq", len(batch))
                for event, everywhere in batch:
                    if everywhere:
                        self._deliver(event)
                await self._to_redis(batch)
                continue
            stamped = [({**event, "seq": seq}, everywhere) for (event, everywhere), seq in zip(batch, ids, strict=True)]
            for event, everywhere in stamped:
                self._inbox.put_nowait((event, self._origin, everywhere))
            await self._to_redis(stamped)

    async def _sequence(self) -> None:
        """Hand subscribers the logged events in seq order, reading the log for what skipped ahead
        or what Redis did not bring. First, where the log ends (an instance may start while the
        database is unreachable: it serves, and its live events start once the log can be read)."""
        while True:
            try:
                self._last = (await eventlog.bounds())[1]
                break
            except Exception:
                log.exception("hub: the event log cannot be read yet; trying again")
                await asyncio.sleep(self._poll_interval)
        while True:
            wait = self._check_interval if self._redis_state() == "ok" else self._poll_interval
            try:
                item = await asyncio.wait_for(self._inbox.get(), wait)
            except TimeoutError:
                item = None
            try:
                if item is None:
                    await self._catch_up()
                    await self._prune()
                else:
                    await self._accept(*item)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("hub: reading the event log failed; trying again")
                await asyncio.sleep(self._poll_interval)

    async def _accept(self, event: dict[str, Any], origin: str, everywhere: bool) -> None:
        seq = int(event["seq"])
        if seq <= self._last:
            return  # already handed on (read from the log, or a second copy)
        if seq > self._last + 1:
            try:
                await self._catch_up(upto=seq)
            except Exception:
                log.exception("hub: events before seq %d could not be read; subscribers resync", seq)
                metrics.HUB_RESYNCS.inc()
                self._deliver({"kind": EventKind.STREAM_RESYNC, "seq": seq - 1})
        self._emit(event, origin, everywhere)

    async def _catch_up(self, upto: int | None = None) -> None:
        """Hand on the logged events after `last` (and before `upto`)."""
        while True:
            rows = await eventlog.after(self._last, upto=upto, limit=FILL_LIMIT)
            for row in rows:
                if row.id > self._last:
                    metrics.HUB_EVENTS_FROM_LOG.inc()
                    self._emit(eventlog.event_of(row), row.origin, row.everywhere)
            if len(rows) < FILL_LIMIT:
                return

    async def _prune(self) -> None:
        if time.monotonic() - self._pruned < PRUNE_EVERY:
            return
        self._pruned = time.monotonic()
        await eventlog.prune(LOG_RETENTION)

    # ---- Redis ----------------------------------------------------------------------------

    def _redis_state(self) -> str:
        if not self._redis_url:
            return "not configured"
        return "ok" if self._relay_ok and self._publish_ok else "down"

    def _set_redis(self, *, relay: bool | None = None, publish: bool | None = None) -> None:
        before = self._redis_state()
        if relay is not None:
            self._relay_ok = relay
        if publish is not None:
            self._publish_ok = publish
        after = self._redis_state()
        if after != before:
            self._since = utcnow()
            metrics.HUB_REDIS_UP.set(1 if after == "ok" else 0)
            log.warning("hub: redis is %s", after)

    async def _to_redis(self, items: list[tuple[dict[str, Any], bool]]) -> None:
        """Publish events to the other instances; while Redis is down, try once a second at most
        (the others read the log meanwhile)."""
        if self._redis is None:
            return
        now = time.monotonic()
        if not self._publish_ok and now - self._publish_tried < 1.0:
            metrics.HUB_PUBLISH_FAILURES.inc(len(items))
            return
        self._publish_tried = now
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for event, everywhere in items:
                    pipe.publish(REDIS_CHANNEL, json.dumps(
                        {"origin": self._origin, "everywhere": everywhere, "event": event}, default=str))
                await pipe.execute()
        except Exception as exc:
            metrics.HUB_PUBLISH_FAILURES.inc(len(items))
            if self._publish_ok:
                log.warning("hub: publishing %d events to redis failed: %s", len(items), exc)
            self._set_redis(publish=False)
        else:
            self._set_redis(publish=True)

    async def _relay(self, client: Any) -> None:
        """Hand on other instances' events until cancelled; a lost connection is retried with a
        growing pause, and once back, what it missed is read from the log."""
        attempt = 0
        try:
            while True:
                pubsub = client.pubsub()
                try:
                    await pubsub.subscribe(REDIS_CHANNEL)
                    if self._relay_ok is False:
                        metrics.HUB_RELAY_RECONNECTS.inc()
                    self._set_redis(relay=True, publish=True)
                    self._inbox.put_nowait(None)  # read the log: what was published while we were away
                    attempt = 0
                    async for item in pubsub.listen():
                        if item.get("type") == "message":
                            self._receive(item["data"])
                    raise ConnectionError("the redis subscription ended")
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if self._relay_ok is not False:
                        log.warning("hub: redis relay lost: %s", exc)
                    self._set_redis(relay=False)
                finally:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
                await asyncio.sleep(exponential(attempt, 0.25, 5.0))
                attempt += 1
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()

    def _receive(self, data: bytes | str) -> None:
        envelope = json.loads(data)
        origin = envelope.get("origin")
        if origin == self._origin:
            return
        event = envelope["event"]
        if self._log and "seq" in event:
            self._inbox.put_nowait((event, origin, bool(envelope.get("everywhere", True))))
        else:
            self._deliver(event)


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("publishing an event to redis failed: %s", task.exception())
