"""JSON shapes of the desk API's lists and conversations (DESIGN.md §6); the shapes shared
with the live events (message, ticket, agent, timeline event) are in `handoff.events`."""

from __future__ import annotations

from typing import Any

from handoff.events import agent_json, iso, load_agent, ticket_row
from handoff.models import Agent, Conversation, Ticket


def tickets_json(tickets: list[Ticket]) -> list[dict[str, Any]]:
    """List rows: tickets loaded with select_related("assignee", "conversation__contact"), plus their `contact`."""
    return [{**ticket_row(t, t.assignee), "contact": _contact(t.conversation)} for t in tickets]


async def conversation_json(conversation: Conversation) -> dict[str, Any]:
    """A conversation summary: state, channel, contact, assignee and its open ticket."""
    await conversation.fetch_related("contact")
    open_ticket = await Ticket.get_or_none(open_key=conversation.id)
    assignee = await load_agent(conversation.assignee_id)  # type: ignore[attr-defined]
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
