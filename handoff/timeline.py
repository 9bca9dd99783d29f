"""Writing to a conversation's timeline inside a transaction: outgoing messages with their
outbox row, separators, internal notes and events. Live events are collected in a
`Pending` and published by `publish` only after the transaction commits."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from handoff.events import AUTHOR_OF_KIND, EventKind, message_json
from handoff.models import Agent, Conversation, Event, Message, Outbox, Ticket, utcnow
from handoff.notices import label, render

if TYPE_CHECKING:
    from handoff.runtime import Runtime


@dataclass
class Pending:
    """Live events to publish once the surrounding transaction has committed."""

    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    outbox: list[Outbox] = field(default_factory=list)  # rows to offer the outbox worker

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
    row = await Outbox.create(message=message, channel=conversation.channel, conversation_id=conversation.id,
                              next_attempt_at=utcnow())
    pending.messages.append(message)
    pending.outbox.append(row)
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
    pending.add(EventKind.TIMELINE_EVENT, conversation_id=conversation.id, ticket_id=ticket.id if ticket else None,
                event={"kind": kind, "data": data, "agent_id": agent.id if agent else None})
    return event


async def publish(rt: Runtime, pending: Pending) -> None:
    """Publish a committed transaction's live events on `rt.hub` (its messages first, as
    `message.created`, then the collected events, in order) and offer the outbox worker the
    outgoing messages it wrote."""
    agent_ids = {m.agent_id for m in pending.messages if m.agent_id}  # type: ignore[attr-defined]
    agents = {a.id: a for a in await Agent.filter(id__in=agent_ids)} if agent_ids else {}
    for message in pending.messages:
        rt.hub.publish(EventKind.MESSAGE_CREATED, conversation_id=message.conversation_id,  # type: ignore[attr-defined]
                       ticket_id=message.ticket_id, message=message_json(message, agents))  # type: ignore[attr-defined]
    for kind, data in pending.events:
        rt.hub.publish(kind, **data)
    if pending.outbox:
        rt.outbox.offer(pending.outbox)


async def record_failure(rt: Runtime, message: Message, reason: str) -> None:
    """Put a delivery failure (`reason`) on the timeline, on the message's ticket when it has one,
    and publish the message's new delivery state (the outbox's last attempt, a provider's
    `failed` receipt)."""
    conversation = await Conversation.get(id=message.conversation_id)  # type: ignore[attr-defined]
    pending = Pending()
    ticket = await message.ticket if message.ticket_id else None  # type: ignore[attr-defined]
    await add_event(pending, conversation, "delivery_failed", ticket=ticket, message_id=message.id, reason=reason)
    fresh = await Message.get(id=message.id)
    pending.add(EventKind.MESSAGE_UPDATED, conversation_id=conversation.id, message_id=message.id,
                delivery_status=fresh.delivery_status, delivery_error=fresh.delivery_error,
                message=message_json(fresh))
    for kind, data in pending.events:
        rt.hub.publish(kind, **data)
