"""Keyset paging of the desk's lists by last activity (issue 15): newest activity first, ties
broken by id (higher first), so every row appears on exactly one page even when many share a
timestamp.

The cursor (`next_before`, passed back as `before`) is the last row's position, written
`<last activity in microseconds since 1970-01-01 UTC>_<id>` (`1733011200123456_42`): it keeps
paging where it was even when that row has had new activity since (it then shows at the top of
a fresh first page). A bare id is also taken as `before` (the row's position now), as earlier
clients sent.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Any

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

from handoff.errors import InvalidInput
from handoff.validation import MAX_ID

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MICROSECOND = timedelta(microseconds=1)
CURSOR = re.compile(r"(?:(\d{1,17})_)?(\d{1,10})")
BAD_CURSOR = "before must be a next_before value (or an id)"


def cursor(activity: datetime, row_id: int) -> str:
    """The cursor of a row at (`activity`, `row_id`)."""
    return f"{(activity - EPOCH) // MICROSECOND}_{row_id}"


def parse(text: str) -> tuple[datetime | None, int]:
    """(activity, id) of a cursor; (None, id) for a bare id. InvalidInput for anything else."""
    match = CURSOR.fullmatch(text) if text.isascii() else None
    if match is None or not 1 <= int(match[2]) <= MAX_ID:
        raise InvalidInput(BAD_CURSOR)
    return (EPOCH + int(match[1]) * MICROSECOND if match[1] else None), int(match[2])


async def page(query: QuerySet[Any], activity_field: str, limit: int, before: str | None
               ) -> tuple[list[Any], str | None]:
    """Up to `limit` rows of `query` after the cursor `before`, ordered by `activity_field`
    (a column or a related one, `conversation__last_activity_at`) then id, both descending;
    and the next page's cursor (None on the last page). A bare id whose row is gone is 400."""
    if before is not None:
        activity, row_id = parse(before)
        if activity is None:
            found = await query.model.filter(id=row_id).values_list(activity_field, flat=True)
            if not found:
                raise InvalidInput(BAD_CURSOR)
            activity = found[0]
        query = query.filter(Q(**{f"{activity_field}__lt": activity})
                             | Q(**{activity_field: activity, "id__lt": row_id}))
    rows = await query.order_by(f"-{activity_field}", "-id").limit(limit + 1)
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
    return rows[:limit], cursor(_activity_of(last, activity_field), last.id)


def _activity_of(row: Any, field: str) -> datetime:
    for part in field.split("__"):
        row = getattr(row, part)
    return row
