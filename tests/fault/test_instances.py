"""Three instances on PostgreSQL + Redis under faults (issue 12): every customer message stored
once and answered once, no callback delivered twice, order kept, nothing stalled past 30 s.

Each scenario starts three `handoff serve` processes at once on an empty database of the suite's
own PostgreSQL, sends conversations whose customers write 2–3 quick messages, each webhook posted
2–4 times to different instances (a failed post is retried on the next one), while the callback
receiver fails ~30% of callbacks; a fault strikes mid-load; then `invariants.check` reads the
database and the receiver. Marked `fault`: `-m 'not stress and not fault'` skips the suite.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from tests.fakes.api_customers import Load
from tests.fakes.api_receiver import CallbackReceiver
from tests.fakes.processes import Cluster, PostgresServer, RedisServer
from tests.fault.conftest import SECRET
from tests.fault.invariants import STALL_LIMIT, Outcome, check, settle

pytestmark = pytest.mark.fault

CONVERSATIONS = 150
LOAD_SECONDS = 15.0
FAULT_AT = 5.0  # seconds into the load
SETTLE_AFTER_LOAD = STALL_LIMIT + 30.0  # how long the run may take to settle once the load is sent

Fault = Callable[[], Awaitable[float]]  # strikes, recovers, returns the monotonic time it ended


async def _run(cluster: Cluster, receiver: CallbackReceiver, fault: Fault | None = None,
               conversations: int = CONVERSATIONS, seed: int = 1, killed_at: list[float] | None = None) -> Outcome:
    load = Load(SECRET, cluster.urls, seed=seed)
    sending = asyncio.create_task(load.run(conversations, spread=LOAD_SECONDS))
    fault_ended = None
    if fault is not None:
        await asyncio.sleep(FAULT_AT)
        fault_ended = await fault()
    await sending
    await settle(cluster.database_url, load, receiver, SETTLE_AFTER_LOAD)
    outcome = await check(cluster.database_url, load, receiver, fault_ended, killed_at[0] if killed_at else None)
    print(outcome)
    return outcome


def _assert_holds(outcome: Outcome, cluster: Cluster) -> None:
    assert not outcome.violations, f"{outcome}\n{cluster.logs()[-6000:]}"


async def test_simultaneous_start_on_an_empty_database(cluster: Cluster, receiver: CallbackReceiver) -> None:
    await cluster.start()  # raises with the instance's output if one exits (the migrations race)
    await asyncio.sleep(1.0)
    assert all(instance.running for instance in cluster.instances), cluster.logs()
    _assert_holds(await _run(cluster, receiver, conversations=60, seed=10), cluster)


async def test_bursts_with_retries_to_other_instances(cluster: Cluster, receiver: CallbackReceiver) -> None:
    await cluster.start()
    _assert_holds(await _run(cluster, receiver, conversations=200, seed=11), cluster)


async def test_an_instance_killed_mid_load(cluster: Cluster, receiver: CallbackReceiver) -> None:
    await cluster.start()

    killed_at: list[float] = []

    async def kill_and_replace() -> float:
        cluster.instances[1].kill()
        killed_at.append(time.monotonic())  # it is dead: whatever it sent has arrived
        await asyncio.sleep(2.0)  # an orchestrator notices and starts a replacement
        await cluster.restart(1)
        return time.monotonic()

    _assert_holds(await _run(cluster, receiver, kill_and_replace, seed=12, killed_at=killed_at), cluster)


async def test_postgres_stopped_and_restarted_mid_load(cluster: Cluster, receiver: CallbackReceiver,
                                                       fault_postgres: PostgresServer) -> None:
    await cluster.start()

    async def outage() -> float:
        await asyncio.to_thread(fault_postgres.stop)
        await asyncio.sleep(6.0)
        await asyncio.to_thread(fault_postgres.start)
        return time.monotonic()

    outcome = await _run(cluster, receiver, outage, seed=13)
    assert all(instance.running for instance in cluster.instances), cluster.logs()
    _assert_holds(outcome, cluster)


async def test_redis_stopped_and_restarted_mid_load(cluster: Cluster, receiver: CallbackReceiver,
                                                    fault_redis: RedisServer) -> None:
    await cluster.start()

    async def outage() -> float:
        await asyncio.to_thread(fault_redis.stop)
        await asyncio.sleep(5.0)
        await asyncio.to_thread(fault_redis.start)
        return time.monotonic()

    outcome = await _run(cluster, receiver, outage, seed=14)
    assert all(instance.running for instance in cluster.instances), cluster.logs()
    _assert_holds(outcome, cluster)
