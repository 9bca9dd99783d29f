"""The fault suite's own servers: one private PostgreSQL cluster and one private Redis for the
session (never the machine's), a fresh database and three `handoff serve` processes per test,
and the integrator's callback receiver failing ~30% of callbacks with a 500."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.api_receiver import CallbackReceiver
from tests.fakes.processes import Cluster, PostgresServer, RedisServer

SECRET = "fault-suite-secret"
INSTANCES = 3
CALLBACK_FAILURE_RATIO = 0.3
# The receiver's failures are random: backoff capped at 4 s and attempts that outlast a streak
# of them keep a message from waiting minutes or being given up for reasons this suite is not about.
ENV = {"HANDOFF_OUTBOX_MAX_DELAY": "4", "HANDOFF_OUTBOX_MAX_ATTEMPTS": "40"}


@pytest.fixture(scope="session")
def fault_postgres() -> Iterator[PostgresServer]:
    """A private PostgreSQL cluster (initdb into /tmp) for the session."""
    server = PostgresServer().init()
    server.start()
    yield server
    server.destroy()


@pytest.fixture(scope="session")
def fault_redis() -> Iterator[RedisServer]:
    """A private redis-server for the session."""
    server = RedisServer()
    server.start()
    yield server
    server.destroy()


@pytest.fixture
async def receiver(aiohttp_server: Any) -> CallbackReceiver:
    """The integrator's callback endpoint, answering 500 to ~30% of callbacks at random."""
    receiver = CallbackReceiver(SECRET, fail_ratio=CALLBACK_FAILURE_RATIO, seed=12)
    server = await aiohttp_server(receiver.app)
    receiver.url = str(server.make_url("/callback"))  # type: ignore[attr-defined]
    return receiver


@pytest.fixture
async def cluster(fault_postgres: PostgresServer, fault_redis: RedisServer, receiver: CallbackReceiver,
                  tmp_path: Path) -> AsyncIterator[Cluster]:
    """Three instances (not started yet) on a new empty database of the private cluster."""
    if not fault_postgres.running:  # an earlier test failed while its fault had it down
        fault_postgres.start()
    if not fault_redis.running:
        fault_redis.start()
    database = await fault_postgres.create_database()
    instances = Cluster(database, fault_redis.url, receiver.url, SECRET, INSTANCES, tmp_path,  # type: ignore[attr-defined]
                        env=ENV)
    yield instances
    codes = instances.stop()
    print(f"instances' exit codes: {codes}")
