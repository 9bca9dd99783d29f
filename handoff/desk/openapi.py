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
from handoff.validation import (MAX_ID, CannedResponseBody, CannedResponsePatch, ComposeBody, ConfirmBody,
                                ConversationLabelsBody, LabelBody, PresenceBody, ReplyBody, TransferBody,
                                TypingBody)


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
    """Who answered the customer last: the AI (`bot`) or a person (`agent` names them when known;
    null for the AI and for a reply from the provider's own app)."""

    kind: Literal["bot", "agent"]
    agent: Agent | None


class Label(Schema):
    """A label agents put on conversations; its tickets show it too. `color` is `#rrggbb`."""

    id: int
    name: str
    color: str


class LabelList(Schema):
    """Labels, by name (ignoring case)."""

    labels: list[Label]


class UnknownLabels(Schema):
    """A 400 on setting labels: `unknown` lists the names no label has (absent for other errors)."""

    error: str
    unknown: list[str] | None = None


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
    compose: bool = Field(description="AI compose (POST /api/v1/tickets/{id}/compose) is available: a model "
                                      "is configured and the ticket is open; the desk shows its buttons by it.")


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


class Mention(Schema):
    """An agent an internal note @mentions, as resolved when it was written."""

    id: int
    name: str


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
    mentions: list[Mention] = Field(description="The agents an internal note @mentions (`@\"Ana María\"`, "
                                    "`@ana@example.com`, `@Ana María`: the longest agent name; an ambiguous or "
                                    "unknown mention stays text); [] on every other message.")
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
    labels: list[Label] = Field(description="The conversation's labels, by name.")


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
    last_responder: LastResponder | None = Field(description="Who answered the customer last; null before any answer.")
    labels: list[Label] = Field(description="Its labels, by name.")
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

    labels: list[Label] = Field(description="Its conversation's labels, by name.")
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


class PresentAgent(Agent):
    """An agent with their presence: online (a desk open), away (said so), offline."""

    presence: Literal["online", "away", "offline"]


class AgentList(Schema):
    """The active agents (for transfer), with their presence, and the caller."""

    agents: list[PresentAgent]
    me: Agent


class PresenceAnswer(Schema):
    """The caller after `PUT /api/v1/agents/me/presence`."""

    agent: PresentAgent


class Ok(Schema):
    """An acknowledgement."""

    ok: bool


class Notification(Schema):
    """Something for you alone: `kind` "mention", a colleague (`actor`) @mentioned you in an internal
    note (`message_id`, its first 200 characters in `text`) on a conversation (with `contact_name`)."""

    id: int
    kind: Literal["mention"]
    conversation_id: int
    ticket_id: int | None
    message_id: int | None
    actor: Agent | None
    text: str
    contact_name: str | None
    read_at: str | None
    created_at: str


class NotificationPage(Schema):
    """A page of your notifications, newest first, with how many of all of them are unread."""

    notifications: list[Notification]
    next_before: str | None = Field(description=NEXT_BEFORE.replace("last activity", "creation time"))
    unread: int


class ReadAll(Schema):
    """How many unread notifications were marked read."""

    marked: int
class CannedResponse(Schema):
    """A saved reply: `/<short_code>` in the desk's composer or a Slack thread gives `content` (a
    Liquid template: `{{contact.name}}`, `{{ contact.first_name | default: "there" }}`…);
    `rendered`, only when listed with `ticket_id`, is the content filled in for that ticket."""

    id: int
    short_code: str
    content: str
    rendered: str | None = None
    created_at: str
    updated_at: str


class CannedResponseList(Schema):
    """Every canned response, by short code."""

    canned_responses: list[CannedResponse]


class Composed(Schema):
    """AI compose's text, for the agent to review (nothing was sent)."""

    text: str


RESPONSES: dict[str, type[Schema]] = {model.__name__: model for model in (
    Error, Conflict, LastMessage, LastResponder, Permissions, Unread, Agent, Contact, Attachment, Revision, MessageAgent, Message, Event, Ticket, TicketRow,
    Conversation, ConversationDetail, TicketDetail, Upload, ConversationPage, TicketPage, AgentList, Ok,
    Label, LabelList, UnknownLabels, Mention, Notification, NotificationPage, ReadAll,
    CannedResponse, CannedResponseList, Composed, PresentAgent, PresenceAnswer)}


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


LABEL_FILTER = {"name": "label", "in": "query", "style": "form", "explode": False,
                "schema": {"type": "array", "items": {"type": "string", "maxLength": 40}},
                "description": "Only rows whose conversation carries any of these labels (names, ignoring case; "
                               "comma-separated, a repeated parameter adds more)."}
RESPONDER_FILTERS = [
    {"name": "responded_by", "in": "query", "schema": {"type": "string"},
     "description": "Who answered the customer last: bot, me or an agent id."},
    {"name": "agent_type", "in": "query", "schema": {"enum": ["bot", "human"]},
     "description": "Whether the AI (bot) or a person (human) answered the customer last."},
]


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


COMPOSE = _op("AI compose: a draft reply from the conversation, or the agent's text polished or translated into "
              "the customer's language; nothing is sent. Anyone may, on an open ticket. 409 without a configured "
              "model, on a closed ticket, or to translate while the customer's language is unknown; internal notes "
              "never reach the model", _json("Composed"), params=ID, body=ComposeBody)
COMPOSE["responses"].update({"502": _json("Error", "The model failed (an error, a refusal, an empty answer)"),
                             "504": _json("Error", "The model did not answer within HANDOFF_COMPOSE_TIMEOUT")})

OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "handoff desk API", "version": "1", "description": "Who may do what:\n" + (RULES or "")},
    "security": [{"bearer": []}],
    "paths": {
        "/api/v1/conversations": {"get": _op(
            "List conversations, newest first, a page at a time", _json("ConversationPage"),
            params=[_filter("state", CONVERSATION_STATES), LABEL_FILTER, *RESPONDER_FILTERS, *PAGING])},
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
                     "description": "me, none or an agent id"}, LABEL_FILTER, *PAGING])},
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
        "/api/v1/labels": {
            "get": _op("Every label, by name", _json("LabelList")),
            "post": _op("Create a label: a name (trimmed, 1-40 characters, no comma; unique ignoring case: 409 "
                        "otherwise) and a colour #rrggbb", _json("Label", "Created"), status="201", body=LabelBody)},
        "/api/v1/conversations/{id}/labels": {"put": {
            **_op("Replace the conversation's labels by name (existing labels, ignoring case); any agent may. "
                  "Unknown names are a 400 listing them, and nothing changes", _json("LabelList"), params=ID,
                  body=ConversationLabelsBody),
            "responses": {"200": _json("LabelList"), **ERRORS, "400": _json("UnknownLabels", "Malformed request, "
                                                                           "or labels that do not exist")}}},
        "/api/v1/notifications": {"get": _op(
            "Your notifications (@mentions of you in internal notes), newest first, a page at a time, with your "
            "unread count; never another agent's", _json("NotificationPage"), params=PAGING[1:])},
        "/api/v1/notifications/{id}/read": {"post": _op("Mark one of your notifications read (404 for another "
                                                        "agent's)", _json("Notification"), params=ID)},
        "/api/v1/notifications/read-all": {"post": _op("Mark all your notifications read", _json("ReadAll"))},
        "/api/v1/tickets/{id}/compose": {"post": COMPOSE},
        "/api/v1/canned_responses": {
            "get": _op("Canned responses, by short code; with ticket_id, each also `rendered` for that ticket's "
                       "customer and you", _json("CannedResponseList"),
                       params=[{"name": "ticket_id", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                                "maximum": MAX_ID}}]),
            "post": _op("Add a canned response (409 when the short code is taken)", _json("CannedResponse", "Created"),
                        status="201", body=CannedResponseBody)},
        "/api/v1/canned_responses/{id}": {
            "patch": _op("Change a canned response's short code and/or content (409 when the short code is taken)",
                         _json("CannedResponse"), params=ID, body=CannedResponsePatch),
            "delete": _op("Delete a canned response", _json("Ok"), params=ID)},
        "/api/v1/agents": {"get": _op("Active agents with their presence", _json("AgentList"))},
        "/api/v1/agents/me/presence": {"put": _op(
            "Say you are away (no tickets routed to you) or online again; presence is offline while you have "
            "no desk stream open", _json("PresenceAnswer"), body=PresenceBody)},
        "/api/v1/stream": {"get": _op("WebSocket of live events (Bearer header or ?token=): every public kind, "
                                      "except ticket.message (to the ticket's assignee, or everyone while it is "
                                      "unassigned), ticket.assigned (to the agent it was transferred to) and "
                                      "mention (to the agent a note @mentions). "
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
