"""Live events for the desk: an in-process publish/subscribe hub, fanned out over Redis
when several instances run (HANDOFF_REDIS_URL).

Events are published after their transaction commits; subscribers get dicts
`{"kind": ..., **data}`. A slow subscriber never blocks publishers: its bounded queue
drops the oldest event and it is told with a `{"kind": "stream.lagged"}` event.

Kinds under `internal.` (e.g. the widget's cross-instance pushes) reach only subscribers that
ask for them by kind, never the desk's catch-all stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any

from handoff.backoff import forever
from handoff.events import EventKind

log = logging.getLogger(__name__)

REDIS_CHANNEL = "handoff:events"
INTERNAL = "internal."


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
    """Publish/subscribe for desk events, optionally shared across instances through Redis."""

    def __init__(self, redis_url: str = "", queue_size: int = 1000) -> None:
        self._subscribers: set[Subscription] = set()
        self._queue_size = queue_size
        self._redis_url = redis_url
        self._redis: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._origin = uuid.uuid4().hex

    async def start(self) -> None:
        """Connect to Redis (when configured) and start relaying other instances' events."""
        if not self._redis_url:
            return
        import redis.asyncio as redis  # lazy on purpose: loaded only with HANDOFF_REDIS_URL

        self._redis = redis.from_url(self._redis_url)
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(REDIS_CHANNEL)
        self._listener = asyncio.create_task(self._relay(pubsub))

    async def close(self) -> None:
        """Stop relaying and close the Redis connection."""
        if self._listener:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._redis is not None:
            await self._redis.aclose()

    @property
    def shared(self) -> bool:
        """True when events cross to other instances (Redis is configured and connected)."""
        return self._redis is not None

    def publish(self, kind: str, *, local: bool = True, **data: Any) -> None:
        """Deliver an event to local subscribers (unless `local` is False) and, with Redis, to other instances."""
        event = {"kind": kind, **data}
        if local:
            self._deliver(event)
        if self._redis is not None:
            payload = json.dumps({"origin": self._origin, "event": event}, default=str)
            task = asyncio.ensure_future(self._redis.publish(REDIS_CHANNEL, payload))
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

    def _deliver(self, event: dict[str, Any]) -> None:
        for sub in list(self._subscribers):
            sub.offer(event)

    async def _relay(self, pubsub: Any) -> None:
        """Deliver other instances' events until cancelled; a dropped connection resubscribes after a pause."""
        try:
            await forever(lambda: self._listen(pubsub), "redis event relay", logger=log,
                          recover=lambda: pubsub.subscribe(REDIS_CHANNEL))
        finally:
            await pubsub.aclose()

    async def _listen(self, pubsub: Any) -> None:
        async for item in pubsub.listen():
            if item.get("type") != "message":
                continue
            envelope = json.loads(item["data"])
            if envelope.get("origin") != self._origin:
                self._deliver(envelope["event"])


def _log_failure(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("publishing an event to redis failed: %s", task.exception())
