"""The desk API's notifications (issue 16, item 2): what was left for the calling agent alone,
today the @mentions of them in colleagues' internal notes (`handoff.mentions`).

- `GET /api/v1/notifications?limit=50&before=<cursor>`: `{"notifications", "next_before",
  "unread"}`, newest first, paged like the other lists (`handoff.desk.paging`, by creation
  time); `unread` counts all of the caller's unread ones;
- `POST /api/v1/notifications/{id}/read`: the notification, now read (a second call keeps the
  first `read_at`);
- `POST /api/v1/notifications/read-all`: `{"marked"}`, how many were unread.

An agent only ever sees their own: another agent's notification id is 404, like a missing one.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from handoff.desk import paging
from handoff.desk.api import AGENT, MAX_LIMIT, PAGE_SIZE
from handoff.errors import InvalidInput, NotFound
from handoff.mentions import notification_json
from handoff.models import Notification, utcnow
from handoff.validation import MAX_ID

routes = web.RouteTableDef()


def _json(row: Notification) -> dict[str, Any]:
    contact = row.conversation.contact
    label = contact.name or contact.email or row.conversation.contact_external_id
    return notification_json(row, actor=row.actor, text=row.message.text if row.message else "", contact_name=label)


def _mine(request: web.Request) -> Any:
    return Notification.filter(agent_id=request[AGENT].id).select_related("actor", "message", "conversation__contact")


@routes.get("/api/v1/notifications")
async def list_notifications(request: web.Request) -> web.Response:
    """The caller's notifications, newest first, a page at a time, with their `unread` count."""
    limit_text = request.query.get("limit", "")
    if limit_text and not (limit_text.isascii() and limit_text.isdigit() and 1 <= int(limit_text) <= MAX_LIMIT):
        raise InvalidInput(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    before = request.query.get("before") or None
    if before:
        paging.parse(before)  # a malformed cursor is 400 before any query
    rows, next_before = await paging.page(_mine(request), "created_at", int(limit_text or PAGE_SIZE), before)
    unread = await Notification.filter(agent_id=request[AGENT].id, read_at=None).count()
    return web.json_response({"notifications": [_json(row) for row in rows], "next_before": next_before,
                              "unread": unread})


@routes.post("/api/v1/notifications/read-all")
async def read_all(request: web.Request) -> web.Response:
    """Mark every unread notification of the caller read: `{"marked": n}`."""
    marked = await Notification.filter(agent_id=request[AGENT].id, read_at=None).update(read_at=utcnow())
    return web.json_response({"marked": marked})


@routes.post("/api/v1/notifications/{id}/read")
async def read_one(request: web.Request) -> web.Response:
    """Mark one of the caller's notifications read; the notification."""
    raw = request.match_info["id"]
    number = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 10 else 0
    if not 1 <= number <= MAX_ID:
        raise NotFound("notification not found")
    await Notification.filter(id=number, agent_id=request[AGENT].id, read_at=None).update(read_at=utcnow())
    row = await _mine(request).get_or_none(id=number)
    if row is None:
        raise NotFound("notification not found")
    return web.json_response(_json(row))
