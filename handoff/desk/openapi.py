"""The OpenAPI 3.1 document of the desk REST API, served at /api/v1/openapi.json, generated from
pydantic models so each body is described once.

Request bodies are the models `handoff.validation` validates them with (`ReplyBody`,
`TransferBody`, `TypingBody`: their `model_json_schema()`); responses are the models below,
one per JSON object the API answers (`Ticket`, `Conversation`, `Message`, `Agent`, `Event`,
the pages and the errors), emitted under `components/schemas` by pydantic
(`models_json_schema`). Response models forbid unknown fields, so a test validating real
answers against them (tests/desk/test_openapi.py) fails when the API answers a field the
document does not name. Timestamps are ISO 8601 strings in UTC.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from handoff.models import AUTHOR_KINDS, CONVERSATION_STATES, DIRECTIONS, TICKET_STATUSES
from handoff.desk.rules import __doc__ as RULES
from handoff.validation import MAX_ID, ConfirmBody, ReplyBody, TransferBody, TypingBody


NEXT_BEFORE = ("The `before` of the next page (a cursor: the last row's last activity in microseconds and "
               "its id, `1733011200123456_42`); null on the last page.")


class Schema(BaseModel):
    """Base of response objects: every field the API answers is declared."""

    model_config = ConfigDict(extra="forbid")


class Error(Schema):
    """Every error answer."""

    error: str


class Agent(Schema):
    """An agent (never their token or password hash)."""

    id: int
    name: str
    email: str


class Conflict(Schema):
    """A 409: the state forbids it, or another agent won the race (then `ticket_id` and `assignee` say who),
    or the ticket is someone else's and the action needs `"confirm": true` (`confirm_required`)."""

    error: str
    ticket_id: int | None = None
    assignee: Agent | None = None
    confirm_required: bool | None = None


class LastMessage(Schema):
    """The last customer, bot or agent message of a conversation (notes, notices and separators
    left out); `text` cut to 200 characters (a file's name when it has no text)."""

    text: str
    author_kind: Literal["customer", "bot", "agent"]
    created_at: str


class LastResponder(Schema):
    """Who wrote last: the customer, the bot or an agent (`agent` names them; null otherwise)."""

    kind: Literal["customer", "bot", "agent"]
    agent: Agent | None


class Permissions(Schema):
    """What the requesting agent may do with the ticket (see the rules in the API's description):
    `confirm` says that transfer, allow-AI and close need `"confirm": true` (someone else's ticket)."""

    reply: bool
    note: bool
    claim: bool
    transfer: bool
    allow_ai: bool
    close: bool
    confirm: bool


class Unread(Schema):
    """The caller's unread customer messages: on their live tickets, and on live unassigned ones."""

    mine: int
    unassigned: int


class Contact(Schema):
    """The customer of a conversation; `external_id` is their id on the channel."""

    id: int
    name: str | None
    email: str | None
    external_id: str


class Attachment(Schema):
    """A file on a message, served from `url`; a file that was not kept (an emailed file over the
    size limit) has no `url` and a `note` saying why ("not kept: too large")."""

    url: str | None
    filename: str | None
    content_type: str
    size: int | None
    note: str | None = None


class Revision(Schema):
    """An earlier text of an edited message."""

    text: str
    replaced_at: str


class MessageAgent(Schema):
    """The agent who wrote a message (only `id` once the agent is gone)."""

    id: int
    name: str | None = None
    email: str | None = None


class MessageSender(Schema):
    """Who wrote a customer message, in the channel's terms: `id` (address, phone number, user id),
    `name` when known, `automated` for an email an autoresponder or a mailing system sent."""

    id: str
    name: str | None
    automated: bool = False


class Message(Schema):
    """A timeline message: customer, bot, agent, notice, internal note (`private`) or separator.
    `origin` names where a person wrote it outside the desk ("slack", "instagram_app"); an unsent
    message is `deleted` with empty text and attachments."""

    id: int
    conversation_id: int
    ticket_id: int | None
    direction: Literal[DIRECTIONS]  # type: ignore[valid-type]
    author: Literal[AUTHOR_KINDS]  # type: ignore[valid-type]
    agent: MessageAgent | None
    text: str
    private: bool
    notice: str | None
    attachments: list[Attachment]
    deleted: bool
    edited_at: str | None
    revisions: list[Revision]
    delivery_status: str
    delivery_error: str | None
    origin: str | None
    sender: MessageSender | None
    created_at: str


class Event(Schema):
    """A timeline event (takeover, transfer, handback, delivery failure...); `data` depends on `kind`."""

    id: int
    kind: str
    ticket_id: int | None
    agent_id: int | None
    data: dict[str, Any] | None
    created_at: str


class Ticket(Schema):
    """A live-chat ticket: who has it (`assignee`) and whose move it is (`status`)."""

    id: int
    conversation_id: int
    kind: Literal["live_chat"]
    channel: str
    status: Literal[TICKET_STATUSES]  # type: ignore[valid-type]
    assignee: Agent | None
    subject: str
    summary: str
    language: str | None
    reason: str | None
    created_at: str
    closed_at: str | None


class TicketRow(Ticket):
    """A ticket in a list, with its customer, its conversation's last message and last activity (the
    list's order), and `unread`: customer messages since the caller last opened it."""

    contact: Contact
    last_message: LastMessage | None
    last_activity_at: str
    unread: int


class Conversation(Schema):
    """A conversation summary; `version` grows with every change (optimistic concurrency)."""

    id: int
    channel: str
    state: Literal[CONVERSATION_STATES]  # type: ignore[valid-type]
    version: int
    language: str | None
    contact: Contact
    assignee: Agent | None
    open_ticket_id: int | None
    unread: int = Field(description="Customer messages on the open ticket since the caller last opened it (0 without one).")
    last_message: LastMessage | None
    last_responder: LastResponder | None
    waiting_since: str | None
    last_activity_at: str
    created_at: str
    ended_at: str | None


class ConversationDetail(Conversation):
    """A conversation with its whole timeline."""

    messages: list[Message]
    events: list[Event]
    tickets: list[Ticket]


class TicketDetail(Ticket):
    """A ticket with its conversation's whole timeline and what the caller may do with it."""

    permissions: Permissions
    conversation: ConversationDetail


class Upload(Schema):
    """A stored upload: `id` goes in a reply's `attachments`."""

    id: str
    filename: str
    content_type: str
    size: int
    url: str


class ConversationPage(Schema):
    """A page of conversations, newest activity first."""

    conversations: list[Conversation]
    next_before: str | None = Field(description=NEXT_BEFORE)


class TicketPage(Schema):
    """A page of tickets, newest activity of their conversation first."""

    tickets: list[TicketRow]
    next_before: str | None = Field(description=NEXT_BEFORE)


class AgentList(Schema):
    """The active agents (for transfer) and the caller."""

    agents: list[Agent]
    me: Agent


class Ok(Schema):
    """An acknowledgement."""

    ok: bool


RESPONSES: dict[str, type[Schema]] = {model.__name__: model for model in (
    Error, Conflict, LastMessage, LastResponder, Permissions, Unread, Agent, Contact, Attachment, Revision, MessageAgent, Message, Event, Ticket, TicketRow,
    Conversation, ConversationDetail, TicketDetail, Upload, ConversationPage, TicketPage, AgentList, Ok)}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(model: str, description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(model)}}}


ERRORS = {
    "400": _json("Error", "Malformed request"),
    "401": _json("Error", "Missing or invalid token"),
    "403": _json("Error", "Not allowed for this agent"),
    "404": _json("Error", "Not found"),
    "409": _json("Conflict", "Wrong state, or another agent won the race"),
    "413": _json("Error", "Body too large (1 MiB)"),
}
ID = [{"name": "id", "in": "path", "required": True, "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID}}]
PAGING = [
    {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200},
     "description": "Search, case-insensitive (ASCII letters only on SQLite): the customer's name, email or "
                    "external id, or a ticket subject. Message text is not searched."},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
    {"name": "before", "in": "query", "schema": {"type": "string", "pattern": r"^([0-9]{1,17}_)?[0-9]{1,10}$"},
     "description": "The previous page's next_before: the rows after it in the list's order (last activity, "
                    "then id, both descending). A bare id is taken as that row's position now."},
]


def _filter(name: str, values: tuple[str, ...]) -> dict[str, Any]:
    """A filter taking one or more values, comma-separated (`status=open,on_you`)."""
    return {"name": name, "in": "query", "style": "form", "explode": False,
            "schema": {"type": "array", "items": {"enum": list(values)}}}


def _op(summary: str, ok: dict[str, Any], *, params: list[Any] | None = None, body: type[BaseModel] | None = None,
        status: str = "200", optional: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {status: ok, **ERRORS}}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": not optional, "content": {"application/json": {"schema": body.model_json_schema()}}}
    return op


def _components() -> dict[str, Any]:
    _, top = models_json_schema([(model, "validation") for model in RESPONSES.values()],
                                ref_template="#/components/schemas/{model}")
    return top["$defs"]


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "handoff desk API", "version": "1", "description": "Who may do what:\n" + (RULES or "")},
    "security": [{"bearer": []}],
    "paths": {
        "/api/v1/conversations": {"get": _op(
            "List conversations, newest first, a page at a time", _json("ConversationPage"),
            params=[_filter("state", CONVERSATION_STATES), *PAGING])},
        "/api/v1/conversations/{id}": {"get": _op("A conversation with messages and timeline",
                                                  _json("ConversationDetail"), params=ID)},
        "/api/v1/conversations/{id}/takeover": {"post": _op("Take over a bot conversation",
                                                            _json("Ticket", "Created"), params=ID, status="201")},
        "/api/v1/conversations/{id}/typing": {"post": _op(
            "Show or hide the agent typing indicator to the customer (widget, Messenger, Instagram, Telegram) "
            "and to other agents", _json("Ok"), params=ID, body=TypingBody)},
        "/api/v1/tickets": {"get": _op(
            "List tickets, newest first, a page at a time", _json("TicketPage"),
            params=[_filter("status", TICKET_STATUSES),
                    {"name": "assignee", "in": "query", "schema": {"type": "string"},
                     "description": "me, none or an agent id"}, *PAGING])},
        "/api/v1/tickets/{id}": {"get": _op("A ticket with its conversation and what you may do with it; marks "
                                            "it read for you", _json("TicketDetail"), params=ID)},
        "/api/v1/tickets/{id}/read": {"post": _op("Mark the ticket read for you", _json("Ok"), params=ID)},
        "/api/v1/unread": {"get": _op("Your unread customer messages: on your live tickets and on unassigned ones",
                                      _json("Unread"))},
        "/api/v1/tickets/{id}/messages": {"post": _op(
            "Reply to the customer, or add an internal note; text (10,000 characters at most) may be empty when "
            "files are attached; attachments are ids from POST /api/v1/uploads (your own uploads; not on notes)",
            _json("Message", "Created"), params=ID, status="201", body=ReplyBody)},
        "/api/v1/uploads": {"post": {
            "summary": "Upload a file to attach to a reply (10 MB at most)",
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"], "properties": {"file": {"type": "string", "format": "binary"}}}}}},
            "responses": {"201": _json("Upload", "Created"), **ERRORS, "413": _json("Error", "File too large (10 MB)")}}},
        "/api/v1/tickets/{id}/claim": {"post": _op("Assign an unassigned ticket to me", _json("Ticket"), params=ID)},
        "/api/v1/tickets/{id}/transfer": {"post": _op("Transfer to another agent with a note (someone else's "
                                                      "ticket: with confirm)", _json("Ticket"),
                                                      params=ID, body=TransferBody)},
        "/api/v1/tickets/{id}/allow-ai": {"post": _op("Hand back to the AI and close the ticket (someone else's "
                                                      "ticket: with confirm; the body is optional)",
                                                      _json("Ticket"), params=ID, body=ConfirmBody, optional=True)},
        "/api/v1/tickets/{id}/close": {"post": _op("Close the ticket and end the conversation (someone else's "
                                                   "ticket: with confirm; the body is optional)",
                                                   _json("Ticket"), params=ID, body=ConfirmBody, optional=True)},
        "/api/v1/agents": {"get": _op("Active agents", _json("AgentList"))},
        "/api/v1/stream": {"get": _op("WebSocket of live events (Bearer header or ?token=): every public kind, "
                                      "except ticket.message (to the ticket's assignee, or everyone while it is "
                                      "unassigned) and ticket.assigned (to the agent it was transferred to). "
                                      "Logged events carry their seq; ?after=<seq> replays what followed it "
                                      "first, or sends stream.resync {seq} when it cannot (reload, go on from "
                                      "seq); a non-numeric after is a 400",
                                      {"description": "Switching protocols"}, status="101")},
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": _components(),
    },
}
