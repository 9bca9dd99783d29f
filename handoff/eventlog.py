"""The live-event log (`LiveEvent` rows): every event a client may need again, with the `seq`
it resumes from.

Rows become visible in id order, on every store, so a reader that has seen `seq` N has seen
every row below it that will ever exist: on PostgreSQL each append takes a transaction-level
advisory lock before its ids are drawn from the sequence, so appends commit one after another;
SQLite has one writer at a time and never reuses an AUTOINCREMENT id. A rolled-back append
leaves a hole in the ids, never a late row.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tortoise.transactions import in_transaction

from handoff.models import LiveEvent, utcnow

# pg_advisory_xact_lock key serializing appends: any 64-bit number no other application uses.
APPEND_LOCK_KEY = 0x68616E646F6667  # "handofg"


async def append(origin: str, events: list[tuple[dict[str, Any], bool]]) -> list[int]:
    """Store `events` (each `(event, everywhere)`, event = `{"kind", **data}`) in one
    transaction, in order; returns their ids (seq). Raises what the database raises."""
    async with in_transaction() as conn:
        if conn.capabilities.dialect == "postgres":
            await conn.execute_query("SELECT pg_advisory_xact_lock($1)", [APPEND_LOCK_KEY])
        rows = [LiveEvent(kind=str(event["kind"]), origin=origin, everywhere=everywhere,
                          data={k: v for k, v in event.items() if k != "kind"})
                for event, everywhere in events]
        ids = []
        for row in rows:  # one by one: bulk_create does not give the ids back on SQLite
            await row.save(using_db=conn)
            ids.append(row.id)
    return ids


async def after(seq: int, *, upto: int | None = None, limit: int = 1000) -> list[LiveEvent]:
    """Rows with `seq < id` (and `id < upto`, when given), oldest first, `limit` at most."""
    query = LiveEvent.filter(id__gt=seq)
    if upto is not None:
        query = query.filter(id__lt=upto)
    return await query.order_by("id").limit(limit)


async def bounds() -> tuple[int, int]:
    """(lowest, highest) id still in the log; (0, 0) when it is empty."""
    first = await LiveEvent.all().order_by("id").first().values_list("id", flat=True)
    last = await LiveEvent.all().order_by("-id").first().values_list("id", flat=True)
    return int(first or 0), int(last or 0)


async def prune(max_age: timedelta) -> int:
    """Delete rows older than `max_age`; returns how many."""
    return await LiveEvent.filter(created_at__lt=utcnow() - max_age).delete()


def event_of(row: LiveEvent) -> dict[str, Any]:
    """The event a row holds, as subscribers receive it: `{"kind", **data, "seq"}`."""
    return {"kind": row.kind, **(row.data or {}), "seq": row.id}
