"""Writing to a conversation's timeline inside a transaction: outgoing messages with their
outbox row, separators, internal notes and events. Live events are collected in a
`Pending` and published only after the transaction commits."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from handoff.models import Agent, Conversation, Event, Message, Outbox, Ticket
from handoff.notices import label, render

AUTHOR_OF_KIND = {"bot": "bot", "agent": "agent", "notice": "system"}


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


@dataclass
class Pending:
    """Live events to publish once the surrounding transaction has committed."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    outbound: bool = False

    def add(self, kind: str, **data: Any) -> None:
        """Remember an event to publish after commit."""
        self.events.append((kind, data))


async def add_outgoing(
    pending: Pending,
    conversation: Conversation,
    kind: str,
    text: str,
    *,
    ticket: Ticket | None = None,
    agent: Agent | None = None,
    notice: str | None = None,
    notice_params: dict[str, Any] | None = None,
    epoch: int | None = None,
    attachments: list[dict[str, Any]] | None = None,
    origin: str | None = None,
) -> Message:
    """An outgoing bot/agent/notice message and its outbox row, in the current transaction."""
    message = await Message.create(
        conversation=conversation,
        ticket=ticket,
        channel=conversation.channel,
        direction="outgoing",
        author_kind=AUTHOR_OF_KIND[kind],
        agent=agent,
        text=text,
        notice=notice,
        notice_params=notice_params or {},
        attachments=attachments or [],
        epoch=epoch,
        delivery_status="pending",
        origin=origin,
    )
    await Outbox.create(message=message, channel=conversation.channel, conversation_id=conversation.id,
                        next_attempt_at=utcnow())
    pending.messages.append(message)
    pending.outbound = True
    return message


async def add_notice(
    pending: Pending, conversation: Conversation, notice: str, *, ticket: Ticket | None = None, **params: Any
) -> Message:
    """A customer notice ("waiting", "agent_joined", ...) rendered in the conversation's language."""
    text = render(notice, conversation.language, **params)
    return await add_outgoing(
        pending, conversation, "notice", text, ticket=ticket, notice=notice, notice_params=params
    )


async def add_note(
    pending: Pending, conversation: Conversation, ticket: Ticket | None, agent: Agent | None, text: str,
    origin: str | None = None,
) -> Message:
    """An internal note: on the timeline, never sent to the customer."""
    message = await Message.create(
        conversation=conversation,
        ticket=ticket,
        channel=conversation.channel,
        direction="outgoing",
        author_kind="agent" if agent else "system",
        agent=agent,
        text=text,
        private=True,
        origin=origin,
    )
    pending.messages.append(message)
    return message


async def add_separator(
    pending: Pending, conversation: Conversation, ticket: Ticket, which: str
) -> Message:
    """A "Live Chat" / "AI Resumed" separator on the timeline (which = live_chat | ai_resumed)."""
    message = await Message.create(
        conversation=conversation,
        ticket=ticket,
        channel=conversation.channel,
        direction="activity",
        author_kind="system",
        text=label(which, conversation.language),
        notice=which,
    )
    pending.messages.append(message)
    return message


async def add_event(
    pending: Pending,
    conversation: Conversation,
    kind: str,
    *,
    ticket: Ticket | None = None,
    agent: Agent | None = None,
    **data: Any,
) -> Event:
    """An append-only timeline event."""
    event = await Event.create(conversation=conversation, ticket=ticket, kind=kind, agent=agent, data=data)
    pending.add("timeline.event", conversation_id=conversation.id, ticket_id=ticket.id if ticket else None,
                event={"kind": kind, "data": data, "agent_id": agent.id if agent else None})
    return event
