"""The OpenAPI 3.1 document of the desk REST API, served at /api/v1/openapi.json."""

from __future__ import annotations

from typing import Any

from handoff.validation import MAX_ID


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "OK") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "400": _json(_ref("Error"), "Malformed request"),
    "401": _json(_ref("Error"), "Missing or invalid token"),
    "403": _json(_ref("Error"), "Not allowed for this agent"),
    "404": _json(_ref("Error"), "Not found"),
    "409": _json(_ref("Conflict"), "Wrong state, or another agent won the race"),
    "413": _json(_ref("Error"), "Body too large (1 MiB)"),
}
ID_SCHEMA = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
ID = [{"name": "id", "in": "path", "required": True, "schema": ID_SCHEMA}]
PAGING = [
    {"name": "q", "in": "query", "schema": {"type": "string", "maxLength": 200},
     "description": "Search, case-insensitive (ASCII letters only on SQLite): the customer's name, email or "
                    "external id, or a ticket subject. Message text is not searched."},
    {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}},
    {"name": "before", "in": "query", "schema": {"type": "integer", "minimum": 1},
     "description": "Only rows with a smaller id: pass the previous page's next_before."},
]
NEXT_BEFORE = {"type": ["integer", "null"], "description": "The `before` of the next page; null on the last page."}


def _filter(name: str, values: list[str]) -> dict[str, Any]:
    """A filter taking one or more values, comma-separated (`status=open,on_you`)."""
    return {"name": name, "in": "query", "style": "form", "explode": False,
            "schema": {"type": "array", "items": {"enum": values}}}


def _op(summary: str, ok: dict[str, Any], *, params: list[Any] | None = None, body: dict[str, Any] | None = None,
        status: str = "200") -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "responses": {status: ok, **ERRORS}}
    if params:
        op["parameters"] = params
    if body:
        op["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
    return op


OPENAPI: dict[str, Any] = {
    "openapi": "3.1.0",
    "info": {"title": "handoff desk API", "version": "1"},
    "security": [{"bearer": []}],
    "paths": {
        "/api/v1/conversations": {"get": _op(
            "List conversations, newest first, a page at a time", _json({"type": "object", "properties": {
                "conversations": {"type": "array", "items": _ref("Conversation")}, "next_before": NEXT_BEFORE}}),
            params=[_filter("state", ["bot", "human", "ended"]), *PAGING])},
        "/api/v1/conversations/{id}": {"get": _op("A conversation with messages and timeline",
                                                  _json(_ref("ConversationDetail")), params=ID)},
        "/api/v1/conversations/{id}/takeover": {"post": _op("Take over a bot conversation",
                                                            _json(_ref("Ticket"), "Created"), params=ID, status="201")},
        "/api/v1/conversations/{id}/typing": {"post": _op(
            "Show or hide the agent typing indicator to the customer (widget, Messenger, Instagram, Telegram) "
            "and to other agents",
            _json({"type": "object", "properties": {"ok": {"type": "boolean"}}}), params=ID,
            body={"type": "object", "properties": {"typing": {"type": "boolean", "default": True}}})},
        "/api/v1/tickets": {"get": _op(
            "List tickets, newest first, a page at a time", _json({"type": "object", "properties": {
                "tickets": {"type": "array", "items": _ref("TicketRow")}, "next_before": NEXT_BEFORE}}),
            params=[_filter("status", ["open", "on_you", "on_customer", "closed"]),
                    {"name": "assignee", "in": "query", "schema": {"type": "string"},
                     "description": "me, none or an agent id"}, *PAGING])},
        "/api/v1/tickets/{id}": {"get": _op("A ticket with its conversation", _json(_ref("Ticket")), params=ID)},
        "/api/v1/tickets/{id}/messages": {"post": _op(
            "Reply to the customer, or add an internal note; text may be empty when files are attached",
            _json(_ref("Message"), "Created"), params=ID, status="201", body={"type": "object", "properties": {
                "text": {"type": "string", "maxLength": 10000}, "internal": {"type": "boolean", "default": False},
                "attachments": {"type": "array", "maxItems": 10, "items": {"type": "string"},
                                "description": "ids from POST /api/v1/uploads (your own uploads; not on notes)"}}})},
        "/api/v1/uploads": {"post": {
            "summary": "Upload a file to attach to a reply (10 MB at most)",
            "requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
                "type": "object", "required": ["file"], "properties": {"file": {"type": "string", "format": "binary"}}}}}},
            "responses": {"201": _json(_ref("Upload"), "Created"), **ERRORS,
                          "413": _json(_ref("Error"), "File too large (10 MB)")}}},
        "/api/v1/tickets/{id}/claim": {"post": _op("Assign an unassigned ticket to me", _json(_ref("Ticket")), params=ID)},
        "/api/v1/tickets/{id}/transfer": {"post": _op(
            "Transfer to another agent with a note", _json(_ref("Ticket")), params=ID,
            body={"type": "object", "required": ["agent_id"], "properties": {
                "agent_id": ID_SCHEMA, "note": {"type": "string"}}})},
        "/api/v1/tickets/{id}/allow-ai": {"post": _op("Hand back to the AI and close the ticket",
                                                      _json(_ref("Ticket")), params=ID)},
        "/api/v1/tickets/{id}/close": {"post": _op("Close the ticket and end the conversation",
                                                   _json(_ref("Ticket")), params=ID)},
        "/api/v1/agents": {"get": _op("Active agents", _json({"type": "object", "properties": {
            "agents": {"type": "array", "items": _ref("Agent")}, "me": _ref("Agent")}}))},
        "/api/v1/stream": {"get": _op("WebSocket of live events (Bearer header or ?token=)",
                                      {"description": "Switching protocols"}, status="101")},
    },
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {"type": "object", "required": ["error"], "properties": {"error": {"type": "string"}}},
            "Conflict": {"type": "object", "required": ["error"], "properties": {
                "error": {"type": "string"}, "ticket_id": {"type": ["integer", "null"]},
                "assignee": {"oneOf": [_ref("Agent"), {"type": "null"}]}}},
            "Agent": {"type": "object", "properties": {
                "id": {"type": "integer"}, "name": {"type": "string"}, "email": {"type": "string"}}},
            "Ticket": {"type": "object", "properties": {
                "id": {"type": "integer"}, "conversation_id": {"type": "integer"}, "kind": {"const": "live_chat"},
                "channel": {"type": "string"}, "status": {"enum": ["open", "on_you", "on_customer", "closed"]},
                "assignee": {"oneOf": [_ref("Agent"), {"type": "null"}]}, "subject": {"type": "string"},
                "summary": {"type": "string"}, "language": {"type": ["string", "null"]},
                "created_at": {"type": "string"}, "closed_at": {"type": ["string", "null"]}}},
            "TicketRow": {"allOf": [_ref("Ticket"), {"type": "object", "properties": {"contact": _ref("Contact")}}]},
            "Contact": {"type": "object", "properties": {
                "id": {"type": "integer"}, "name": {"type": ["string", "null"]}, "email": {"type": ["string", "null"]},
                "external_id": {"type": "string"}}},
            "Message": {"type": "object", "properties": {
                "id": {"type": "integer"}, "direction": {"enum": ["incoming", "outgoing", "activity"]},
                "author": {"enum": ["customer", "bot", "agent", "system"]}, "text": {"type": "string"},
                "private": {"type": "boolean"}, "notice": {"type": ["string", "null"]},
                "attachments": {"type": "array", "items": _ref("Attachment")},
                "delivery_status": {"type": "string"}, "created_at": {"type": "string"},
                "origin": {"type": ["string", "null"]},
                "deleted": {"type": "boolean"}, "edited_at": {"type": ["string", "null"]},
                "revisions": {"type": "array", "items": {"type": "object", "properties": {
                    "text": {"type": "string"}, "replaced_at": {"type": "string"}}}}}},
            "Attachment": {"type": "object", "properties": {
                "url": {"type": "string"}, "filename": {"type": ["string", "null"]},
                "content_type": {"type": "string"}, "size": {"type": ["integer", "null"]}}},
            "Upload": {"type": "object", "properties": {
                "id": {"type": "string"}, "filename": {"type": "string"}, "content_type": {"type": "string"},
                "size": {"type": "integer"}, "url": {"type": "string"}}},
            "Conversation": {"type": "object", "properties": {
                "id": {"type": "integer"}, "channel": {"type": "string"}, "state": {"enum": ["bot", "human", "ended"]},
                "language": {"type": ["string", "null"]}, "contact": _ref("Contact"),
                "assignee": {"oneOf": [_ref("Agent"), {"type": "null"}]},
                "open_ticket_id": {"type": ["integer", "null"]}, "waiting_since": {"type": ["string", "null"]},
                "last_activity_at": {"type": "string"}, "created_at": {"type": "string"},
                "ended_at": {"type": ["string", "null"]}}},
            "ConversationDetail": {"allOf": [_ref("Conversation"), {"type": "object", "properties": {
                "messages": {"type": "array", "items": _ref("Message")},
                "events": {"type": "array", "items": {"type": "object"}},
                "tickets": {"type": "array", "items": _ref("Ticket")}}}]},
        },
    },
}
