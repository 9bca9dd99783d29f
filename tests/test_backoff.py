"""handoff.backoff: the delay formulas and the forever loop."""

from __future__ import annotations

import asyncio
import logging
import random

import pytest

from handoff.backoff import exponential, forever, full_jitter, spread


def test_exponential_doubles_from_base_up_to_cap():
    assert [exponential(a, 0.1, 3.0) for a in range(7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.6, 3.0, 3.0])
    assert exponential(10_000, 1.0, 60.0) == 60.0  # no overflow for huge attempt numbers


def test_full_jitter_is_uniform_below_the_exponential_delay():
    rng = random.Random(3)
    delays = [full_jitter(2, 1.0, 30.0, rng) for _ in range(500)]
    assert 0 <= min(delays) < 0.2 and 3.8 < max(delays) <= 4.0
    assert all(0 <= full_jitter(a, 1.0, 30.0, rng) <= 30.0 for a in range(40))


def test_spread_stays_within_the_fraction():
    rng = random.Random(5)
    values = [spread(10.0, 0.2, rng) for _ in range(500)]
    assert 8.0 <= min(values) < 8.2 and 11.8 < max(values) <= 12.0


async def test_forever_retries_after_a_failure_with_recover_then_keeps_going(caplog):
    calls: list[str] = []
    done = asyncio.Event()

    async def step() -> None:
        calls.append("step")
        if len(calls) == 1:
            raise ConnectionError("dropped")
        if calls.count("step") == 3:
            done.set()
        await asyncio.sleep(0)

    async def recover() -> None:
        calls.append("recover")
        raise OSError("still down")  # ignored: the next step decides

    with caplog.at_level(logging.ERROR, logger="handoff.backoff"):
        task = asyncio.create_task(forever(step, "test relay", pause=0.01, recover=recover))
        await asyncio.wait_for(done.wait(), 2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert calls[:4] == ["step", "recover", "step", "step"]
    assert [r.getMessage() for r in caplog.records] == ["test relay failed; retrying"]


async def test_forever_stops_at_once_when_cancelled():
    started = asyncio.Event()

    async def step() -> None:
        started.set()
        await asyncio.sleep(3600)

    task = asyncio.create_task(forever(step, "idle"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 1)
