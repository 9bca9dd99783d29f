"""Database set-up: the tortoise config, migrations on start, connection lifecycle, and the
database's own clock (`clock`) for expiries that several instances compare."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
from tortoise import Tortoise, connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.backends.base.executor import EXECUTOR_CACHE
from tortoise.expressions import RawSQL
from tortoise.migrations.api import migrate as migrate_api


log = logging.getLogger(__name__)


def tortoise_config(database_url: str) -> dict[str, Any]:
    """The tortoise-orm config for one database URL (sqlite://path or postgres://...), through
    handoff's engines: `handoff.sqlite` (a transaction's statements run in place) and
    `handoff.postgres` (asyncpg; transactions that cannot begin leave nothing behind)."""
    connection = expand_db_url(database_url)
    connection["engine"] = {"tortoise.backends.sqlite": "handoff.sqlite",
                            "tortoise.backends.asyncpg": "handoff.postgres"}.get(connection["engine"], connection["engine"])
    return {
        "connections": {"default": connection},
        "apps": {
            "models": {
                "models": ["handoff.models"],
                "migrations": "handoff.migrations",
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


# `tortoise makemigrations` reads this (pyproject [tool.tortoise]).
TORTOISE_ORM = tortoise_config("sqlite://handoff.db")


# pg_advisory_lock key held while migrating: any 64-bit number no other application uses.
MIGRATION_LOCK_KEY = 0x68616E646F6666  # "handoff"


async def migrate(database_url: str) -> None:
    """Apply the committed migrations to the database (creating its tables on first run).

    Several instances starting at once take turns: the first applies what is pending, the
    others then find nothing left to do (a PostgreSQL advisory lock; on SQLite, a lock on a
    `<database file>.migrate-lock` file beside it). `DatabaseFolderMissing` for an SQLite file
    in a folder that does not exist.
    """
    _check_sqlite_folder(database_url)
    async with _migration_lock(database_url):
        await migrate_api(config=tortoise_config(database_url))
        await Tortoise.close_connections()


@contextlib.asynccontextmanager
async def _migration_lock(database_url: str) -> AsyncIterator[None]:
    if database_url.startswith(("postgres://", "postgresql://")):
        conn = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
        try:
            await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
            yield
        finally:
            await conn.close()  # ending the session releases the lock, on every path
        return
    path = database_url.split("://", 1)[1].split("?", 1)[0]
    if not path or path == ":memory:":
        yield
        return
    with open(f"{path}.migrate-lock", "a") as lock_file:
        await asyncio.to_thread(fcntl.flock, lock_file.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file.fileno(), fcntl.LOCK_UN)


class DatabaseFolderMissing(Exception):
    """An SQLite database whose folder does not exist: it can never be opened."""


def _check_sqlite_folder(database_url: str) -> None:
    # Deliberate: aiosqlite's worker thread stays blocked after a failed open, so a second query on
    # that connection never returns and the process cannot exit; refuse such a URL up front.
    if database_url.startswith("sqlite://"):
        path = database_url.split("://", 1)[1].split("?", 1)[0]
        if path and path != ":memory:" and not Path(path).parent.is_dir():
            raise DatabaseFolderMissing(f"the SQLite database's folder {Path(path).parent} does not exist")


async def connect(database_url: str) -> BaseDBAsyncClient:
    """Open the ORM's connections for the app; `DatabaseFolderMissing` for an SQLite file in a
    folder that does not exist."""
    _check_sqlite_folder(database_url)
    # tortoise caches prepared INSERT statements per connection *name*, not per dialect:
    # an embedding process (or a test run) that moves from SQLite to PostgreSQL under the
    # same name would reuse "?" placeholders on asyncpg. Start from a clean cache.
    EXECUTOR_CACHE.clear()
    await Tortoise.init(config=tortoise_config(database_url))
    return connections.get("default")


async def disconnect(client: BaseDBAsyncClient | None = None, timeout: float = 5.0) -> None:
    """Close the ORM's connections, and `client` (what `connect` returned) by name, giving up
    after `timeout` seconds (an unreachable server; the process is stopping anyway).

    tortoise keeps connections in a context variable: a shutdown running in another task
    context than the start-up (aiohttp's cleanup can) would not see the pool it must close.
    An SQLite connection left open keeps its aiosqlite thread, and the interpreter waits for
    that thread at exit: closing `client` by name makes sure it ends.
    """
    try:
        async with asyncio.timeout(timeout):
            await Tortoise.close_connections()
            if client is not None:
                await client.close()
    except TimeoutError:
        log.warning("closing the database connections took over %ss: left to the process exit", timeout)


def clock(offset: float = 0.0) -> RawSQL:
    """The database's current time plus `offset` seconds, as an SQL expression to filter on or
    write (`claimed_until=clock(15)`, `claimed_until__lt=clock()`).

    Expiries that several instances compare (outbox and bot-turn claims) use it, so a skewed
    instance clock can neither steal a live claim nor hold a dead one. PostgreSQL:
    `statement_timestamp()` (unlike `now()`, not frozen at a transaction's start). SQLite: the
    text tortoise stores datetimes as (`YYYY-MM-DD HH:MM:SS.fff+00:00`, UTC), so that it compares
    with stored values as text, to the millisecond.
    """
    seconds = f"'{float(offset):+.3f} seconds'"
    dialect = connections.get("default").capabilities.dialect
    return RawSQL(clock_sql(dialect, seconds if dialect == "sqlite" else f"interval {seconds}"))


async def now() -> datetime:
    """The database's current time (`clock()` read back, timezone-aware UTC): the clock every
    instance shares, for expiries kept where `clock()` cannot reach them (a lease's, in JSON)."""
    rows = await connections.get("default").execute_query_dict(f"SELECT {clock().sql} AS now")
    value = rows[0]["now"]
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def clock_sql(dialect: str, offset: str) -> str:
    """`clock`'s expression for `dialect` ("sqlite" or "postgres") with `offset` as SQL: an SQLite
    date modifier (`'+15.000 seconds'`, or a parameter), a PostgreSQL interval."""
    if dialect == "sqlite":
        return f"strftime('%Y-%m-%d %H:%M:%f+00:00', 'now', {offset})"
    return f"(statement_timestamp() + {offset})"
