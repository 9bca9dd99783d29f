"""Rate limits of the widget's endpoints, one per visitor (or per IP for new sessions), and the
same machinery for the desk's failed sign-ins (per IP, web/auth.py).

Each limit is a moving window from the `limits` library: at most `amount` hits in any
`seconds`-long span. With `HANDOFF_REDIS_URL` the windows live in Redis (one Lua script per
hit, keys `<prefix>:<name>/<visitor or IP>/...` that expire with their window), so every
instance enforces one limit per visitor; without it they live in this process. When Redis
cannot be reached (a 1 s timeout), a hit is counted in this process instead and a warning
is logged once until Redis answers again: limits fail open to per-process ones, never
closed (a Redis outage must not lock every visitor, or every agent, out).
"""

from __future__ import annotations

import logging
from typing import Any

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

log = logging.getLogger(__name__)

KEY_PREFIX = "handoff:widget-limits"
REDIS_TIMEOUT = 1.0  # seconds a hit waits for Redis before it is counted in this process

# (amount, seconds): the burst and the long-run rate of the per-process token buckets these replaced
# (e.g. 10 messages at once, one a second on average); a reconnect storm or a script is cut off.
SESSIONS = RateLimitItemPerSecond(20, 100, namespace="session")  # per IP: new visitor sessions
MESSAGES = RateLimitItemPerSecond(10, 10, namespace="message")  # per visitor
TYPING = RateLimitItemPerSecond(5, 5, namespace="typing")  # per visitor: typing frames relayed to the desk
UPLOADS = RateLimitItemPerSecond(5, 50, namespace="upload")  # per visitor
CONNECTS = RateLimitItemPerSecond(10, 20, namespace="connect")  # per visitor: WebSocket connections
CONTACTS = RateLimitItemPerSecond(5, 50, namespace="contact")  # per visitor: pre-chat form answers


class WidgetLimits:
    """Moving-window limits, shared through Redis when `redis_url` is set, else per process."""

    def __init__(self, redis_url: str = "", key_prefix: str = KEY_PREFIX) -> None:
        self._local = MovingWindowRateLimiter(MemoryStorage())
        self._pool: Any = None
        self._shared: MovingWindowRateLimiter | None = None
        self._degraded = False
        if redis_url:
            import redis.asyncio as redis  # lazy on purpose, as in hub.py: loaded only with HANDOFF_REDIS_URL

            self._pool = redis.ConnectionPool.from_url(
                redis_url, socket_timeout=REDIS_TIMEOUT, socket_connect_timeout=REDIS_TIMEOUT
            )
            storage = RedisStorage("async+" + redis_url, implementation="redispy", key_prefix=key_prefix,
                                   wrap_exceptions=True, connection_pool=self._pool)
            self._shared = MovingWindowRateLimiter(storage)

    @property
    def shared(self) -> bool:
        """True when the limits are kept in Redis (several instances enforce one limit)."""
        return self._shared is not None

    async def allow(self, limit: RateLimitItem, key: str) -> bool:
        """Count one hit of `limit` for `key` (a visitor id or an IP); False when the window is full."""
        if self._shared is not None:
            try:
                allowed = await self._shared.hit(limit, key)
            except StorageError as exc:
                if not self._degraded:
                    log.warning("widget: Redis unreachable for rate limits (%s); limiting per process", exc)
                self._degraded = True
            else:
                self._degraded = False
                return allowed
        return await self._local.hit(limit, key)

    async def check(self, limit: RateLimitItem, key: str) -> bool:
        """True when `key` may still hit `limit` (nothing is counted); per process while Redis is unreachable."""
        if self._shared is not None:
            try:
                allowed = await self._shared.test(limit, key)
            except StorageError as exc:
                if not self._degraded:
                    log.warning("widget: Redis unreachable for rate limits (%s); limiting per process", exc)
                self._degraded = True
            else:
                self._degraded = False
                return allowed
        return await self._local.test(limit, key)

    async def close(self) -> None:
        """Close the Redis connections (none without Redis)."""
        if self._pool is not None:
            await self._pool.disconnect()
