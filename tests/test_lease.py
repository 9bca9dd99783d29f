"""Leases: exactly one holder when instances race, renewal by the holder, takeover after expiry."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import time_machine

from handoff.lease import SCOPE, Lease
from handoff.models import KeyValue, utcnow


async def test_exactly_one_of_racing_instances_gets_the_lease(client):
    for round_ in range(40):
        contenders = [Lease(f"race-{round_}") for _ in range(8)]
        won = await asyncio.gather(*(lease.acquire() for lease in contenders))
        assert sum(won) == 1, round_
        winner = contenders[won.index(True)]
        assert await winner.acquire()  # the holder renews
        again = await asyncio.gather(*(lease.acquire() for lease in contenders if lease is not winner))
        assert not any(again)


async def test_an_expired_lease_is_taken_over_and_a_released_one_is_free(client):
    first, second = Lease("poster", ttl=30), Lease("poster", ttl=30)
    assert await first.acquire() and not await second.acquire()
    row = await KeyValue.get(scope=SCOPE, key="poster")
    expired = {**row.value, "until": (utcnow() - timedelta(seconds=1)).timestamp()}
    await KeyValue.filter(id=row.id).update(value=expired)  # the holder died a while ago
    assert await second.acquire() and not await first.acquire()
    await second.release()
    assert await first.acquire()


async def test_an_instance_whose_clock_runs_ahead_cannot_take_a_live_lease(client):
    holder, skewed = Lease("imap", ttl=30), Lease("imap", ttl=30)
    assert await holder.acquire()
    # This process's clock an hour ahead (the database's is untouched): the lease is still live.
    with time_machine.travel(utcnow() + timedelta(hours=1), tick=True):
        assert not await skewed.acquire()
    assert await holder.acquire()  # and its holder renews it
