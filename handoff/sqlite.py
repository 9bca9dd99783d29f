"""handoff's SQLite engine for tortoise (`tortoise_config` names this module for `sqlite://` URLs):
tortoise's own SQLite client, except that a statement inside an open transaction runs on the
event loop's thread instead of as a round trip through aiosqlite's worker thread.

Why: tortoise keeps one SQLite connection and holds a lock on it for a whole transaction. With
every statement a round trip through the worker thread (two thread switches, then a wait behind
the event loop's other ready work before the next statement is sent), a transaction held the
connection many times longer than SQLite worked on it, and no other statement could run
meanwhile: in `benchmarks/hot_path.py` the event loop sat idle a third of the time while
throughput was bound by that hold time. A statement inside a transaction only reads and writes
pages in memory and appends to the WAL without syncing (microseconds), so it runs in place.

A transaction begins with `BEGIN IMMEDIATE`, which takes the database's write lock up front, so
no statement of it waits for the lock later: in place when the lock is free (tried with a busy
timeout of 0), else in the worker thread, where it waits up to the busy timeout while another
process — a `handoff agents` command, say — holds it. What else can wait runs in the worker
thread too, so the event loop never waits on the disk or on another process: `COMMIT` (an fsync
with `synchronous=FULL`, a WAL checkpoint now and then) and every statement outside a
transaction (it commits itself; a SELECT there may be a long scan of the desk's lists).

Errors are tortoise's, as with its own client. Transactions that only read take the write lock
too: on one connection they are serialized by tortoise's lock anyway.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

import aiosqlite
from tortoise.backends.base.client import TransactionalDBClient, TransactionContext
from tortoise.backends.sqlite import client as tortoise_sqlite
from tortoise.connection import get_connections
from tortoise.exceptions import TransactionManagementError


class _Connection(aiosqlite.Connection):
    """aiosqlite's connection, running a statement of an open transaction in place (see above)."""

    busy_timeout = 5000  # ms, the connection's own (read at connect): how long a statement waits for a lock

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        connection = self._connection
        if self._running and connection is not None and connection.in_transaction and fn != connection.commit:
            return fn(*args, **kwargs)
        return await super()._execute(fn, *args, **kwargs)

    def _execute_insert(self, sql: str, parameters: Any) -> tuple[int]:
        # aiosqlite's asks `SELECT last_insert_rowid()` in a second statement; the cursor has it.
        return (self._conn.execute(sql, parameters).lastrowid,)

    def begin_now(self) -> bool:
        """`BEGIN IMMEDIATE` in place if no other process holds the write lock (no waiting: the
        busy timeout is 0 for it); False if one does (begin in the thread, which may wait)."""
        connection = self._conn
        connection.execute("PRAGMA busy_timeout = 0")
        try:
            connection.execute("BEGIN IMMEDIATE")
            return True
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode != sqlite3.SQLITE_BUSY:
                raise
            return False
        finally:
            connection.execute(f"PRAGMA busy_timeout = {self.busy_timeout}")


class SqliteClient(tortoise_sqlite.SqliteClient):
    """tortoise's SQLite client on `_Connection`, its transactions begun with `BEGIN IMMEDIATE`."""

    async def create_connection(self, with_db: bool) -> None:
        if self._connection:
            return
        filename = self.filename
        # Deliberate: statements run on the event loop's thread as well as in aiosqlite's worker
        # thread, never at the same time (tortoise's lock on the connection orders them).
        self._connection = _Connection(
            lambda: sqlite3.connect(filename, isolation_level=None, check_same_thread=False), iter_chunk_size=64)
        await self._connection
        self._connection._conn.row_factory = sqlite3.Row
        for pragma, value in self.pragmas.items():
            cursor = await self._connection.execute(f"PRAGMA {pragma}={value}")
            await cursor.close()
        cursor = await self._connection.execute("PRAGMA busy_timeout")
        self._connection.busy_timeout = int((await cursor.fetchone())[0])
        await cursor.close()
        await self._post_connect()

    def _in_transaction(self) -> TransactionContext:
        return _Transaction(_TransactionWrapper(self), self._lock)


class _Transaction(tortoise_sqlite.SqliteTransactionContext):
    """tortoise's, but a transaction that cannot begin (another process held the write lock past
    the busy timeout) releases the connection's lock: tortoise's keeps it, and every statement
    after waits forever."""

    async def __aenter__(self) -> TransactionalDBClient:
        await self._trxlock.acquire()
        try:
            await self.ensure_connection()
            await self.connection.begin()
        except BaseException:
            self._trxlock.release()
            raise
        self.token = get_connections().set(self.connection_name, self.connection)
        return self.connection


class _TransactionWrapper(tortoise_sqlite.SqliteTransactionWrapper):
    def _in_transaction(self) -> TransactionContext:
        return tortoise_sqlite.NestedTransactionContext(_TransactionWrapper(self))

    async def begin(self) -> None:
        try:
            if self._connection._conn.in_transaction:  # tortoise's own client commits what is left open
                await self._connection.commit()
            if not self._connection.begin_now():
                await self._connection.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise TransactionManagementError(exc) from exc


client_class = SqliteClient
