"""handoff's PostgreSQL engine for tortoise (`tortoise_config` names this module for `postgres://`
URLs): tortoise's asyncpg client, with transactions that leave nothing behind when they cannot
begin.

tortoise's pooled transaction marks the task's context as inside the transaction before `BEGIN`
is sent; when `BEGIN` fails (PostgreSQL restarting, a connection it ended), the context stays
marked and the connection is never returned to the pool. Every later transaction in that task
then nests as a savepoint on the dead connection ("connection has been released back to the
pool") — forever, for a task that retries (the outbox recording a send: tests/fault's PostgreSQL
restart). Here the context is marked only once the transaction has begun, and a connection whose
`BEGIN` failed goes back to the pool (which replaces a broken one). Errors are tortoise's.
"""

from __future__ import annotations

import contextlib
from typing import Any

from tortoise.backends.asyncpg import client as tortoise_asyncpg
from tortoise.backends.base.client import TransactionalDBClient, TransactionContext, TransactionContextPooled
from tortoise.connection import get_connections
from tortoise.exceptions import TransactionManagementError


class _Transaction(TransactionContextPooled):
    async def __aenter__(self) -> TransactionalDBClient:
        await self.ensure_connection()
        pool = self.client._parent._pool
        self.client._connection = await pool.acquire()
        try:
            await self.client.begin()
        except BaseException:
            # Deliberate: the error that stopped BEGIN is the one to report, not a failed release.
            with contextlib.suppress(Exception):
                await pool.release(self.client._connection)
            raise
        self.token = get_connections().set(self.connection_name, self.client)
        return self.client

    async def __aexit__(self, exc_type: Any, exc_val: Any, exc_tb: Any) -> None:
        try:
            if not self.client._finalized:
                if exc_type:
                    if exc_type is not TransactionManagementError:  # a failed one cannot roll back
                        await self.client.rollback()
                else:
                    await self.client.commit()
        finally:
            get_connections().reset(self.token)  # first: a failed release must not leave it marked
            if self.client._parent._pool:
                await self.client._parent._pool.release(self.client._connection)


class AsyncpgClient(tortoise_asyncpg.AsyncpgDBClient):
    """tortoise's asyncpg client whose transactions begin cleanly (see the module docstring)."""

    def _in_transaction(self) -> TransactionContext:
        return _Transaction(tortoise_asyncpg.TransactionWrapper(self), self._pool_init_lock)


client_class = AsyncpgClient
