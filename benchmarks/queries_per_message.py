"""SQL statements per answered api-channel message, grouped by where they run.

A real server (create_app, the offline bot) receives signed webhooks; a message counts as
answered when the bot's reply reaches the local callback receiver. Every statement the ORM
sends is recorded (the `tortoise.db_client` debug log) with the part of handoff that sent
it (receive, bot turn, outbox, ...); transactions are counted by their BEGIN, and commits
are the transactions plus the writes made outside one (each commits, and on SQLite's
default synchronous=FULL each commit is an fsync). Two rounds: the first message of new
conversations, then a follow-up in each.

    .venv/bin/python benchmarks/queries_per_message.py [--conversations 20] [--concurrency 1]
        [--database postgres://root@127.0.0.1:5432/test] [--statements]

With a postgres:// URL a throwaway database is created on that server and dropped after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import re
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import QUESTIONS, Callbacks, fresh_database, serve  # noqa: E402
from handoff.app import create_app  # noqa: E402
from handoff.channels.api import sign  # noqa: E402
from handoff.config import Settings  # noqa: E402

SECRET = "bench-secret"
# The outermost of these modules on the stack names the part that sent a statement.
# Units of the group commit run in its own task: there the unit's module names the part, and the
# statements the group runs after its units (the live-event log's append) are "group commit".
PARTS = {"handoff.gateway": "receive", "handoff.bot.turn": "bot turn", "handoff.bot.claim": "bot turn",
         "handoff.outbox": "outbox", "handoff.transitions": "transitions", "handoff.sweeper": "sweeper",
         "handoff.channels": "channel", "handoff.group_commit": "group commit"}


class QueryLog(logging.Handler):
    """Counts ORM statements and transactions by (part, statement shape)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.statements: Counter[tuple[str, str]] = Counter()
        self.transactions: Counter[str] = Counter()
        self.lone_writes: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        if not isinstance(record.args, tuple) or len(record.args) != 2:
            return  # connection set-up and tear-down messages
        part, sql = _part(), str(record.args[0])
        self.statements[(part, _shape(sql))] += 1
        if sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE")) and not _in_transaction():
            self.lone_writes[part] += 1

    def began(self) -> None:
        """Record a transaction's BEGIN."""
        self.transactions[_part()] += 1

    def reset(self) -> None:
        """Forget what was counted so far."""
        self.statements.clear()
        self.transactions.clear()
        self.lone_writes.clear()


def _part() -> str:
    found: list[str] = []
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        found += [part for prefix, part in PARTS.items() if module.startswith(prefix)][:1]
        frame = frame.f_back  # type: ignore[assignment]
    named = [part for part in found if part != "group commit"] or found or ["other"]
    return named[-1]  # the outermost


def _in_transaction() -> bool:
    from tortoise import connections
    from tortoise.backends.base.client import TransactionalDBClient

    return isinstance(connections.get("default"), TransactionalDBClient)


def _shape(sql: str) -> str:
    sql = re.sub(r"\s+", " ", sql).strip()
    return re.sub(r"\((?:\?|\$\d+)(?:,(?:\?|\$\d+))*\)", "(...)", sql)


def _count_transactions(log: QueryLog) -> None:
    from tortoise.backends.asyncpg.client import TransactionWrapper as PgTransaction
    from tortoise.backends.sqlite.client import SqliteTransactionWrapper

    from handoff.sqlite import _TransactionWrapper as HandoffSqliteTransaction

    for cls in (PgTransaction, SqliteTransactionWrapper, HandoffSqliteTransaction):  # each has its own begin
        begin = cls.begin

        async def counted(self: Any, _begin: Any = begin) -> None:
            log.began()
            await _begin(self)

        cls.begin = counted  # type: ignore[method-assign]


async def _round(session: aiohttp.ClientSession, url: str, replies: Callbacks, conversations: int,
                 turn: int, concurrency: int) -> None:
    pending = list(range(conversations))

    async def worker() -> None:
        while pending:
            i = pending.pop()
            key = f"q-conv-{i}"
            body = json.dumps({"id": f"q-{i}-{turn}", "conversation": key, "contact": {"id": f"q{i}"},
                               "text": QUESTIONS[(i + turn) % len(QUESTIONS)]}).encode()
            answered = replies.expect(f"{key}:bot")
            async with session.post(url, data=body, headers={"X-Handoff-Signature": sign(SECRET, body)}) as r:
                assert r.status == 202, await r.text()
            await asyncio.wait_for(answered, 30)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def _report(title: str, log: QueryLog, messages: int, show_statements: bool) -> None:
    total = sum(log.statements.values())
    commits = sum(log.transactions.values()) + sum(log.lone_writes.values())
    print(f"\n{title}: {total / messages:.1f} statements, {sum(log.transactions.values()) / messages:.1f} "
          f"transactions and {commits / messages:.1f} commits per answered message")
    parts = Counter[str]()
    for (part, _), n in log.statements.items():
        parts[part] += n
    for part, n in parts.most_common():
        commits = log.transactions[part] + log.lone_writes[part]
        print(f"  {part:<10} {n / messages:5.1f} statements  {log.transactions[part] / messages:4.1f} transactions"
              f"  {commits / messages:4.1f} commits")
        if show_statements:
            shapes = [(shape, c) for (p, shape), c in log.statements.items() if p == part]
            for shape, c in sorted(shapes, key=lambda item: -item[1]):
                print(f"      {c / messages:5.2f}  {shape[:150]}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--database", default="", help="a postgres:// server URL (default: SQLite)")
    parser.add_argument("--statements", action="store_true", help="list each statement shape")
    args = parser.parse_args()
    log = QueryLog()
    _count_transactions(log)
    logger = logging.getLogger("tortoise.db_client")
    async with fresh_database(args.database) as database:
        replies = Callbacks()
        sink, sink_url = await serve(replies.app)
        settings = Settings(database_url=database, api_secret=SECRET, api_callback_url=sink_url + "/callback")
        server, url = await serve(create_app(settings))
        try:
            logger.setLevel(logging.DEBUG)
            logger.addHandler(log)
            async with aiohttp.ClientSession() as session:
                print(f"database={database.split(':')[0]} conversations={args.conversations} "
                      f"concurrency={args.concurrency}")
                for turn, title in enumerate(("first message of a conversation", "follow-up message")):
                    log.reset()
                    await _round(session, url + "/webhooks/api", replies, args.conversations, turn,
                                 args.concurrency)
                    await asyncio.sleep(0.5)  # the last delivery's bookkeeping, after its callback
                    _report(title, log, args.conversations, args.statements)
        finally:
            logger.removeHandler(log)
            await server.cleanup()
            await sink.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
