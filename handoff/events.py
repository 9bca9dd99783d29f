"""The live events the core publishes after a commit: their kind names and the JSON payloads
they carry (DESIGN.md §6).

Subscribers of the hub (the desk's stream, Slack's mirror, the widget) receive dicts
`{"kind": EventKind..., **data}`. The same JSON shapes of a message, a ticket, an agent and a
timeline event are what the desk's REST API answers with.

A message has one shape, `message_json`; the widget's frame (`widget_frame`) and Slack's
thread line (`desk.slack.blocks.thread_line`) are projections of it. An attachment has one shape,
`attachment_json` (`media.attachment_json`), whatever shape an older row stored.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from handoff.media import attachment_json
from handoff.models import Agent, Event, Message, Ticket
from handoff.schema import Attachment

# The kind of an outgoing message (`OutboundMessage.kind`, `timeline.add_outgoing`) and the
# `Message.author_kind` stored for it, both ways.
AUTHOR_OF_KIND: dict[str, str] = {"bot": "bot", "agent": "agent", "notice": "system"}
KIND_OF_AUTHOR: dict[str, str] = {author: kind for kind, author in AUTHOR_OF_KIND.items()}


class EventKind(StrEnum):
    """The kinds of live events; each member's value is the `kind` subscribers see."""

    MESSAGE_CREATED = "message.created"  # conversation_id, ticket_id, message (message_json)
    MESSAGE_UPDATED = "message.updated"  # conversation_id, message_id, delivery_status, delivery_error[, message]
    TICKET_CREATED = "ticket.created"  # ticket (ticket_json)
    TICKET_UPDATED = "ticket.updated"  # ticket[, transferred_to, note]
    TICKET_SUMMARY = "ticket.summary"  # ticket, with its new subject and summary
    # A customer message on an open ticket: ticket_id, conversation_id, message_id, assignee_id
    # (None: unassigned), status (the ticket's after it), contact_name, text (its first 140 characters). The desk's stream sends it to the
    # assignee, or to every agent while the ticket is unassigned (desk.stream.wants).
    TICKET_MESSAGE = "ticket.message"
    # A ticket assigned or transferred to an agent by someone else: ticket_id, conversation_id,
    # agent_id (the new assignee), by (agent_json of who did it). Sent to that agent only.
    TICKET_ASSIGNED = "ticket.assigned"
    # An agent @mentioned in an internal note (handoff.mentions): agent_id (who is mentioned),
    # notification (mentions.notification_json). Sent to that agent only.
    MENTION = "mention"
    CONVERSATION_UPDATED = "conversation.updated"  # conversation_id[, state, contact_name]
    # An agent changed a conversation's labels: conversation_id, labels (label_json, by name),
    # added, removed (names), agent (agent_json). See desk.labels.
    CONVERSATION_LABELS = "conversation.labels"
    TIMELINE_EVENT = "timeline.event"  # conversation_id, ticket_id, event {kind, data, agent_id}
    TYPING = "typing"  # conversation_id, channel, who ("customer" | "agent"), typing
    # An agent's presence changed (handoff.presence): agent_id, presence ("online" | "away" | "offline").
    AGENT_PRESENCE = "agent.presence"
    STREAM_READY = "stream.ready"  # the desk's WebSocket is subscribed: agent
    STREAM_LAGGED = "stream.lagged"  # the subscriber was too slow and missed events
    STREAM_RESYNC = "stream.resync"  # seq: missed events cannot be replayed; reload, then go on after seq
    WIDGET_PUSH = "internal.widget.push"  # visitor, payload: a widget frame for another instance (hub.INTERNAL)


def kinds_js() -> str:
    """The ES module `handoff/web/static/desk/kinds.js`: `export const KIND = {MESSAGE_CREATED:
    "message.created", ...}`, the public event kinds the desk's scripts compare against.

    The file is generated from `EventKind` (no build step serves it); a test checks it is current.
    Regenerate: `python -c "from handoff.events import kinds_js; print(kinds_js(), end='')" >
    handoff/web/static/desk/kinds.js`.
    """
    lines = [f'  {kind.name}: "{kind.value}",' for kind in EventKind if not kind.value.startswith("internal.")]
    return ("// Generated from handoff.events.EventKind by handoff.events.kinds_js(); do not edit.\n"
            "export const KIND = Object.freeze({\n" + "\n".join(lines) + "\n});\n")


def iso(value: datetime | None) -> str | None:
    """ISO 8601 text of a timestamp, or None."""
    return value.isoformat() if value else None


def agent_json(agent: Agent | None) -> dict[str, Any] | None:
    """An agent as the API shows it (never its token or password hash)."""
    if agent is None:
        return None
    return {"id": agent.id, "name": agent.name, "email": agent.email}


async def load_agent(agent_id: int | None) -> Agent | None:
    """The agent with this id, or None (no id, or no such agent)."""
    return await Agent.get_or_none(id=agent_id) if agent_id else None


async def ticket_json(ticket: Ticket) -> dict[str, Any]:
    """A ticket: id, conversation_id, kind, channel, status, assignee, subject, summary, ..."""
    return ticket_row(ticket, await load_agent(ticket.assignee_id))  # type: ignore[attr-defined]


def ticket_row(ticket: Ticket, assignee: Agent | None) -> dict[str, Any]:
    """A ticket as ticket_json shows it, from an assignee already loaded (no query)."""
    return {
        "id": ticket.id,
        "conversation_id": ticket.conversation_id,  # type: ignore[attr-defined]
        "kind": ticket.kind,
        "channel": ticket.channel,
        "status": ticket.status,
        "assignee": agent_json(assignee),
        "subject": ticket.subject,
        "summary": ticket.summary,
        "language": ticket.language,
        "reason": ticket.reason,
        "created_at": iso(ticket.created_at),
        "closed_at": iso(ticket.closed_at),
    }


def message_json(message: Message, agents: dict[int, Agent] | None = None) -> dict[str, Any]:
    """A timeline message: customer, bot, agent, notice, note or separator.

    `origin` names where a person wrote it outside the desk ("slack", "instagram_app": the
    provider's own app). `sender` (`{"id", "name"[, "automated"]}`, or None) names who wrote an
    incoming message: in an email thread, several people may. A message the customer unsent has `deleted: true` and empty `text` and `attachments`; an
    edited one has `edited_at` and its earlier texts in `revisions` (`[{"text", "replaced_at"}]`,
    oldest first). `mentions` lists the agents an internal note @mentions (`[{"id", "name"}]`,
    see handoff.mentions; [] for every other message).
    """
    agent_id = message.agent_id  # type: ignore[attr-defined]
    agent = (agents or {}).get(agent_id) if agent_id else None
    deleted = message.deleted_at is not None
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,  # type: ignore[attr-defined]
        "ticket_id": message.ticket_id,  # type: ignore[attr-defined]
        "direction": message.direction,
        "author": message.author_kind,
        "agent": agent_json(agent) if agent else ({"id": agent_id} if agent_id else None),
        "text": "" if deleted else message.text,
        "private": message.private,
        "notice": message.notice,
        "attachments": [] if deleted else stored_attachments(message.attachments),
        "deleted": deleted,
        "edited_at": iso(message.edited_at),
        "revisions": [] if deleted else message.revisions or [],
        "delivery_status": message.delivery_status,
        "delivery_error": message.delivery_error,
        "origin": message.origin,
        "sender": message.sender,
        "mentions": message.mentions or [],
        "created_at": iso(message.created_at),
    }


def stored_attachments(stored: object) -> list[dict[str, Any]]:
    """A message's stored attachments in the one shape (`{"url", "filename", "content_type",
    "size"}`, each possibly None, and `note` on a file that was not kept). Rows written before that shape was the only one may lack the
    keys whose value was None; anything that is not a dict is left out."""
    if not isinstance(stored, list):
        return []
    return [attachment_json(Attachment(**{k: a.get(k) for k in ("content_type", "url", "filename", "size", "note")}))
            for a in stored if isinstance(a, dict) and a.get("content_type")]


def widget_frame(message: dict[str, Any], client_id: str | None = None) -> dict[str, Any]:
    """The widget's frame for a timeline message, projected from its `message_json` shape.

    `{"id", "client_id", "author", "author_name", "kind", "text", "notice", "attachments",
    "created_at"}`: `kind` is "separator" (a "Live Chat"/"AI Resumed" line), "notice" or
    "message"; `author_name` is an agent's name; `created_at` is in Unix seconds; `client_id`
    is the id the visitor's own tab gave the message (for its dedupe), None for the others.
    """
    if message["direction"] == "activity":
        kind = "separator"
    elif message["notice"] or message["author"] == AUTHOR_OF_KIND["notice"]:
        kind = "notice"
    else:
        kind = "message"
    agent = message["agent"] if message["author"] == "agent" else None
    created = message["created_at"]
    return {
        "id": message["id"],
        "client_id": client_id,
        "author": message["author"],
        "author_name": (agent or {}).get("name"),
        "kind": kind,
        "text": message["text"],
        "notice": message["notice"],
        "attachments": message["attachments"],
        "created_at": datetime.fromisoformat(created).timestamp() if created else None,
    }


def event_json(event: Event) -> dict[str, Any]:
    """A timeline event (takeover, transfer, handback, delivery failure...)."""
    return {
        "id": event.id,
        "kind": event.kind,
        "ticket_id": event.ticket_id,  # type: ignore[attr-defined]
        "agent_id": event.agent_id,  # type: ignore[attr-defined]
        "data": event.data,
        "created_at": iso(event.created_at),
    }
