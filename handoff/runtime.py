"""The running system's shared parts, handed to the gateway, the transitions, the edges and the
workers: built once by `handoff.app.create_app`, before the app starts."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiohttp import web

from handoff.bot.base import Bot, Summarizer
from handoff.bot.compose import Composer
from handoff.channels.base import Channel
from handoff.config import Settings
from handoff.group_commit import GroupCommit
from handoff.hub import Hub
from handoff.media import MediaStore
from handoff.models import utcnow
from handoff.outbox import OutboxWorker

log = logging.getLogger(__name__)


@dataclass
class _TurnLock:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0


@dataclass
class Runtime:
    """Settings, channel instances, the bot, the live-event hub, the composer (or None), the outbox worker, the media store
    and background tasks. The outbox worker and the media store are built with the runtime; the
    app starts and stops them."""

    settings: Settings
    channels: dict[str, Channel]
    bot: Bot
    summarizer: Summarizer
    hub: Hub
    composer: Composer | None = None  # the desk's AI compose; None without a model
    outbox: OutboxWorker = field(init=False)
    media: MediaStore = field(init=False)
    # Loop time by which a stop must be done (set by `handoff serve` on SIGTERM/SIGINT); None:
    # the app's cleanup gives itself `settings.shutdown_timeout`.
    stop_deadline: float | None = None
    # The wall clock business hours are read against (tests set a fixed one).
    now: Callable[[], datetime] = utcnow
    # The hot path's writes share transactions (handoff.group_commit; create_app sets how many run at once).
    commits: GroupCommit = field(default_factory=GroupCommit)
    # Conversation id -> the takeover of it running in this process (transitions.takeover).
    takeovers: dict[int, asyncio.Future[Any]] = field(default_factory=dict)
    _tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _turn_locks: dict[int, _TurnLock] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.media = MediaStore.from_settings(self.settings)
        self.outbox = OutboxWorker(self)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str = "") -> asyncio.Task[Any]:
        """Run `coro` in the background; failures are logged; shutdown waits for it."""
        task = asyncio.create_task(coro, name=name or None)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for running background tasks (bot turns, summaries) to finish."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self._tasks:
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                break
            await asyncio.wait(set(self._tasks), timeout=remaining)

    async def cancel_tasks(self) -> None:
        """Cancel what is still running (on shutdown, after drain); a cancelled bot turn releases
        its claim on the way out."""
        tasks = set(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    @contextlib.asynccontextmanager
    async def turn_lock(self, conversation_id: int) -> AsyncIterator[None]:
        """Serialize the bot turns of one conversation in this process.

        A conversation's lock exists only while a turn holds or awaits it, so the map stays
        as small as the number of conversations being answered.
        """
        entry = self._turn_locks.get(conversation_id)
        if entry is None:
            entry = self._turn_locks[conversation_id] = _TurnLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if not entry.users:
                del self._turn_locks[conversation_id]


RUNTIME: web.AppKey[Runtime] = web.AppKey("runtime", Runtime)
