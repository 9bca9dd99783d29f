"""Live events: an in-process publish/subscribe hub whose events reach the other instances
through Redis (HANDOFF_REDIS_URL) and, whatever Redis does, through the database's event log
(handoff.eventlog).

Subscribers get dicts `{"kind": ..., **data}`. A slow subscriber never blocks publishers: its
bounded queue drops the oldest event and it is told with a `{"kind": "stream.lagged"}` event.
Kinds under `internal.` (e.g. the widget's cross-instance pushes) reach only subscribers that
ask for them by kind, never the desk's catch-all stream.

Two kinds of events:
- logged ones (`publish_logged`, `publish_durable`) carry the `seq` of their `live_event` row,
  written in the transaction that produced them. With the log on (`logged=True`, as the app
  builds the hub), each instance hands its subscribers the logged events in seq order, each
  once: it tracks the last seq it delivered; an event that skips ahead makes it read the
  missing ones from the log (after `GAP_WAIT`, in case Redis brings them); it reads the log when
  Redis (re)connects, every `poll_interval` (1 s) while Redis is down or not configured, and
  every `check_interval` (10 s) while it is up, for a message Redis lost in silence. Redis
  only carries them fast: a lost pub/sub message costs latency, never data.
- ephemeral ones (`publish`: typing, `stream.*`) are delivered here and through Redis only.

`state()` says whether Redis works (`ok`, `down`, `not configured`), since when, and the last
seq delivered; /metrics has the same as `handoff_hub_*`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from tortoise.transactions import in_transaction

from handoff import eventlog, metrics
from handoff.backoff import exponential
from handoff.events import EventKind
from handoff.models import utcnow

log = logging.getLogger(__name__)

REDIS_CHANNEL = "handoff:events"
INTERNAL = "internal."
REDIS_TIMEOUT = 1.0  # seconds a publish or a connect waits for Redis
GAP_WAIT = 0.05  # seconds an out-of-order event waits for the ones before it before the log is read
FILL_LIMIT = 1000  # log rows read per query


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

    def __init__(self, redis_url: str = "", queue_size: int = 1000, *, logged: bool = False,
                 poll_interval: float = 1.0, check_interval: float = 10.0) -> None:
        self._subscribers: set[Subscription] = set()
        self._queue_size = queue_size
        self._redis_url = redis_url
        self._redis: Any = None
        self._logged = logged
        self._poll_interval = poll_interval
        self._check_interval = check_interval
        self.origin = uuid.uuid4().hex
        self._last: int | None = None if logged else 0  # the highest seq delivered here
        self._inbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._publishes: set[asyncio.Task[None]] = set()
        self._relay_ok = False
        self._publish_ok = True
        self._publish_tried = 0.0
        self._since = utcnow()

    async def start(self) -> None:
        """Start the log reader (with the log) and the Redis relay (when configured); neither
        waits for its server: an instance starts while Redis or the database is unreachable."""
        if self._logged:
            self._tasks.append(asyncio.create_task(self._sequence(), name="hub-sequencer"))
        if self._redis_url:
            import redis.asyncio as redis  # lazy on purpose: loaded only with HANDOFF_REDIS_URL

            self._redis = redis.from_url(self._redis_url, socket_timeout=REDIS_TIMEOUT,
                                         socket_connect_timeout=REDIS_TIMEOUT)
            # The relay waits for messages without a read timeout; its pings find a dead connection.
            listener = redis.from_url(self._redis_url, socket_connect_timeout=REDIS_TIMEOUT, health_check_interval=5)
            self._tasks.append(asyncio.create_task(self._relay(listener), name="hub-relay"))

    async def close(self) -> None:
        """Stop every task of the hub (awaited: none touches the database afterwards) and close Redis."""
        tasks = [*self._tasks, *self._publishes]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._publishes.clear()
        if self._redis is not None:
            with contextlib.suppress(Exception):
                await self._redis.aclose()
            self._redis = None

    @property
    def shared(self) -> bool:
        """True when events cross to other instances (Redis configured, or the event log)."""
        return self._redis_url != "" or self._logged

    @property
    def last(self) -> int:
        """The highest `seq` this instance's subscribers have been handed (0: none, or not known yet)."""
        return self._last or 0

    def state(self) -> dict[str, Any]:
        """`{"redis": "ok" | "down" | "not configured", "since": ISO 8601 (of the last change),
        "seq": the last seq delivered here, "log": "on" | "off"}`."""
        return {"redis": self._redis_state(), "since": self._since.isoformat(), "seq": self.last,
                "log": "on" if self._logged else "off"}

    def publish(self, kind: str, *, local: bool = True, **data: Any) -> None:
        """An ephemeral event (not logged): to local subscribers (unless `local` is False) and, with
        Redis, to the other instances."""
        event = {"kind": kind, **data}
        if local:
            self._deliver(event)
        self._to_redis({"origin": self.origin, "event": event})

    def publish_logged(self, events: list[dict[str, Any]]) -> None:
        """Logged events (each with its `seq`, committed): to local subscribers in seq order and,
        with Redis, to the other instances at once (they read the log otherwise)."""
        if not events:
            return
        for event in events:
            self._offer(event)
        self._to_redis({"origin": self.origin, "events": events})

    async def publish_durable(self, events: list[dict[str, Any]]) -> list[int]:
        """Log `events` (`{"kind", **data}` each) in a transaction of their own, then
        `publish_logged` them; returns their seqs. Raises what the database raises (nothing is
        published then)."""
        async with in_transaction() as conn:
            seqs = await eventlog.append(events, conn)
        self.publish_logged([{**event, "seq": seq} for event, seq in zip(events, seqs, strict=True)])
        return seqs

    @contextlib.asynccontextmanager
    async def subscribe(self, kinds: frozenset[str] | None = None) -> AsyncIterator[Subscription]:
        """A subscription (to `kinds` only, when given) for the duration of the `async with` block."""
        sub = Subscription(self._queue_size, kinds)
        self._subscribers.add(sub)
        try:
            yield sub
        finally:
            self._subscribers.discard(sub)

    # ---- delivery in seq order --------------------------------------------------------------

    def _deliver(self, event: dict[str, Any]) -> None:
        for sub in list(self._subscribers):
            sub.offer(event)

    def _emit(self, event: dict[str, Any]) -> None:
        self._last = int(event["seq"])
        metrics.HUB_LAST_SEQ.set(self._last)
        self._deliver(event)

    def _offer(self, event: dict[str, Any]) -> None:
        """The next seq is delivered at once; an older one is a copy (dropped); one that skips
        ahead, or any before the log's end is known, waits for the sequencer."""
        if not self._logged:
            self._deliver(event)
            return
        seq = int(event["seq"])
        if self._last is not None and seq <= self._last:
            return
        if self._last is not None and seq == self._last + 1:
            self._emit(event)
        else:
            self._inbox.put_nowait(event)

    async def _sequence(self) -> None:
        """Read where the log ends, then fill gaps and poll the log until cancelled."""
        while self._last is None:
            try:
                self._last = await eventlog.last()
                metrics.HUB_LAST_SEQ.set(self._last)
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
                else:
                    await self._accept(item)
            except Exception:
                log.exception("hub: reading the event log failed; trying again")
                if item is not None:
                    self._inbox.put_nowait(item)
                await asyncio.sleep(self._poll_interval)

    async def _accept(self, event: dict[str, Any]) -> None:
        seq = int(event["seq"])
        if seq > self.last + 1:
            await asyncio.sleep(GAP_WAIT)  # the ones before it are usually on their way
        if seq > self.last + 1:
            metrics.HUB_GAPS.inc()
            await self._catch_up(upto=seq - 1)
        if seq > self.last:
            self._emit(event)

    async def _catch_up(self, upto: int | None = None) -> None:
        """Deliver the logged events after `last` (up to `upto`)."""
        while True:
            rows = await eventlog.after(self.last, upto=upto, limit=FILL_LIMIT)
            for event in rows:
                if event["seq"] > self.last:
                    metrics.HUB_EVENTS_FROM_LOG.inc()
                    self._emit(event)
            if len(rows) < FILL_LIMIT:
                return

    # ---- Redis ------------------------------------------------------------------------------

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
        metrics.HUB_REDIS_UP.set(1 if after == "ok" else 0)
        if after != before:
            self._since = utcnow()
            log.warning("hub: redis is %s", after)

    def _to_redis(self, envelope: dict[str, Any]) -> None:
        """Publish in the background; while Redis is down, try once a second at most (the other
        instances read the log meanwhile)."""
        if self._redis is None:
            return
        now = time.monotonic()
        if not self._publish_ok and now - self._publish_tried < 1.0:
            metrics.HUB_PUBLISH_FAILURES.inc()
            return
        self._publish_tried = now
        task = asyncio.ensure_future(self._send(json.dumps(envelope, default=str)))
        self._publishes.add(task)
        task.add_done_callback(self._publishes.discard)

    async def _send(self, payload: str) -> None:
        try:
            await self._redis.publish(REDIS_CHANNEL, payload)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            metrics.HUB_PUBLISH_FAILURES.inc()
            if self._publish_ok:
                log.warning("hub: publishing to redis failed: %s", exc)
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
                    self._set_redis(relay=True, publish=True)
                    if self._logged:  # read the log: what was published while we were away
                        self._inbox.put_nowait(None)
                    attempt = 0
                    async for item in pubsub.listen():
                        if item.get("type") == "message":
                            self._receive(item["data"])
                    raise ConnectionError("the redis subscription ended")
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if self._relay_ok:
                        log.warning("hub: redis relay lost: %s", exc)
                    self._set_redis(relay=False)
                finally:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
                await asyncio.sleep(exponential(attempt, 0.25, 2.0))
                attempt += 1
        finally:
            with contextlib.suppress(Exception):
                await client.aclose()

    def _receive(self, data: bytes | str) -> None:
        try:
            envelope = json.loads(data)
        except ValueError:
            return
        if envelope.get("origin") == self.origin:
            return
        if "events" in envelope:
            for event in envelope["events"]:
                self._offer(event)
        elif "event" in envelope:
            self._deliver(envelope["event"])
