"""Canned responses in the desk REST API (Chatwoot's names: `short_code`, `content`):
`GET/POST /api/v1/canned_responses`, `PATCH/DELETE /api/v1/canned_responses/{id}`.

Every agent may read, add, change and delete them (the desk has no roles). A row is
`{"id", "short_code", "content", "created_at", "updated_at"}`; with `?ticket_id=` each row also
carries `rendered`: its content with the placeholders filled in for that ticket's customer and
the calling agent (`handoff.canned`), which is what the desk's composer inserts. A short code
already taken is a 409; a bad body a 400 naming the field, and nothing changes.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from tortoise.exceptions import IntegrityError

from handoff import canned
from handoff.desk.api import AGENT, _body, _id, _number
from handoff.errors import InvalidInput, InvalidState, NotFound
from handoff.models import CannedResponse, Conversation, Ticket
from handoff.validation import CannedResponseBody, CannedResponsePatch

routes = web.RouteTableDef()


def canned_json(row: CannedResponse, rendered: str | None = None) -> dict[str, Any]:
    """The API's shape of a canned response (`rendered` only when asked for a ticket)."""
    out: dict[str, Any] = {"id": row.id, "short_code": row.short_code, "content": row.content,
                           "created_at": row.created_at.isoformat(), "updated_at": row.updated_at.isoformat()}
    if rendered is not None:
        out["rendered"] = rendered
    return out


@routes.get("/api/v1/canned_responses")
async def list_canned(request: web.Request) -> web.Response:
    """Every canned response by short code; with `ticket_id`, each `rendered` for that ticket."""
    rows = await CannedResponse.all().order_by("short_code")
    raw = request.query.get("ticket_id")
    if not raw:
        return web.json_response({"canned_responses": [canned_json(r) for r in rows]})
    ticket = await Ticket.get_or_none(id=_number(raw, "ticket_id must be a ticket id"))
    if ticket is None:
        raise NotFound("ticket not found")
    conversation = await Conversation.get(id=ticket.conversation_id)  # type: ignore[attr-defined]
    values = await canned.values_for(conversation, request[AGENT])
    return web.json_response({"canned_responses": [canned_json(r, _rendered(r, values)) for r in rows]})


def _rendered(row: CannedResponse, values: canned.Values) -> str:
    try:
        return canned.render(row.content, values)
    except canned.TemplateError:
        return row.content  # saved before a rule changed: the agent sees it as written


def _taken(code: str) -> InvalidState:
    return InvalidState(f"short_code {code!r} is already taken")


@routes.post("/api/v1/canned_responses")
async def create_canned(request: web.Request) -> web.Response:
    """Add a canned response: 201 with it; 409 when its short code is taken."""
    data: CannedResponseBody = await _body(request, CannedResponseBody)
    try:
        row = await CannedResponse.create(short_code=data.short_code, content=data.content)
    except IntegrityError:
        raise _taken(data.short_code) from None
    return web.json_response(canned_json(row), status=201)


async def _row(request: web.Request) -> CannedResponse:
    row = await CannedResponse.get_or_none(id=_id(request))
    if row is None:
        raise NotFound("canned response not found")
    return row


@routes.patch("/api/v1/canned_responses/{id}")
async def update_canned(request: web.Request) -> web.Response:
    """Change a canned response's short code and/or content; 409 when the new code is taken."""
    row = await _row(request)
    data: CannedResponsePatch = await _body(request, CannedResponsePatch)
    changes = data.model_dump(exclude_none=True)
    if not changes:
        raise InvalidInput("give short_code or content to change")
    try:
        await row.update_from_dict(changes).save()
    except IntegrityError:
        raise _taken(data.short_code or "") from None
    return web.json_response(canned_json(row))


@routes.delete("/api/v1/canned_responses/{id}")
async def delete_canned(request: web.Request) -> web.Response:
    """Delete a canned response."""
    row = await _row(request)
    await row.delete()
    return web.json_response({"ok": True})
