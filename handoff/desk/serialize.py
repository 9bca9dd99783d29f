"""JSON shapes of the desk API's lists and conversations (DESIGN.md §6, issue 15); the shapes
shared with the live events (message, ticket, agent, timeline event) are in `handoff.events`.

A list row says what an agent chooses by: the customer (`contact`), the last message
(`last_message`: `{"text", "author_kind", "created_at"}`, text cut to `PREVIEW` characters;
notices, notes and separators are not messages here), who answered the customer last
(`last_responder`: `{"kind": "bot"|"agent", "agent"}`, the agent when known; null before any
answer), the conversation's `labels` (`handoff.desk.labels`) and, for the requesting agent, the
`unread` customer messages of the ticket (`handoff.desk.reads`).
"""

from __future__ import annotations

from typing import Any

from tortoise.functions import Max

from handoff.desk.labels import labels_of
from handoff.desk.reads import unread_counts
from handoff.events import agent_json, iso, load_agent, ticket_row
from handoff.models import Agent, Conversation, Message, Ticket

PREVIEW = 200  # characters of the last message a row carries
SPEAKERS = ("customer", "bot", "agent")


async def tickets_json(tickets: list[Ticket], agent_id: int) -> list[dict[str, Any]]:
    """List rows: tickets loaded with select_related("assignee", "conversation__contact"), plus
    their `contact`, `last_message`, the conversation's `last_activity_at` and `labels`, and
    `unread` for this agent (four more queries)."""
    unread = await unread_counts(agent_id, [t.id for t in tickets])
    last = await _last_messages({t.conversation_id for t in tickets})  # type: ignore[attr-defined]
    labels = await labels_of([t.conversation_id for t in tickets])  # type: ignore[attr-defined]
    return [{**ticket_row(t, t.assignee), "contact": _contact(t.conversation),
             "labels": labels.get(t.conversation_id, []),  # type: ignore[attr-defined]
             "last_message": _preview(last.get(t.conversation_id)),  # type: ignore[attr-defined]
             "last_activity_at": iso(t.conversation.last_activity_at), "unread": unread.get(t.id, 0)}
            for t in tickets]


async def conversation_json(conversation: Conversation, agent_id: int | None = None) -> dict[str, Any]:
    """A conversation summary: state, channel, contact, assignee, its open ticket, last message,
    last responder and labels, and the open ticket's `unread` for `agent_id`."""
    await conversation.fetch_related("contact")
    open_ticket = await Ticket.get_or_none(open_key=conversation.id)
    assignee = await load_agent(conversation.assignee_id)  # type: ignore[attr-defined]
    responder_id = conversation.responded_by_agent_id  # type: ignore[attr-defined]
    responder = assignee if assignee and assignee.id == responder_id else await load_agent(responder_id)
    last = await _last_messages({conversation.id})
    unread = await unread_counts(agent_id, [open_ticket.id]) if open_ticket and agent_id else {}
    labels = await labels_of([conversation.id])
    return _conversation_row(conversation, assignee, responder, open_ticket.id if open_ticket else None,
                             last.get(conversation.id), unread, labels)


async def conversations_json(conversations: list[Conversation], agent_id: int) -> list[dict[str, Any]]:
    """Conversations loaded with select_related("contact", "assignee", "responded_by_agent"), in
    at most six more queries (open tickets, last messages, unread counts, labels)."""
    ids = [c.id for c in conversations]
    open_tickets = dict(await Ticket.filter(open_key__in=ids).values_list("open_key", "id")) if ids else {}
    last = await _last_messages(set(ids))
    unread = await unread_counts(agent_id, list(open_tickets.values()))
    labels = await labels_of(ids)
    return [_conversation_row(c, c.assignee, c.responded_by_agent, open_tickets.get(c.id), last.get(c.id), unread, labels)
            for c in conversations]


async def _last_messages(conversation_ids: set[int]) -> dict[int, Message]:
    """The last customer, bot or agent message (not a note) of each conversation that has one."""
    if not conversation_ids:
        return {}
    last_ids = await (Message.filter(conversation_id__in=conversation_ids, private=False, author_kind__in=SPEAKERS)
                      .annotate(last=Max("id")).group_by("conversation_id").values_list("last", flat=True))
    return {m.conversation_id: m for m in await Message.filter(id__in=last_ids)}  # type: ignore[attr-defined]


def _preview(message: Message | None) -> dict[str, Any] | None:
    if message is None:
        return None
    text = "" if message.deleted_at else " ".join(message.text.split())
    if not text and message.attachments and not message.deleted_at:
        text = ", ".join(str(a.get("filename") or "file") for a in message.attachments if isinstance(a, dict))
    return {"text": text[:PREVIEW - 1] + "…" if len(text) > PREVIEW else text,
            "author_kind": message.author_kind, "created_at": iso(message.created_at)}


def _last_responder(conversation: Conversation, responder: Agent | None) -> dict[str, Any] | None:
    """Who answered the customer last (`Conversation.responded_by`): the AI, or an agent (named
    when known: `responder`); None before any answer."""
    kind = conversation.responded_by
    if kind not in ("bot", "agent"):
        return None
    return {"kind": kind, "agent": agent_json(responder) if kind == "agent" else None}


def _conversation_row(conversation: Conversation, assignee: Agent | None, responder: Agent | None,
                      open_ticket_id: int | None, last: Message | None, unread: dict[int, int],
                      labels: dict[int, list[dict[str, Any]]]) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "channel": conversation.channel,
        "state": conversation.state,
        "version": conversation.version,
        "language": conversation.language,
        "contact": _contact(conversation),
        "assignee": agent_json(assignee),
        "open_ticket_id": open_ticket_id,
        "unread": unread.get(open_ticket_id, 0) if open_ticket_id else 0,
        "last_message": _preview(last),
        "last_responder": _last_responder(conversation, responder),
        "labels": labels.get(conversation.id, []),
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
