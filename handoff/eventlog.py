"""The live-event log (`LiveEvent` rows): every live event a client may need again, with the
`seq` (the row id) it resumes from.

Rows are written inside the transaction that produces the events (`append`, one multi-row
INSERT just before the commit), so an event is logged exactly when its change is committed.

Readers never skip a row that commits late: rows become visible in seq order on both stores.
PostgreSQL draws ids from a sequence when the INSERT runs, not when the transaction commits, so
`append` first takes a transaction-level advisory lock (`APPEND_LOCK_KEY`), held until the
commit: appends commit one after another, and a reader that sees seq N will never later see a
row below N appear. The cost is that the tail of event-producing transactions (the INSERT and
the commit, about a millisecond) is serialized across all instances. SQLite has one writer at a
time and the table's ids are never reused (AUTOINCREMENT). A rolled-back append leaves a hole
in the ids, never a late row.
"""

from __future__ import annotations

import json
from typing import Any

from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient

from handoff import db
from handoff.models import LiveEvent

# pg_advisory_xact_lock key serializing appends: any 64-bit number no other lock in handoff uses.
APPEND_LOCK_KEY = 0x68616E646F666C  # "handofl"


async def append(events: list[dict[str, Any]], conn: BaseDBAsyncClient | None = None) -> list[int]:
    """Insert `events` (`{"kind", **data}` each) in the current transaction (`conn`, else the
    context's connection), in order, with one INSERT; returns their seqs. Raises what the
    database raises; nothing is written for an empty list."""
    if not events:
        return []
    conn = conn or connections.get("default")
    postgres = conn.capabilities.dialect == "postgres"
    if postgres:
        await conn.execute_query("SELECT pg_advisory_xact_lock($1)", [APPEND_LOCK_KEY])
    now = db.clock().sql
    values: list[Any] = []
    rows = []
    for i, event in enumerate(events):
        data = {k: v for k, v in event.items() if k != "kind"}
        values += [str(event["kind"]), json.dumps(data, default=str, separators=(",", ":"))]
        rows.append(f"(${2 * i + 1}, ${2 * i + 2}::jsonb, {now})" if postgres else f"(?, ?, {now})")
    sql = f"INSERT INTO live_event (kind, data, created_at) VALUES {', '.join(rows)} RETURNING id"
    result = await conn.execute_query_dict(sql, values)
    return sorted(int(row["id"]) for row in result)


async def after(seq: int, *, upto: int | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """The logged events with `seq < id` (and `id <= upto`, when given), oldest first, `limit`
    at most, each as subscribers get it: `{"kind", **data, "seq"}`."""
    query = LiveEvent.filter(id__gt=seq)
    if upto is not None:
        query = query.filter(id__lte=upto)
    rows = await query.order_by("id").limit(limit).values_list("id", "kind", "data")
    return [{"kind": kind, **_data(data), "seq": int(seq_)} for seq_, kind, data in rows]


async def first() -> int | None:
    """The oldest seq still in the log; None when the log is empty."""
    value = await LiveEvent.all().order_by("id").limit(1).values_list("id", flat=True)
    return int(value[0]) if value else None


async def last() -> int:
    """The newest seq in the log (0 when it is empty)."""
    value = await LiveEvent.all().order_by("-id").limit(1).values_list("id", flat=True)
    return int(value[0]) if value else 0


async def prune(max_age: float) -> int:
    """Delete rows older than `max_age` seconds (the database's clock); returns how many."""
    return await LiveEvent.filter(created_at__lt=db.clock(-max_age)).delete()


def _data(data: Any) -> dict[str, Any]:
    if isinstance(data, str):  # raw values come back as text on SQLite
        data = json.loads(data)
    return data if isinstance(data, dict) else {}
