"""The desk REST API (DESIGN.md §6): conversations, tickets, replies, transfer, handback,
file uploads, agent typing and the live event WebSocket. JSON in and out; errors are `{"error": ...}` with a 4xx.

Lists come newest activity first, paged by a cursor (`handoff.desk.paging`); ticket rows carry
the requesting agent's `unread` count, and opening a ticket marks it read (`handoff.desk.reads`).
Who may reply, transfer, hand back or close is `handoff.desk.rules`; the live stream carries to
each agent the events `handoff.desk.live` picks for them.

A reply carries files by the ids `POST /api/v1/uploads` returned; an agent can attach only the
files they uploaded themselves (never a customer's, never a colleague's)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiohttp import web
from tortoise.expressions import Q, Subquery

from handoff import presence
from handoff import transitions as ops
from handoff.channels.base import ShowsTyping, supports
from handoff.desk import filters, paging
from handoff.desk import stream as desk_stream
from handoff.desk.auth import agent_for_token
from handoff.desk.openapi import OPENAPI
from handoff.desk.reads import mark_read, unread_totals
from handoff.desk.rules import check_confirmed, permissions
from handoff.desk.serialize import conversation_json, conversations_json, tickets_json
from handoff.errors import InvalidInput, NotFound, TooLarge, Unauthorized
from handoff.events import EventKind, agent_json, event_json, message_json, ticket_json, ticket_row
from handoff.media import UploadError, attachment_json
from handoff.models import CONVERSATION_STATES, TICKET_STATUSES, Agent, Conversation, Event, Message, Ticket
from handoff.outbox import address_of
from handoff.runtime import RUNTIME, Runtime
from handoff.states import ConversationState
from handoff.validation import MAX_ID, Body, ConfirmBody, ReplyBody, TransferBody, TypingBody, read_model
from handoff.web.auth import agent_from_session

log = logging.getLogger(__name__)
PAGE_SIZE = 50
MAX_LIMIT = 200
MAX_SEARCH = 200
routes = web.RouteTableDef()
AGENT: web.RequestKey[Agent] = web.RequestKey("agent", Agent)


async def authenticate(request: web.Request) -> Agent | None:
    """The agent behind a request: Bearer token, `?token=` (WebSockets), or a desk session cookie."""
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        return await agent_for_token(header[7:].strip())
    if request.path.endswith("/stream") and request.query.get("token"):
        return await agent_for_token(request.query["token"])
    return await agent_from_session(request)


@web.middleware
async def api_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    """Authenticate /api/v1 requests (Unauthorized otherwise; `handoff.http_errors` answers every
    desk error)."""
    if not request.path.startswith("/api/v1/") or request.path == "/api/v1/openapi.json":
        return await handler(request)
    agent = await authenticate(request)
    if agent is None:
        raise Unauthorized("missing or invalid agent token")
    request[AGENT] = agent
    return await handler(request)


def _rt(request: web.Request) -> Runtime:
    return request.app[RUNTIME]


def _id(request: web.Request, name: str = "id") -> int:
    try:
        value = int(request.match_info[name])
    except ValueError:
        value = None
    if value is None or not 1 <= value <= MAX_ID:  # PostgreSQL refuses ids beyond 32 bits: no such row
        message = f"{name} must be a number" if value is None else "not found"
        raise NotFound(message)
    return value


async def _body(request: web.Request, model: type[Body], *, empty: bool = False) -> Any:
    """The request body validated as `model` (see handoff.validation): JSON 400 naming the field;
    with `empty`, no body at all reads as `{}`."""
    return await read_model(request, model, _rt(request).settings.max_body_bytes, empty=empty)


def _choices(request: web.Request, name: str, allowed: tuple[str, ...]) -> list[str]:
    """A comma-separated filter (`status=open,on_you`); InvalidInput if a value is not allowed."""
    raw = request.query.get(name, "")
    values = raw.split(",") if raw else []
    if any(v not in allowed for v in values):
        raise InvalidInput(f"{name} must be one or more of {', '.join(allowed)} (comma-separated)")
    return values


def _number(text: str, message: str, low: int = 1, high: int = MAX_ID) -> int:
    """A whole number from low to high written in ASCII digits; InvalidInput(message) otherwise."""
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise InvalidInput(message)
    return int(text)


def _paging(request: web.Request) -> tuple[int, str | None, str]:
    """A list request's `limit`, `before` (a cursor, `handoff.desk.paging`; checked there) and search text `q`."""
    limit = request.query.get("limit")
    before = request.query.get("before")
    q = request.query.get("q", "").strip()
    if len(q) > MAX_SEARCH or any(ord(ch) < 32 for ch in q):
        raise InvalidInput(f"q must be at most {MAX_SEARCH} characters, without control characters")
    size = _number(limit, f"limit must be a whole number from 1 to {MAX_LIMIT}", high=MAX_LIMIT) if limit else PAGE_SIZE
    if before:
        paging.parse(before)  # a malformed cursor is 400 before any query
    return size, before or None, q


@routes.get("/api/v1/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """The OpenAPI document of this API."""
    return web.json_response(OPENAPI)


@routes.get("/api/v1/conversations")
async def list_conversations(request: web.Request) -> web.Response:
    """Conversations, newest activity first, a page at a time; `state`, `q` (customer, ticket subject),
    `label`, `responded_by` and `agent_type` (`desk.filters`) filter."""
    query = Conversation.all()
    states = _choices(request, "state", CONVERSATION_STATES)
    if states:
        query = query.filter(state__in=states)
    query = query.filter(filters.conversations(request, request[AGENT].id))
    limit, before, q = _paging(request)
    if q:
        subjects = Ticket.filter(subject__icontains=q).values("conversation_id")
        query = query.filter(Q(contact__name__icontains=q) | Q(contact__email__icontains=q)
                             | Q(contact_external_id__icontains=q) | Q(id__in=Subquery(subjects)))
    rows, next_before = await paging.page(query.select_related("contact", "assignee", "responded_by_agent"), "last_activity_at", limit, before)
    return web.json_response({"conversations": await conversations_json(rows, request[AGENT].id),
                              "next_before": next_before})


@routes.get("/api/v1/conversations/{id}")
async def get_conversation(request: web.Request) -> web.Response:
    """One conversation with its messages (including notes and separators) and timeline events."""
    conversation = await Conversation.get_or_none(id=_id(request))
    if conversation is None:
        raise NotFound("conversation not found")
    return web.json_response(await _conversation_detail(conversation, request[AGENT]))


async def _conversation_detail(conversation: Conversation, agent: Agent) -> dict[str, Any]:
    messages = await Message.filter(conversation_id=conversation.id).order_by("id")
    agents = {a.id: a for a in await Agent.filter(id__in={m.agent_id for m in messages if m.agent_id})}  # type: ignore[attr-defined]
    events = await Event.filter(conversation_id=conversation.id).order_by("id")
    tickets = await Ticket.filter(conversation_id=conversation.id).order_by("id").select_related("assignee")
    return {
        **await conversation_json(conversation, agent.id),
        "messages": [message_json(m, agents) for m in messages],
        "events": [event_json(e) for e in events],
        "tickets": [ticket_row(t, t.assignee) for t in tickets],
    }


@routes.post("/api/v1/conversations/{id}/takeover")
async def takeover(request: web.Request) -> web.Response:
    """Take a bot conversation over: 201 with the new ticket, or 409 naming who won."""
    ticket = await ops.takeover(_rt(request), _id(request), request[AGENT])
    return web.json_response(await ticket_json(ticket), status=201)


@routes.get("/api/v1/tickets")
async def list_tickets(request: web.Request) -> web.Response:
    """Tickets, newest activity of their conversation first, a page at a time; `status`,
    `assignee=me|none|<id>`, `q` (customer, subject) and `label` filter; each row with the caller's `unread`."""
    query = Ticket.all()
    statuses = _choices(request, "status", TICKET_STATUSES)
    if statuses:
        query = query.filter(status__in=statuses)
    assignee = request.query.get("assignee")
    if assignee == "me":
        query = query.filter(assignee_id=request[AGENT].id)
    elif assignee == "none":
        query = query.filter(assignee_id=None)
    elif assignee:
        query = query.filter(assignee_id=_number(assignee, "assignee must be me, none or an agent id"))
    query = query.filter(filters.tickets(request))
    limit, before, q = _paging(request)
    if q:
        query = query.filter(Q(subject__icontains=q) | Q(conversation__contact__name__icontains=q)
                             | Q(conversation__contact__email__icontains=q)
                             | Q(conversation__contact_external_id__icontains=q))
    rows, next_before = await paging.page(query.select_related("assignee", "conversation__contact"),
                                          "conversation__last_activity_at", limit, before)
    return web.json_response({"tickets": await tickets_json(rows, request[AGENT].id), "next_before": next_before})


@routes.get("/api/v1/unread")
async def unread(request: web.Request) -> web.Response:
    """The caller's unread customer messages on their live tickets and on unassigned ones (the nav's counts)."""
    return web.json_response(await unread_totals(request[AGENT].id))


@routes.get("/api/v1/tickets/{id}")
async def get_ticket(request: web.Request) -> web.Response:
    """One ticket with its conversation's full timeline and what the caller may do (`permissions`);
    marks the ticket read for the caller."""
    agent = request[AGENT]
    ticket = await Ticket.get_or_none(id=_id(request))
    if ticket is None:
        raise NotFound("ticket not found")
    await mark_read(agent.id, ticket.id)
    conversation = await Conversation.get(id=ticket.conversation_id)  # type: ignore[attr-defined]
    row = await ticket_json(ticket)
    detail = await _conversation_detail(conversation, agent)
    return web.json_response({**row, "labels": detail["labels"],
                              "permissions": permissions(row, agent, composer=_rt(request).composer is not None),
                              "conversation": detail})


@routes.post("/api/v1/tickets/{id}/read")
async def read(request: web.Request) -> web.Response:
    """Mark the ticket read for the caller (the desk, when a message arrives on the ticket shown)."""
    ticket_id = _id(request)
    if not await Ticket.exists(id=ticket_id):
        raise NotFound("ticket not found")
    await mark_read(request[AGENT].id, ticket_id)
    return web.json_response({"ok": True})


async def _confirmed(request: web.Request, action: str, confirm: bool) -> int:
    """The ticket id of the path, once desk.rules lets the caller do `action` on it."""
    ticket = await Ticket.get_or_none(id=_id(request))
    if ticket is None:
        raise NotFound("ticket not found")
    await check_confirmed(ticket, request[AGENT], action, confirm)
    return ticket.id


@routes.post("/api/v1/tickets/{id}/messages")
async def post_message(request: web.Request) -> web.Response:
    """A reply to the customer, or an internal note with `"internal": true`."""
    data: ReplyBody = await _body(request, ReplyBody)
    attachments = _attachments(request, data.attachments)
    message = await ops.reply(_rt(request), _id(request), request[AGENT], data.text,  # type: ignore[arg-type]
                              internal=data.internal, attachments=attachments)
    return web.json_response(message_json(message, {request[AGENT].id: request[AGENT]}), status=201)


def _attachments(request: web.Request, ids: list[str] | None) -> list[dict[str, Any]]:
    """The files a reply's `attachments` ids name (validated: a list of at most MAX_ATTACHMENTS
    strings); InvalidInput unless the calling agent uploaded each."""
    if not ids:
        return []
    media = _rt(request).media
    found = []
    for file_id in ids:
        stored = media.owned(file_id, agent_id=request[AGENT].id)
        if stored is None:
            raise InvalidInput(f"unknown attachment id {file_id[:40]!r}: upload it with POST /api/v1/uploads first")
        found.append(stored)
    return [attachment_json(media.attach(stored)) for stored in found]


@routes.post("/api/v1/uploads")
async def upload(request: web.Request) -> web.Response:
    """Store one file (multipart field `file`) for the calling agent to attach to a reply."""
    media = _rt(request).media
    try:
        stored = await media.save_upload(request, {"agent_id": request[AGENT].id})
    except UploadError as exc:
        raise (TooLarge if exc.status == 413 else InvalidInput)(str(exc)) from None
    return web.json_response(media.upload_json(stored), status=201)


@routes.post("/api/v1/tickets/{id}/claim")
async def claim(request: web.Request) -> web.Response:
    """Assign an unassigned ticket to the calling agent."""
    ticket = await ops.claim(_rt(request), _id(request), request[AGENT])
    return web.json_response(await ticket_json(ticket))


@routes.post("/api/v1/tickets/{id}/transfer")
async def transfer(request: web.Request) -> web.Response:
    """Pass the ticket to another agent with a note (someone else's ticket: with `confirm`)."""
    data: TransferBody = await _body(request, TransferBody)
    ticket_id = await _confirmed(request, "transfer", data.confirm)
    ticket = await ops.transfer(_rt(request), ticket_id, request[AGENT], data.agent_id, data.note or "")
    return web.json_response(await ticket_json(ticket))


@routes.post("/api/v1/tickets/{id}/allow-ai")
async def allow_ai(request: web.Request) -> web.Response:
    """Hand the conversation back to the AI and close the ticket (someone else's ticket: with `confirm`)."""
    data: ConfirmBody = await _body(request, ConfirmBody, empty=True)
    ticket = await ops.allow_ai(_rt(request), await _confirmed(request, "allow-ai", data.confirm), request[AGENT])
    return web.json_response(await ticket_json(ticket))


@routes.post("/api/v1/tickets/{id}/close")
async def close(request: web.Request) -> web.Response:
    """Close the ticket and end the conversation (someone else's ticket: with `confirm`)."""
    data: ConfirmBody = await _body(request, ConfirmBody, empty=True)
    ticket = await ops.close(_rt(request), await _confirmed(request, "close", data.confirm), request[AGENT])
    return web.json_response(await ticket_json(ticket))


@routes.post("/api/v1/conversations/{id}/typing")
async def typing(request: web.Request) -> web.Response:
    """Show or hide "agent is typing" to the customer (channels that have it) and to other agents."""
    rt = _rt(request)
    agent = request[AGENT]
    conversation_id = _id(request)
    on = (await _body(request, TypingBody)).typing
    conversation = await Conversation.get_or_none(id=conversation_id)
    if conversation is None:
        raise NotFound("no such conversation")
    channel = rt.channels.get(conversation.channel)
    if supports(channel, ShowsTyping) and conversation.state == ConversationState.HUMAN:
        # In the background: a provider's typing call (Meta, Telegram) must not hold up the desk.
        rt.spawn(channel.typing(address_of(conversation), on, agent.name), name=f"typing-{conversation.id}")
    rt.hub.publish(EventKind.TYPING, conversation_id=conversation.id, who="agent",
                   agent={"id": agent.id, "name": agent.name}, typing=on)
    return web.json_response({"ok": True})


@routes.get("/api/v1/agents")
async def agents(request: web.Request) -> web.Response:
    """Active agents (for transfer), each with their `presence` (online, away, offline)."""
    rows = await Agent.filter(is_active=True).order_by("name")
    now = await presence.presence_of(a.id for a in rows)
    return web.json_response({"agents": [presence.agent_with_presence(a, now[a.id]) for a in rows],
                              "me": agent_json(request[AGENT])})


@routes.get("/api/v1/stream")
async def stream(request: web.Request) -> web.StreamResponse:
    """A WebSocket of live desk events (JSON objects with a `kind`; logged ones carry their `seq`),
    those `desk.live` picks for the caller; `?after=<seq>` resumes (see desk/stream.py). 400 when
    `after` is not a number."""
    after_text = request.query.get("after")
    try:
        after = None if after_text in (None, "") else max(0, int(after_text))
    except ValueError:
        raise InvalidInput("after must be an event seq") from None
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    rt = _rt(request)
    agent = request[AGENT]
    connection: list[int] = []
    beat: list[asyncio.Task[None]] = []

    async def opened() -> None:
        # The open stream is the agent's presence (handoff.presence), renewed while it lasts.
        connection_id, came_online = await presence.connect(rt.hub, agent)
        connection.append(connection_id)
        beat.append(asyncio.create_task(_heartbeat(agent.id, connection_id)))
        if came_online:
            rt.spawn(ops.route_waiting(rt, agent.id), name=f"route-to-{agent.id}")

    try:
        await desk_stream.serve(rt.hub, ws, agent_json(agent), agent.id, after, opened)
    finally:
        for connection_id in connection:
            # In a task of its own: aiohttp cancels this handler once the socket has closed.
            rt.spawn(presence.disconnect(rt.hub, agent.id, connection_id), name=f"offline-{connection_id}")
        for task in beat:
            task.cancel()
        await asyncio.gather(*beat, return_exceptions=True)
    return ws


async def _heartbeat(agent_id: int, connection_id: int) -> None:
    while True:
        await asyncio.sleep(presence.CONNECTION_TTL / 3)
        try:
            await presence.heartbeat(agent_id, connection_id)
        except Exception:  # a database blip: the next beat tries again before the row expires
            log.warning("presence heartbeat failed", exc_info=True)
