"""Writing to a conversation's timeline inside a transaction: outgoing messages with their
outbox row, separators, internal notes and events. Live events are collected in a
`Pending`; `transaction(pending)` writes them to the event log (handoff.eventlog) just before
its commit, and `publish` hands them, with their seq, to the hub after it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from handoff import eventlog, group_commit, mentions
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
    logged: list[dict[str, Any]] | None = None  # the events with their seq, once written to the log
    flushed: tuple[int, int] = (0, 0)  # how many of `messages` and `events` the log holds

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
    """An internal note: on the timeline, never sent to the customer. The agents it @mentions are
    kept on it and notified (`handoff.mentions`)."""
    mentioned = await mentions.resolve(text)
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
        mentions=mentions.mention_list(mentioned),
    )
    pending.messages.append(message)
    await mentions.notify(pending, conversation, ticket, message, agent, mentioned)
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


@contextlib.asynccontextmanager
async def transaction(pending: Pending) -> AsyncIterator[BaseDBAsyncClient]:
    """`in_transaction()` that, when its block ends without an exception, writes `pending`'s
    live events to the event log in the same transaction (`log_events`)."""
    async with in_transaction() as conn:
        yield conn
        await log_events(pending, conn)


async def log_events(pending: Pending, conn: BaseDBAsyncClient | None = None) -> None:
    """Write `pending`'s live events to the event log in the current transaction (one INSERT,
    none when there are no events) and keep them, with their seq, in `pending.logged` for
    `publish`. In a unit of a group commit the append waits for the group's last step
    (`group_commit.last`), after every unit's row locks are taken, and appends the events of
    every unit of the group with one INSERT."""
    if conn is None and group_commit.last(_log_all, pending):
        return
    await _log_all([pending], conn)


async def _log_all(pendings: list[Pending], conn: BaseDBAsyncClient | None = None) -> None:
    """One append of the events of `pendings`, in order; each keeps its own, with their seqs."""
    events = [await _events(pending) for pending in pendings]
    seqs = iter(await eventlog.append([event for own in events for event in own], conn))
    for pending, own in zip(pendings, events, strict=True):
        pending.logged = [{**event, "seq": next(seqs)} for event in own]
        pending.flushed = (len(pending.messages), len(pending.events))


async def _events(pending: Pending, since: tuple[int, int] = (0, 0)) -> list[dict[str, Any]]:
    """The live events of `pending` (past the `since` messages and events): its messages first,
    as `message.created`, then the collected events."""
    messages, rest = pending.messages[since[0]:], pending.events[since[1]:]
    agent_ids = {m.agent_id for m in messages if m.agent_id}  # type: ignore[attr-defined]
    agents = {a.id: a for a in await Agent.filter(id__in=agent_ids)} if agent_ids else {}
    events = [{"kind": EventKind.MESSAGE_CREATED, "conversation_id": message.conversation_id,  # type: ignore[attr-defined]
               "ticket_id": message.ticket_id, "message": message_json(message, agents)}  # type: ignore[attr-defined]
              for message in messages]
    return events + [{"kind": kind, **data} for kind, data in rest]


async def publish(rt: Runtime, pending: Pending) -> None:
    """Publish a committed transaction's live events on `rt.hub` and offer the outbox worker the
    outgoing messages it wrote. Events `transaction` logged go with their seq; events added after
    its commit (the desk's ticket events, built from the committed ticket) are logged in a
    transaction of their own first."""
    if pending.logged:
        rt.hub.publish_logged(pending.logged)
    late = await _events(pending, pending.flushed)
    if late:
        await rt.hub.publish_durable(late)
    if pending.outbox:
        rt.outbox.offer(pending.outbox)


async def record_failure(rt: Runtime, message: Message, reason: str) -> None:
    """Put a delivery failure (`reason`) on the timeline, on the message's ticket when it has one,
    and publish the message's new delivery state (the outbox's last attempt, a provider's
    `failed` receipt)."""
    conversation = await Conversation.get(id=message.conversation_id)  # type: ignore[attr-defined]
    pending = Pending()
    ticket = await message.ticket if message.ticket_id else None  # type: ignore[attr-defined]
    async with transaction(pending):
        await add_event(pending, conversation, "delivery_failed", ticket=ticket, message_id=message.id, reason=reason)
        fresh = await Message.get(id=message.id)
        pending.add(EventKind.MESSAGE_UPDATED, conversation_id=conversation.id, message_id=message.id,
                    delivery_status=fresh.delivery_status, delivery_error=fresh.delivery_error,
                    message=message_json(fresh))
    await publish(rt, pending)
