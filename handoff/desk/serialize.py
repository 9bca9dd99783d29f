"""JSON shapes of the desk API and the live stream (DESIGN.md §6)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from handoff.models import Agent, Conversation, Event, Message, Ticket


def iso(value: datetime | None) -> str | None:
    """ISO 8601 text of a timestamp, or None."""
    return value.isoformat() if value else None


def agent_json(agent: Agent | None) -> dict[str, Any] | None:
    """An agent as the API shows it (never its token or password hash)."""
    if agent is None:
        return None
    return {"id": agent.id, "name": agent.name, "email": agent.email}


async def _agent(agent_id: int | None) -> Agent | None:
    return await Agent.get_or_none(id=agent_id) if agent_id else None


async def ticket_json(ticket: Ticket) -> dict[str, Any]:
    """A ticket: id, conversation_id, kind, channel, status, assignee, subject, summary, ..."""
    return ticket_row(ticket, await _agent(ticket.assignee_id))  # type: ignore[attr-defined]


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


def tickets_json(tickets: list[Ticket]) -> list[dict[str, Any]]:
    """List rows: tickets loaded with select_related("assignee", "conversation__contact"), plus their `contact`."""
    return [{**ticket_row(t, t.assignee), "contact": _contact(t.conversation)} for t in tickets]


def message_json(message: Message, agents: dict[int, Agent] | None = None) -> dict[str, Any]:
    """A timeline message: customer, bot, agent, notice, note or separator.

    `origin` names where a person wrote it outside the desk ("slack", "instagram_app": the
    provider's own app). A message the customer unsent has `deleted: true` and empty `text` and `attachments`; an
    edited one has `edited_at` and its earlier texts in `revisions` (`[{"text", "replaced_at"}]`,
    oldest first).
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
        "attachments": [] if deleted else message.attachments,
        "deleted": deleted,
        "edited_at": iso(message.edited_at),
        "revisions": [] if deleted else message.revisions or [],
        "delivery_status": message.delivery_status,
        "delivery_error": message.delivery_error,
        "origin": message.origin,
        "created_at": iso(message.created_at),
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


async def conversation_json(conversation: Conversation) -> dict[str, Any]:
    """A conversation summary: state, channel, contact, assignee and its open ticket."""
    await conversation.fetch_related("contact")
    open_ticket = await Ticket.get_or_none(open_key=conversation.id)
    assignee = await _agent(conversation.assignee_id)  # type: ignore[attr-defined]
    return _conversation_row(conversation, assignee, open_ticket.id if open_ticket else None)


async def conversations_json(conversations: list[Conversation]) -> list[dict[str, Any]]:
    """Conversations loaded with select_related("contact", "assignee"), in one more query (their open tickets)."""
    ids = [c.id for c in conversations]
    open_tickets = dict(await Ticket.filter(open_key__in=ids).values_list("open_key", "id")) if ids else {}
    return [_conversation_row(c, c.assignee, open_tickets.get(c.id)) for c in conversations]


def _conversation_row(conversation: Conversation, assignee: Agent | None, open_ticket_id: int | None) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "channel": conversation.channel,
        "state": conversation.state,
        "version": conversation.version,
        "language": conversation.language,
        "contact": _contact(conversation),
        "assignee": agent_json(assignee),
        "open_ticket_id": open_ticket_id,
        "waiting_since": iso(conversation.waiting_since),
        "last_activity_at": iso(conversation.last_activity_at),
        "created_at": iso(conversation.created_at),
        "ended_at": iso(conversation.ended_at),
    }


def _contact(conversation: Conversation) -> dict[str, Any]:
    """The customer of a conversation whose contact is loaded."""
    return {
        "id": conversation.contact.id,
        "name": conversation.contact.name,
        "email": conversation.contact.email,
        "external_id": conversation.contact_external_id,
    }
