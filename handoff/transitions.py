"""The transitions of the conversation state machine (DESIGN.md §2): takeover, escalate, claim,
transfer, allow-AI (handback), close, an agent's reply or note, the end of an inactive bot
conversation, and a ticket's turn flipping between agent and customer (`states` names them all).
This is the only module that writes `Conversation.state` or `Ticket.status`.

Every operation is one transaction; the state changes are compare-and-set updates on the
conversation's state and version (or the ticket's open key), so of two racing agents
exactly one wins and the other gets a `Conflict` naming the winner. Live events are
published after commit; a ticket's summary is written in the background.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any


from tortoise.expressions import F

from handoff import hours, metrics, presence
from handoff.bot.history import contact_label, load_cycle_turns
from handoff.errors import Conflict, Forbidden, InvalidInput, InvalidState, NotFound
from handoff.events import EventKind, agent_json, ticket_json
from handoff.models import Agent, Conversation, Message, Ticket, utcnow
from handoff.notices import opening_time, sends_notice
from handoff.states import ConversationState, TicketStatus
from handoff.timeline import Pending, add_event, add_note, add_notice, add_outgoing, add_separator, publish, transaction

if TYPE_CHECKING:
    from handoff.runtime import Runtime

log = logging.getLogger(__name__)

MAX_TEXT = 10_000
SUMMARY_HISTORY = 40  # turns of the current cycle (since the last handback) a summary reads
SUMMARY_CONTEXT = 20  # turns of the earlier cycles it reads as context


async def takeover(rt: Runtime, conversation_id: int, agent: Agent) -> Ticket:
    """An agent takes a bot conversation: the AI stops at once, a ticket is assigned to them.

    Takeovers of one conversation that arrive in this process while one of it runs wait for
    that one: when it wins, theirs is a `Conflict` naming its agent, at no cost to the database
    (32 agents clicking at once cost one transaction, not 32); when it fails, they try in turn.
    Across instances the compare-and-set in `_open_ticket` decides.
    """
    while (running := rt.takeovers.get(conversation_id)) is not None:
        try:
            ticket = await asyncio.shield(running)
        except asyncio.CancelledError:
            if not running.cancelled():
                raise  # this request itself was cancelled
        except Exception:  # noqa: BLE001 — it lost or failed: this one tries on its own
            pass
        else:
            raise Conflict(f"already taken over by {ticket.assignee.name}", ticket=ticket, assignee=ticket.assignee)
    future: asyncio.Future[Ticket] = asyncio.get_running_loop().create_future()
    future.add_done_callback(lambda f: f.cancelled() or f.exception())  # retrieved, waiters or not
    rt.takeovers[conversation_id] = future
    try:
        ticket = await _open_ticket(rt, conversation_id, agent=agent, reason="takeover")
    except asyncio.CancelledError:
        future.cancel()
        raise
    except Exception as exc:
        future.set_exception(exc)
        raise
    finally:
        if rt.takeovers.get(conversation_id) is future:
            del rt.takeovers[conversation_id]
    future.set_result(ticket)
    return ticket


async def escalate(rt: Runtime, conversation_id: int, reason: str, expected_version: int | None = None,
                   *, notify_customer: bool = True) -> Ticket | None:
    """The bot (or the customer) asks for a person: an unassigned ticket in the queue.

    With `expected_version`, escalation only happens if the conversation has not changed
    owner since; returns None when it already has a human (nothing to do). Without
    `notify_customer` the customer is not told to wait (a person has already answered them).
    """
    try:
        ticket = await _open_ticket(rt, conversation_id, agent=None, reason=reason[:200] or "escalated",
                                    expected_version=expected_version, notice=notify_customer)
    except (Conflict, InvalidState):
        return None
    if rt.settings.auto_assign:
        await route(rt, ticket.id)
    return ticket


async def _open_ticket(
    rt: Runtime, conversation_id: int, *, agent: Agent | None, reason: str, expected_version: int | None = None,
    notice: bool = True,
) -> Ticket:
    pending = Pending()
    async with transaction(pending):
        conversation = await Conversation.get_or_none(id=conversation_id)
        if conversation is None:
            raise NotFound("conversation not found")
        version = conversation.version if expected_version is None else expected_version
        won = False
        if conversation.state == ConversationState.BOT:
            # The team is away and the customer is told so: the bot keeps helping meanwhile.
            absence = await team_absence(rt, conversation.language) if agent is None and notice else None
            now = utcnow()
            changes: dict[str, Any] = {
                "state": ConversationState.HUMAN, "version": version + 1, "assignee_id": agent.id if agent else None,
                "waiting_since": now, "last_activity_at": now, "bot_while_waiting": absence is not None}
            if absence is not None:  # the notices below answer the customer (the sweep leaves them)
                changes["last_responder"] = "queue"
            won = bool(await Conversation.filter(id=conversation.id, state=ConversationState.BOT, version=version).update(**changes))
        if won:
            conversation.update_from_dict(changes)  # what the compare-and-set wrote
            ticket = await Ticket.create(
                conversation=conversation,
                open_key=conversation.id,
                channel=conversation.channel,
                status=TicketStatus.ON_YOU if agent else TicketStatus.OPEN,
                assignee=agent,
                language=conversation.language,
                subject=await _provisional_subject(conversation),
                reason=reason,
            )
            await add_separator(pending, conversation, ticket, "live_chat")
            await add_event(pending, conversation, "takeover" if agent else "escalated", ticket=ticket,
                            agent=agent, reason=reason)
            if notice:
                if absence is None or not _one_notice_each(rt, conversation, absence[0]):
                    await add_notice(pending, conversation, "waiting", ticket=ticket)
                if absence is not None:
                    await add_notice(pending, conversation, absence[0], ticket=ticket, **absence[1])
    if not won:
        raise await _lost_race(conversation)
    metrics.TAKEOVERS.labels("takeover" if agent else "escalation").inc()
    pending.add(EventKind.TICKET_CREATED, ticket=await ticket_json(ticket))
    pending.add(EventKind.CONVERSATION_UPDATED, conversation_id=conversation.id, state=ConversationState.HUMAN)
    await publish(rt, pending)
    rt.spawn(write_summary(rt, ticket.id), name=f"summary-{ticket.id}")
    return ticket


def _one_notice_each(rt: Runtime, conversation: Conversation, absence: str) -> bool:
    """True when the conversation's channel sends each notice as a message of its own (email)
    and words `absence` itself: its "away" reply already thanks the customer, so the "waiting"
    one would be a second email saying less."""
    channel = rt.channels.get(conversation.channel)
    style = channel.capabilities.notice_style if channel is not None else "chat"
    return style == "mail" and sends_notice(style, absence)


async def team_absence(rt: Runtime, language: str | None) -> tuple[str, dict[str, str]] | None:
    """With business hours set: ("away", {"when": the next opening in `language`}) outside them,
    ("unavailable", {}) in them with no agent online, else None (also without business hours)."""
    opening = hours.parse(rt.settings.business_hours)
    if opening is None:
        return None
    now = rt.now()
    if not opening.is_open(now):
        return "away", {"when": opening_time(opening.next_opening(now), language)}
    if not await presence.online_agents():
        return "unavailable", {}
    return None


async def _lost_race(conversation: Conversation) -> Exception:
    fresh = await Conversation.get(id=conversation.id)
    if fresh.state == ConversationState.ENDED:
        return InvalidState("the conversation has ended")
    ticket = await Ticket.get_or_none(open_key=conversation.id)
    if fresh.state == ConversationState.BOT or ticket is None:
        return InvalidState("the conversation changed; try again")
    assignee = await Agent.get_or_none(id=ticket.assignee_id) if ticket.assignee_id else None  # type: ignore[attr-defined]
    who = assignee.name if assignee else "the unassigned queue"
    return Conflict(f"already taken over by {who}", ticket=ticket, assignee=assignee)


async def _provisional_subject(conversation: Conversation) -> str:
    last = await Message.filter(conversation_id=conversation.id, direction="incoming").order_by("-id").first()
    text = " ".join((last.text if last else "").split())
    return text[:77] + "..." if len(text) > 80 else text


async def claim(rt: Runtime, ticket_id: int, agent: Agent) -> Ticket:
    """"Assign to me" on an unassigned ticket: one winner."""
    pending = Pending()
    async with transaction(pending):
        ticket = await _open_ticket_or_fail(ticket_id)
        claimed = {"assignee_id": agent.id, "status": TicketStatus.ON_YOU}
        won = bool(await Ticket.filter(id=ticket.id, assignee_id=None, open_key__not_isnull=True).update(**claimed))
        if won:
            await _assign(ticket.conversation_id, agent.id)  # type: ignore[attr-defined]
            conversation = await Conversation.get(id=ticket.conversation_id)  # type: ignore[attr-defined]
            await add_event(pending, conversation, "claimed", ticket=ticket, agent=agent)
    if not won:
        await ticket.refresh_from_db()
        assignee = await Agent.get_or_none(id=ticket.assignee_id) if ticket.assignee_id else None  # type: ignore[attr-defined]
        if assignee is None:
            raise InvalidState("the ticket is closed")
        raise Conflict(f"already assigned to {assignee.name}", ticket=ticket, assignee=assignee)
    ticket.update_from_dict(claimed)
    pending.add(EventKind.TICKET_UPDATED, ticket=await ticket_json(ticket))
    await publish(rt, pending)
    return ticket


async def transfer(rt: Runtime, ticket_id: int, agent: Agent, to_agent_id: int, note: str = "") -> Ticket:
    """Pass a ticket to another agent with a note (internal) and tell the customer."""
    note = _clean(note, required=False)
    target = await Agent.get_or_none(id=to_agent_id, is_active=True)
    if target is None:
        raise NotFound("agent not found")
    pending = Pending()
    async with transaction(pending):
        ticket = await _open_ticket_or_fail(ticket_id)
        if ticket.assignee_id == target.id:  # type: ignore[attr-defined]
            raise InvalidState(f"the ticket is already assigned to {target.name}")
        reassigned = {"assignee_id": target.id, "status": TicketStatus.ON_YOU}
        if not await Ticket.filter(id=ticket.id, open_key__not_isnull=True).update(**reassigned):
            raise InvalidState("the ticket is closed")
        ticket.update_from_dict(reassigned)
        await _assign(ticket.conversation_id, target.id)  # type: ignore[attr-defined]
        conversation = await Conversation.get(id=ticket.conversation_id)  # type: ignore[attr-defined]
        if note:
            await add_note(pending, conversation, ticket, agent, note)
        await add_event(pending, conversation, "transferred", ticket=ticket, agent=agent,
                        to_agent=agent_json(target), note=note)
        await add_notice(pending, conversation, "transferred", ticket=ticket, agent=target.name)
    pending.add(EventKind.TICKET_UPDATED, ticket=await ticket_json(ticket), transferred_to=agent_json(target),
                note=note)
    pending.add(EventKind.TICKET_ASSIGNED, ticket_id=ticket.id, conversation_id=conversation.id, agent_id=target.id,
                by=agent_json(agent))
    await publish(rt, pending)
    return ticket


async def allow_ai(rt: Runtime, ticket_id: int, agent: Agent | None) -> Ticket:
    """Handback: resume the bot and close the ticket in one step."""
    return await _finish(rt, ticket_id, agent, resume_bot=True)


async def close(rt: Runtime, ticket_id: int, agent: Agent | None) -> Ticket:
    """Close the ticket and end the conversation without resuming the AI."""
    return await _finish(rt, ticket_id, agent, resume_bot=False)


async def _finish(rt: Runtime, ticket_id: int, agent: Agent | None, *, resume_bot: bool) -> Ticket:
    pending = Pending()
    now = utcnow()
    async with transaction(pending):
        ticket = await _open_ticket_or_fail(ticket_id)
        closed = {"open_key": None, "status": TicketStatus.CLOSED, "closed_at": now}
        if not await Ticket.filter(id=ticket.id, open_key__not_isnull=True).update(**closed):
            raise InvalidState("the ticket is already closed")
        ticket.update_from_dict(closed)
        conversation = await Conversation.get(id=ticket.conversation_id)  # type: ignore[attr-defined]
        changes: dict[str, object] = {
            "version": conversation.version + 1, "assignee_id": None, "waiting_since": None,
            "last_activity_at": now, "bot_while_waiting": False,
        }
        if resume_bot:
            changes["state"] = ConversationState.BOT
        else:
            changes.update(state=ConversationState.ENDED, open_key=None, ended_at=now)
        await Conversation.filter(id=conversation.id).update(**changes)
        conversation.update_from_dict(changes)
        if resume_bot:
            await add_separator(pending, conversation, ticket, "ai_resumed")
            await add_event(pending, conversation, "ai_resumed", ticket=ticket, agent=agent)
            await add_notice(pending, conversation, "ai_resumed", ticket=ticket)
        else:
            await add_event(pending, conversation, "closed", ticket=ticket, agent=agent)
            await add_notice(pending, conversation, "closed", ticket=ticket)
    pending.add(EventKind.TICKET_UPDATED, ticket=await ticket_json(ticket))
    pending.add(EventKind.CONVERSATION_UPDATED, conversation_id=conversation.id, state=conversation.state)
    await publish(rt, pending)
    return ticket


async def reply(rt: Runtime, ticket_id: int, agent: Agent, text: str, internal: bool = False,
                attachments: list[dict[str, object]] | None = None, origin: str | None = None) -> Message:
    """An agent's reply to the customer on the conversation's channel, or an internal note.

    A reply on an unassigned ticket assigns it to the replying agent; a reply on someone
    else's ticket is refused (transfer it first). The first reply after takeover tells the
    customer who joined, which clears their "waiting for an agent" indicator. `attachments`
    (attachment dicts of stored files) go with a reply, whose text may then be empty; `origin`
    ("slack") is stored on the message in the same transaction.
    """
    if internal and attachments:
        raise InvalidInput("internal notes cannot carry files; send them in a reply")
    text = _clean(text, required=not attachments)
    pending = Pending()
    async with transaction(pending):
        ticket = await _open_ticket_or_fail(ticket_id)
        conversation = await Conversation.get(id=ticket.conversation_id)  # type: ignore[attr-defined]
        if internal:
            message = await add_note(pending, conversation, ticket, agent, text, origin=origin)
        else:
            if ticket.assignee_id is None:  # type: ignore[attr-defined]
                if not await Ticket.filter(id=ticket.id, assignee_id=None).update(assignee_id=agent.id):
                    raise Conflict("the ticket was just assigned to someone else", ticket=ticket)
                ticket.assignee_id = agent.id  # type: ignore[attr-defined]
                await _assign(conversation.id, agent.id)
                await add_event(pending, conversation, "claimed", ticket=ticket, agent=agent)
            elif ticket.assignee_id != agent.id:  # type: ignore[attr-defined]
                assignee = await Agent.get(id=ticket.assignee_id)  # type: ignore[attr-defined]
                raise Forbidden(f"the ticket is assigned to {assignee.name}; ask for a transfer")
            if conversation.waiting_since is not None:
                await Conversation.filter(id=conversation.id).update(waiting_since=None)
                await add_notice(pending, conversation, "agent_joined", ticket=ticket, agent=agent.name)
            message = await add_outgoing(pending, conversation, "agent", text, ticket=ticket, agent=agent,
                                         attachments=attachments, origin=origin)
            await answered(ticket)
            await Conversation.filter(id=conversation.id).update(last_responder="agent", responded_by="agent",
                                                                 responded_by_agent_id=agent.id, last_activity_at=utcnow())
    pending.add(EventKind.TICKET_UPDATED, ticket=await ticket_json(ticket))
    await publish(rt, pending)
    return message


async def _assign(conversation_id: int, agent_id: int) -> None:
    """Give the conversation to the agent, in the caller's transaction. The bot stops helping
    meanwhile, and the version moves on: a bot reply generated before is dropped (the fence)."""
    await Conversation.filter(id=conversation_id).update(assignee_id=agent_id, bot_while_waiting=False,
                                                         version=F("version") + 1)


async def answered(ticket: Ticket) -> None:
    """A person answered the customer on this open ticket: an assigned one becomes "on_customer".

    Runs inside the caller's transaction (a desk reply, or a reply from the provider's own app).
    """
    changed = await Ticket.filter(id=ticket.id, open_key__not_isnull=True).update(status=TicketStatus.ON_CUSTOMER)
    if changed:
        ticket.status = TicketStatus.ON_CUSTOMER


async def customer_wrote(ticket: Ticket) -> None:
    """The customer wrote on an open ticket that waited for them: "on_customer" becomes "on_you".

    A compare-and-set on the status, inside the caller's transaction (the gateway's).
    """
    if await Ticket.filter(id=ticket.id, status=TicketStatus.ON_CUSTOMER).update(status=TicketStatus.ON_YOU):
        ticket.status = TicketStatus.ON_YOU


async def end_inactive(rt: Runtime, conversation: Conversation) -> bool:
    """End a bot conversation left inactive (the sweeper's timeout); returns whether it ended.

    A compare-and-set on (state "bot", version): a conversation a person took over, or one the
    customer wrote to since it was read, is left as it is.
    """
    ended = {"state": ConversationState.ENDED, "version": conversation.version + 1, "open_key": None,
             "ended_at": utcnow()}
    pending = Pending()
    async with transaction(pending):
        if not await Conversation.filter(id=conversation.id, state=ConversationState.BOT,
                                         version=conversation.version).update(**ended):
            return False
        conversation.update_from_dict(ended)
        await add_event(pending, conversation, "ended", reason="inactivity")
        pending.add(EventKind.CONVERSATION_UPDATED, conversation_id=conversation.id, state=ConversationState.ENDED)
    await publish(rt, pending)
    return True


async def write_summary(rt: Runtime, ticket_id: int) -> None:
    """Ask the summarizer for the ticket's subject and summary (outside any transaction)."""
    ticket = await Ticket.get(id=ticket_id)
    conversation = await Conversation.get(id=ticket.conversation_id)  # type: ignore[attr-defined]
    history = await load_cycle_turns(conversation.id, SUMMARY_HISTORY, SUMMARY_CONTEXT)
    try:
        summary = await rt.summarizer.summarize(history, conversation.language or "en", await contact_label(conversation))
    except Exception:
        log.exception("summary for ticket %s failed", ticket_id)
        return
    pending = Pending()
    async with transaction(pending):
        await Ticket.filter(id=ticket_id).update(subject=summary.subject[:200] or ticket.subject,
                                                 summary=summary.summary)
        await ticket.refresh_from_db()
        pending.add(EventKind.TICKET_SUMMARY, ticket=await ticket_json(ticket))
    await publish(rt, pending)


async def _open_ticket_or_fail(ticket_id: int) -> Ticket:
    ticket = await Ticket.get_or_none(id=ticket_id)
    if ticket is None:
        raise NotFound("ticket not found")
    if ticket.status == TicketStatus.CLOSED:
        raise InvalidState("the ticket is closed")
    return ticket


def _clean(text: object, *, required: bool) -> str:
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise InvalidInput("text must be a string")
    text = text.strip()
    if required and not text:
        raise InvalidInput("text must not be empty")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"text is longer than {MAX_TEXT} characters")
    return text


class _NoRoom(Exception):
    """The agent has no presence row or no spare capacity: the routing transaction rolls back."""


class _Gone(Exception):
    """The ticket was assigned or closed meanwhile: the routing transaction rolls back."""


async def route(rt: Runtime, ticket_id: int) -> Agent | None:
    """Assign an unassigned open ticket to an online agent with spare capacity (fewer than
    `agent_capacity` open tickets), round robin: the agent routing served longest ago first.
    Returns the assignee, or None (nobody online has room, or the ticket is taken or closed: it
    waits in Unassigned)."""
    for agent_id, _ in await presence.online_agents():
        try:
            return await _assign_if_room(rt, ticket_id, agent_id)
        except _NoRoom:
            continue
        except _Gone:
            return None
    return None


async def route_waiting(rt: Runtime, agent_id: int | None = None) -> int:
    """Offer the tickets waiting in Unassigned, oldest first, to `agent_id` (who just came online)
    up to their capacity, or with no `agent_id` to any online agent with room; returns how many
    were assigned. Nothing with `auto_assign` off."""
    if not rt.settings.auto_assign:
        return 0
    waiting = await Ticket.filter(assignee_id=None, open_key__not_isnull=True).order_by("id").limit(200) \
        .values_list("id", flat=True)
    assigned = 0
    for ticket_id in waiting:
        if agent_id is None:
            agent = await route(rt, ticket_id)
            if agent is None and not await Ticket.filter(id=ticket_id, assignee_id__not_isnull=True).exists():
                break  # nobody online has room now
            assigned += agent is not None
            continue
        try:
            assigned += await _assign_if_room(rt, ticket_id, agent_id) is not None
        except _NoRoom:
            break
        except _Gone:
            continue
    return assigned


async def _assign_if_room(rt: Runtime, ticket_id: int, agent_id: int) -> Agent:
    """Assign the ticket to the agent if they have room: `_NoRoom` or `_Gone` otherwise.

    One transaction: the agent's presence row is written first (round robin's mark), which locks
    it, so routings to one agent from several instances count that agent's open tickets one after
    the other and never exceed the capacity; the ticket's assignment is a compare-and-set on
    "still unassigned and open", so one ticket is never assigned twice.
    """
    pending = Pending()
    async with transaction(pending):
        if not await presence.mark_assigned(agent_id, utcnow()):
            raise _NoRoom
        if await Ticket.filter(assignee_id=agent_id, open_key__not_isnull=True).count() >= rt.settings.agent_capacity:
            raise _NoRoom
        assigned = {"assignee_id": agent_id, "status": TicketStatus.ON_YOU}
        if not await Ticket.filter(id=ticket_id, assignee_id=None, open_key__not_isnull=True).update(**assigned):
            raise _Gone
        ticket = await Ticket.get(id=ticket_id)
        await _assign(ticket.conversation_id, agent_id)  # type: ignore[attr-defined]
        conversation = await Conversation.get(id=ticket.conversation_id)  # type: ignore[attr-defined]
        agent = await Agent.get(id=agent_id)
        await add_event(pending, conversation, "auto_assigned", ticket=ticket, agent=agent)
    pending.add(EventKind.TICKET_UPDATED, ticket=await ticket_json(ticket))
    pending.add(EventKind.TICKET_ASSIGNED, ticket_id=ticket.id, conversation_id=conversation.id, agent_id=agent_id,
                by=None)
    await publish(rt, pending)
    return agent
