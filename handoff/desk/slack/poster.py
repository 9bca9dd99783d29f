"""A durable, rate-limited queue of Slack posts.

Slack allows about one message per second per channel and answers HTTP 429 with a
Retry-After header beyond that (https://api.slack.com/apis/rate-limits). Posts are written as
`KeyValue` rows (scope "slack.post") before anything is sent, so a restart resumes where it
stopped, and a single worker sends them in order: it paces each Slack channel, and on a 429
it waits Retry-After and sends the same job again. A job with a fixed key ("msg:<id>") is
enqueued at most once, so several subscribers of the same event produce one post. With several
instances, a database lease lets one poster at a time send (the others wait to take over), so
nothing is posted twice and the pacing stays per Slack channel, not per instance.

A job that fails (other than a 429) is retried after a short backoff, `MAX_ATTEMPTS` times in
all, then dropped; its failed attempts are counted in its own row (`"_attempts"` in the stored
value), so a restart neither resets the count nor retries a broken job forever.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.errors import SlackApiError
from tortoise.exceptions import IntegrityError

from handoff.backoff import exponential
from handoff.lease import Lease
from handoff.models import KeyValue

log = logging.getLogger(__name__)

SCOPE = "slack.post"
DEFAULT_INTERVAL = 1.0
MAX_ATTEMPTS = 5
ATTEMPTS = "_attempts"  # failed attempts so far, kept in the job's stored value
POLL_SECONDS = 2.0

Job = dict[str, Any]


class RateLimited(Exception):
    """Slack answered 429: wait `retry_after` seconds before calling it again."""

    def __init__(self, retry_after: float) -> None:
        super().__init__(f"rate limited for {retry_after}s")
        self.retry_after = retry_after


def rate_limit_of(error: SlackApiError) -> RateLimited | None:
    """A RateLimited for a 429 SlackApiError, else None."""
    response = error.response
    if getattr(response, "status_code", None) != 429:
        return None
    headers = getattr(response, "headers", {}) or {}
    raw = next((v for k, v in headers.items() if k.lower() == "retry-after"), "1")
    if isinstance(raw, list):
        raw = raw[0] if raw else "1"
    try:
        return RateLimited(max(float(raw), 0.0))
    except ValueError:
        return RateLimited(1.0)


def _job(row: KeyValue) -> Job:
    """A stored job as enqueued (without its attempt count)."""
    return {k: v for k, v in row.value.items() if k != ATTEMPTS}


class Poster:
    """The queue and its worker. `handler(job)` performs one job, calling `pace(channel)` before each post."""

    def __init__(self, handler: Callable[[Job], Awaitable[None]], *, interval: float | None = None,
                 clock: Callable[[], float] = time.monotonic, lease: Lease | None = None) -> None:
        self._handler = handler
        self._lease = lease
        self.interval = DEFAULT_INTERVAL if interval is None else interval
        self._clock = clock
        self._next_slot: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.rate_limited = 0

    async def enqueue(self, job: Job, key: str | None = None) -> bool:
        """Store a job; with `key`, a job already stored under that key makes this a no-op (False)."""
        try:
            await KeyValue.create(scope=SCOPE, key=key or f"job:{uuid.uuid4().hex}", value=job)
        except IntegrityError:
            return False
        self._wake.set()
        return True

    async def pending(self) -> list[Job]:
        """The jobs not sent yet, oldest first."""
        return [_job(row) for row in await KeyValue.filter(scope=SCOPE).order_by("id")]

    async def later_exists(self, key_prefix: str, after_id: int) -> bool:
        """True when a newer job with this key prefix is waiting (lets the worker coalesce updates)."""
        return await KeyValue.filter(scope=SCOPE, key__startswith=key_prefix, id__gt=after_id).exists()

    async def pace(self, channel: str) -> None:
        """Wait for this Slack channel's next free slot, then take it."""
        now = self._clock()
        slot = max(self._next_slot.get(channel, now), now)
        self._next_slot[channel] = slot + self.interval
        if slot > now:
            await asyncio.sleep(slot - now)

    def start(self) -> None:
        """Start the worker task."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="slack-poster")

    async def close(self) -> None:
        """Stop the worker; unsent jobs stay stored for the next start."""
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        if self._lease is not None:
            try:
                await self._lease.release()
            except Exception:  # the database may be gone already at shutdown: the lease then expires
                log.debug("slack poster lease not released", exc_info=True)

    async def _may_send(self) -> bool:
        """True while this instance holds (or needs no) lease; renews it."""
        return self._lease is None or await self._lease.acquire()

    def wake(self) -> None:
        """Look for jobs now."""
        self._wake.set()

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait until the queue is empty (tests)."""
        deadline = time.monotonic() + timeout
        while await KeyValue.filter(scope=SCOPE).exists():
            if time.monotonic() > deadline:
                raise TimeoutError(f"slack posts still pending: {await self.pending()}")
            self._wake.set()
            await asyncio.sleep(0.02)

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("slack poster loop failed")
                await asyncio.sleep(POLL_SECONDS)
            try:
                await asyncio.wait_for(self._wake.wait(), POLL_SECONDS)
            except TimeoutError:
                pass
            self._wake.clear()

    async def _perform(self, job: Job) -> None:
        try:
            await self._handler(job)
        except SlackApiError as error:
            limited = rate_limit_of(error)
            if limited is None:
                raise
            raise limited from error

    async def run_once(self) -> int:
        """Send every stored job in order; return how many were done."""
        done = 0
        while True:
            rows = await KeyValue.filter(scope=SCOPE).order_by("id").limit(20)
            if not rows:
                return done
            for row in rows:
                if not await self._may_send():  # another instance is the poster now
                    return done
                job = {**_job(row), "_id": row.id, "_key": row.key}
                try:
                    await self._perform(job)
                except RateLimited as limited:
                    self.rate_limited += 1
                    log.warning("slack rate limited; retrying in %.1fs", limited.retry_after)
                    channel = str(job.get("channel") or "")
                    self._next_slot[channel] = self._clock() + limited.retry_after
                    await asyncio.sleep(limited.retry_after)
                    break
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    attempts = int(row.value.get(ATTEMPTS, 0)) + 1
                    log.warning("slack post %s failed (%d/%d): %s", row.key, attempts, MAX_ATTEMPTS, exc)
                    if attempts < MAX_ATTEMPTS:
                        await KeyValue.filter(id=row.id).update(value={**row.value, ATTEMPTS: attempts})
                        await asyncio.sleep(exponential(attempts, 0.1, 3.0))
                        break
                    log.error("dropping slack post %s after %d attempts", row.key, attempts)
                await KeyValue.filter(id=row.id).delete()
                self.sent += 1
                done += 1
