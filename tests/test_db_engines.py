"""handoff's database engines (handoff/sqlite.py, handoff/postgres.py): where SQLite runs a
transaction's statements, that the event loop never waits for another process's write lock, and
that a transaction which cannot begin leaves nothing behind on either store."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
import asyncpg
import pytest
from tortoise import connections
from tortoise.backends.base.client import TransactionalDBClient
from tortoise.transactions import in_transaction

from handoff import db
from handoff.models import Contact
from tests.conftest import _run_in_thread


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> AsyncIterator[str]:
    url = f"sqlite://{tmp_path / 'engine.db'}?busy_timeout=300"
    await db.migrate(url)
    await db.connect(url)
    yield url
    await db.disconnect()


class _Ticker:
    """The longest the event loop went without running this task, in seconds."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task = asyncio.create_task(self._tick())

    async def _tick(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last)
            last = now

    async def stop(self) -> float:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        return self.longest


def _write_lock_held(url: str, seconds: float) -> threading.Thread:
    """Another process's write transaction on the same file, held `seconds` from now."""
    path = url.split("://", 1)[1].split("?", 1)[0]
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")

    def release() -> None:
        time.sleep(seconds)
        other.execute("COMMIT")
        other.close()

    thread = threading.Thread(target=release)
    thread.start()
    return thread


async def test_sqlite_runs_a_transactions_statements_on_the_loop_and_what_may_wait_in_its_thread(sqlite_url: str) -> None:
    statements: list[tuple[str, bool]] = []
    loop_thread = threading.get_ident()
    await Contact.all().count()  # connects
    connection = connections.get("default")._connection._conn  # type: ignore[attr-defined]
    connection.set_trace_callback(lambda sql: statements.append((sql.split()[0], threading.get_ident() == loop_thread)))
    async with in_transaction():
        await Contact.create(name="Ana")
        await Contact.filter(name="Ana").count()
    await Contact.filter(name="Ana").count()
    await Contact.create(name="Bo")
    statements = [(kind, here) for kind, here in statements if kind != "PRAGMA"]
    kinds = [kind for kind, _ in statements]
    begin, commit = kinds.index("BEGIN"), kinds.index("COMMIT")
    inside, outside = statements[begin + 1:commit], statements[commit + 1:]
    assert {kind for kind, _ in inside} == {"INSERT", "SELECT"} and all(here for _, here in inside)
    assert statements[begin][1]  # the write lock was free: begun in place
    assert not statements[commit][1]
    assert {kind for kind, _ in outside} == {"INSERT", "SELECT"} and not any(here for _, here in outside)


async def test_sqlite_waits_for_another_process_write_lock_without_stalling_the_loop(sqlite_url: str) -> None:
    await Contact.all().count()  # connects
    holder = _write_lock_held(sqlite_url, 0.2)
    ticker = _Ticker()
    async with in_transaction():
        await Contact.create(name="Ana")
    longest = await ticker.stop()
    holder.join()
    assert await Contact.filter(name="Ana").count() == 1
    assert longest < 0.1  # the 0.2 s wait for the lock was spent in the connection's thread


async def test_a_sqlite_transaction_that_cannot_begin_frees_the_connection(sqlite_url: str) -> None:
    holder = _write_lock_held(sqlite_url, 1.0)  # past the busy timeout (300 ms)
    with pytest.raises(Exception, match="locked"):
        async with in_transaction():
            await Contact.create(name="Ana")
    holder.join()
    assert not isinstance(connections.get("default"), TransactionalDBClient)

    async def another_request() -> None:
        async with in_transaction():
            await Contact.create(name="Bo")

    async with asyncio.timeout(5):  # tortoise's own client kept the connection's lock: this waited forever
        await asyncio.create_task(another_request())
    assert await Contact.all().values_list("name", flat=True) == ["Bo"]


async def _end_sessions(url: str) -> None:
    admin = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                            "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    finally:
        await admin.close()


async def test_a_postgres_transaction_that_cannot_begin_leaves_the_task_outside_it(postgres_url: str) -> None:
    await db.connect(postgres_url)
    try:
        await Contact.all().count()  # the pool holds an open connection
        # A PostgreSQL restart ends every session; ended from another thread while this loop
        # runs nothing, so the pool hands out the connection not knowing it is gone.
        _run_in_thread(_end_sessions(postgres_url))
        with pytest.raises(Exception):
            async with in_transaction():
                await Contact.create(name="Ana")
        assert not isinstance(connections.get("default"), TransactionalDBClient)
        async with in_transaction():  # tortoise's own client nested this in the dead transaction
            await Contact.create(name="Bo")
        assert "Bo" in await Contact.all().values_list("name", flat=True)
    finally:
        await db.disconnect()
