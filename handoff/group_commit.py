"""Group commit: units of work that arrive while a transaction is committing are run together in
the next transaction, so N concurrent writes cost one BEGIN/COMMIT (and, on SQLite, one fsync)
instead of N. The hot path's writes are its units: a webhook's message (`gateway.receive`), a bot
turn's claim and its reply (`bot.claim`, `bot.turn.write_bot_reply`), the outbox's claim of a row
and its final records (`outbox`). On PostgreSQL several groups run at once (`parallel`).

`GroupCommit.run(work)` returns `work()`'s result only after the transaction that ran it has
committed: "acknowledged only after commit" holds for every member of a group. Nothing waits for
company: a unit that finds no transaction in flight starts one at once; those that arrive while it
commits form the next group (at most `max_group` units). When a group's transaction raises (one
unit's unique-index refusal, a lost compare-and-set, a deadlock), the whole group is rolled back
and each of its units runs again alone, in its own transaction, so one failing unit costs its
neighbours only a retry and each caller gets its own unit's result or exception.

PostgreSQL may abort one of two transactions that wait for each other's row locks (deadlock,
SQLSTATE 40P01: groups that run at once take their units' rows in no common order) or a
serialization failure (40001): such a unit, alone, runs again in a new transaction, up to
`TRANSIENT_ATTEMPTS` times with a short random backoff (tenacity), before its caller gets the error.

A unit must be safe to run twice after a rollback (it re-reads what it decides on, and collects
its after-commit effects in what it returns, not elsewhere).

A unit may hand an item to a batch step with `last(batch, item)`: after every unit of its
transaction, just before the commit, each batch step runs once with the items all units queued for
it. The live-event log's append goes there: it takes a lock held until the commit
(`handoff.eventlog`), and a unit that took it mid-group and then waited for a row another
transaction holds while that one waited for the lock would deadlock; and the whole group's events
cost one INSERT instead of one per unit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, TypeVar

from asyncpg.exceptions import TransactionRollbackError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_random_exponential
from tortoise.transactions import in_transaction

log = logging.getLogger(__name__)

T = TypeVar("T")
Unit = Callable[[], Awaitable[Any]]
Batch = Callable[[list[Any]], Awaitable[None]]

# The batch steps the units of the transaction being run queued items for with `last()`, each with
# its items, in the order first queued; None outside one.
_last_steps: ContextVar[dict[Batch, list[Any]] | None] = ContextVar("group_commit_last_steps", default=None)


def last(batch: Batch, item: Any) -> bool:
    """Queue `item` for `batch`, awaited once with every item queued for it (in order) after every
    unit of the current group-commit transaction, before its commit; batches run in the order
    first queued. False when no unit is running here (the caller does the work itself)."""
    steps = _last_steps.get()
    if steps is None:
        return False
    steps.setdefault(batch, []).append(item)
    return True


@contextlib.asynccontextmanager
async def _transaction() -> Any:
    """`in_transaction()` that runs the batch steps queued with `last()` when its block ends."""
    steps: dict[Batch, list[Any]] = {}
    token = _last_steps.set(steps)
    try:
        async with in_transaction():
            yield
            _last_steps.set(None)  # a step runs as itself, not as a unit
            for batch, items in steps.items():
                await batch(items)
    finally:
        _last_steps.reset(token)


def transient(exc: BaseException) -> bool:
    """Whether `exc` is PostgreSQL's "run the transaction again" (class 40: a deadlock, a
    serialization failure), as asyncpg raises it (tortoise passes it on untranslated)."""
    return isinstance(exc, TransactionRollbackError) or isinstance(exc.__cause__, TransactionRollbackError)


TRANSIENT_ATTEMPTS = 5  # runs of a unit alone that PostgreSQL aborted as transient, before giving up

# PostgreSQL: group-commit transactions run at once (of tortoise's default pool of 5 connections,
# one is left for the rest: the desk, the sweeper, a takeover).
GROUPS_AT_ONCE = 4


class GroupCommit:
    """Runs concurrent units of work in shared transactions (see the module docstring)."""

    def __init__(self, max_group: int = 64, parallel: int = 1) -> None:
        self.max_group = max_group
        # Transactions run at once: 1 on SQLite (one connection, one writer); on PostgreSQL a few,
        # so that one group's round trips to the server overlap another's.
        self.parallel = parallel
        self._waiting: list[tuple[Unit, asyncio.Future[Any]]] = []
        self._committers: set[asyncio.Task[None]] = set()
        # For tests and benchmarks: transactions committed, how many of them ran more than one
        # unit, units committed, and runs of a unit alone again after a transient error.
        self.commits = 0
        self.groups = 0
        self.units = 0
        self.retries = 0

    async def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """`await work()` inside a transaction, shared with units that arrive meanwhile; returns
        its result once that transaction has committed, or raises what `work` raised alone."""
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._waiting.append((work, future))
        if len(self._committers) < self.parallel:
            self._committers.add(asyncio.create_task(self._commit_all(), name="group-commit"))
        # Shielded: a caller that goes away does not cancel its neighbours' transaction.
        return await asyncio.shield(future)

    async def _commit_all(self) -> None:
        group: list[tuple[Unit, asyncio.Future[Any]]] = []
        try:
            while self._waiting:
                # With several committers, an equal share of what waits each.
                size = min(self.max_group, -(-len(self._waiting) // self.parallel))
                group, self._waiting = self._waiting[:size], self._waiting[size:]
                if len(group) == 1:
                    await self._alone(*group[0])
                else:
                    await self._together(group)
        except asyncio.CancelledError:  # stopping: nobody is left waiting for an answer
            for _, future in [*group, *self._waiting]:
                future.cancel()
            self._waiting = []
            raise
        finally:  # at once: a unit queued after this point must find the slot free
            self._committers.discard(asyncio.current_task())  # type: ignore[arg-type]

    async def _together(self, group: list[tuple[Unit, asyncio.Future[Any]]]) -> None:
        results: list[Any] = []
        try:
            async with _transaction():
                for work, _ in group:
                    results.append(await work())
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 — the units run again and each caller gets its own outcome
            failed = len(results)  # the unit that raised; all of them ran when the commit itself failed
            log.debug("a group of %d units failed at unit %d (%s: %s)", len(group), failed, type(exc).__name__, exc)
            if failed == len(group):
                for unit in group:
                    await self._alone(*unit)
                return
            # The units before the one that raised go again together, that one alone, the rest
            # back to the head of the queue: the next group.
            self._waiting[:0] = group[failed + 1:]
            if failed > 1:
                await self._together(group[:failed])
            elif failed == 1:
                await self._alone(*group[0])
            await self._alone(*group[failed])
            return
        self.commits += 1
        self.groups += 1
        self.units += len(group)
        for (_, future), result in zip(group, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def _alone(self, work: Unit, future: asyncio.Future[Any]) -> None:
        try:
            async for attempt in AsyncRetrying(
                    retry=retry_if_exception(transient), stop=stop_after_attempt(TRANSIENT_ATTEMPTS),
                    wait=wait_random_exponential(multiplier=0.02, max=0.5), before_sleep=self._retrying, reraise=True):
                with attempt:
                    async with _transaction():
                        result = await work()
        except asyncio.CancelledError:
            if not future.done():
                future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 — raised to the unit's caller
            if not future.done():
                future.set_exception(exc)
        else:
            self.commits += 1
            self.units += 1
            if not future.done():
                future.set_result(result)

    def _retrying(self, state: RetryCallState) -> None:
        self.retries += 1
        log.info("a unit runs again after %s", state.outcome.exception() if state.outcome else "a transient error")
