"""The runtime's per-conversation bot-turn lock."""

from __future__ import annotations

import asyncio

from handoff.config import Settings
from handoff.hub import Hub
from handoff.runtime import Runtime


def _runtime() -> Runtime:
    return Runtime(settings=Settings(), channels={}, bot=None, summarizer=None, hub=Hub())  # type: ignore[arg-type]


async def test_turns_of_one_conversation_run_one_at_a_time_and_leave_no_lock_behind():
    rt = _runtime()
    running: list[int] = []
    overlaps: list[int] = []

    async def turn(conversation_id: int) -> None:
        async with rt.turn_lock(conversation_id):
            overlaps.append(running.count(conversation_id))
            running.append(conversation_id)
            await asyncio.sleep(0.01)
            running.remove(conversation_id)

    await asyncio.gather(*(turn(i % 3) for i in range(12)))
    assert overlaps == [0] * 12
    assert rt._turn_locks == {}


async def test_a_cancelled_waiter_leaves_no_lock_behind():
    rt = _runtime()
    async with rt.turn_lock(1):
        waiter = asyncio.create_task(rt.turn_lock(1).__aenter__())
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
    assert rt._turn_locks == {}
