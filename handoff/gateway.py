"""The gateway: every inbound customer message is stored once, in one transaction, and
routed to whoever answers it now — the bot, the assigned agent, or the unassigned queue.

`decide()` is pure; `receive()` does the I/O around it. The bot's work is spawned after
the commit, so a webhook is acknowledged as soon as its message is durable; its turn is claimed
in the message's own transaction (`bot.claim`). Messages received
while another is being committed are stored together in the next transaction (`rt.commits`,
`handoff.group_commit`); one that fails there is stored again alone.

An `automated` message (an auto-reply, a bounce: `InboundMessage.automated`) is stored and
shown like any other, with its sender, but it leaves the conversation's "the customer is
waiting" marks (`last_responder`, `last_customer_message_at`) and language alone: no bot turn
starts for it, and the sweep never picks it up, so a machine can never draw the bot into a loop.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from handoff import metrics, sql, transitions
from handoff.bot import claim
from handoff.bot.language import detect_language
from handoff.bot.turn import run_bot_turn
from handoff.events import EventKind
from handoff.media import attachment_json
from handoff.models import Contact, ContactIdentity, Conversation, Message, Ticket, bot_answers, utcnow
from handoff.schema import InboundMessage
from handoff.states import ConversationState
from handoff.timeline import Pending, log_events, publish

if TYPE_CHECKING:
    from handoff.runtime import Runtime

log = logging.getLogger(__name__)

Route = Literal["bot", "agent", "queue", "duplicate"]
RECEIVE_ATTEMPTS = 3
LANGUAGE_SAMPLE = 5


@dataclass(frozen=True)
class Receipt:
    """What happened to one inbound message."""

    message_id: int
    conversation_id: int
    duplicate: bool
    route: Route


class OwnerChanged(Exception):
    """The conversation changed state between being read and being written: read it again."""


def decide(state: str, assignee_id: int | None, bot_while_waiting: bool = False) -> Route:
    """Who answers a new customer message in a conversation of this state: the bot (also while
    an unassigned conversation waits for a team that is away: `bot_while_waiting`), its
    assignee, or nobody yet (the queue)."""
    if state == ConversationState.BOT:
        return "bot"
    if state == ConversationState.HUMAN:
        if assignee_id is not None:
            return "agent"
        return "bot" if bot_while_waiting else "queue"
    raise ValueError(f"an {state!r} conversation takes no messages")


async def receive(rt: Runtime, inbound: InboundMessage) -> Receipt:
    """Store an inbound message exactly once and route it; returns after commit."""
    for attempt in range(RECEIVE_ATTEMPTS):
        try:
            receipt, pending, claimed = await rt.commits.run(functools.partial(_store, inbound))
            break
        except (IntegrityError, OwnerChanged):
            # A replay of a stored message (the unique (channel, provider_id) index refused
            # it), a concurrent first message of the same contact/conversation, or a state
            # change between our read and our write: the transaction rolled back; look again.
            existing = await Message.get_or_none(channel=inbound.channel, provider_id=inbound.provider_id)
            if existing is not None:
                return await _duplicate(rt, existing)
            if attempt == RECEIVE_ATTEMPTS - 1:
                raise
    metrics.MESSAGES_IN.labels(inbound.channel).inc()
    await publish(rt, pending)
    if receipt.route == "bot" and not inbound.automated:
        rt.spawn(run_bot_turn(rt, receipt.conversation_id, claimed), name=f"bot-turn-{receipt.conversation_id}")
    return receipt


async def _duplicate(rt: Runtime, message: Message) -> Receipt:
    """The receipt of a replayed message; when its bot conversation's customer still waits for an
    answer (the first delivery committed, then failed before its turn ran), a turn is started: its
    claim makes it a no-op while another turn answers."""
    conversation_id: int = message.conversation_id  # type: ignore[attr-defined]
    if await Conversation.filter(bot_answers(), id=conversation_id, last_responder="customer").exists():
        rt.spawn(run_bot_turn(rt, conversation_id), name=f"bot-turn-{conversation_id}")
    return Receipt(message.id, conversation_id, True, "duplicate")


async def _store(inbound: InboundMessage) -> tuple[Receipt, Pending, claim.Holder | None]:
    """Store the message in the current transaction (the caller's: see `receive`); a replay is
    refused by the unique index when its message is inserted. A message the bot answers claims
    its turn in the same transaction (`claim.take`; None when another turn holds it)."""
    pending = Pending()
    now = utcnow()
    conversation = await _running_conversation(inbound)
    ticket = None
    if conversation is None:
        conversation = await _new_conversation(inbound, await _contact(inbound), now)
    else:
        await _known_contact(conversation, inbound)
        ticket = await _touch(conversation, inbound, now)
    message = await Message.create(
        conversation=conversation,
        ticket=ticket,
        channel=inbound.channel,
        direction="incoming",
        author_kind="customer",
        text=inbound.text,
        attachments=[attachment_json(a) for a in inbound.attachments],
        provider_id=inbound.provider_id,
        delivery_status="none",
        sender=_sender(inbound),
    )
    route = decide(conversation.state, conversation.assignee_id, conversation.bot_while_waiting)  # type: ignore[attr-defined]
    pending.messages.append(message)
    pending.add(EventKind.CONVERSATION_UPDATED, conversation_id=conversation.id, state=conversation.state)
    if ticket is not None:
        pending.add(EventKind.TICKET_MESSAGE, ticket_id=ticket.id, conversation_id=conversation.id,
                    message_id=message.id, assignee_id=ticket.assignee_id,  # type: ignore[attr-defined]
                    status=ticket.status, contact_name=conversation.contact.name, text=inbound.text[:140])
    claimed = await claim.take(conversation.id) if route == "bot" and not inbound.automated else None
    await log_events(pending)  # in this unit's (or its group's) transaction
    return Receipt(message.id, conversation.id, False, route), pending, claimed


async def _touch(conversation: Conversation, inbound: InboundMessage, now: datetime) -> Ticket | None:
    """Record the customer's activity on a running conversation; returns its open ticket.

    The update is fenced by the version read (every state change bumps it), so the route
    decided from that read is the one in force at commit. An open ticket exists exactly
    while the state is "human"; it is written before the conversation, in the order the
    transitions lock them. The same statement counts the customer's message
    (`customer_messages`, the bot turn's fence): in commit order, whatever the instances' clocks.
    """
    ticket = None
    if conversation.state == ConversationState.HUMAN:
        ticket = await Ticket.get_or_none(open_key=conversation.id)
        if ticket is not None:
            await transitions.customer_wrote(ticket)
    language = conversation.language if inbound.automated else (
        await _language(conversation, inbound.text) or conversation.language)
    waiting: dict[str, Any] = {} if inbound.automated else {
        "last_responder": "customer", "last_customer_message_at": now, "customer_messages": F("customer_messages") + 1}
    thread = _merged_thread(conversation.thread, inbound)
    if not await Conversation.filter(id=conversation.id, version=conversation.version).update(
            last_activity_at=now, thread=thread, language=language, **waiting):
        raise OwnerChanged(f"conversation {conversation.id} changed state")
    conversation.language = language
    return ticket


def _sender(inbound: InboundMessage) -> dict[str, Any]:
    """Who wrote the message, as `Message.sender` keeps it."""
    sender: dict[str, Any] = {"id": inbound.contact_id, "name": inbound.contact_name}
    if inbound.automated:
        sender["automated"] = True
    return sender


def _merged_thread(thread: dict[str, Any], inbound: InboundMessage) -> dict[str, Any]:
    return {**thread, **{k: v for k, v in inbound.thread.items() if k != "reply_to"}}


async def _language(conversation: Conversation, text: str) -> str | None:
    """The customer's language judged from this message and their few before it; a message that
    alone says the conversation's language confirms it without reading the earlier ones."""
    if not text.strip():
        return None
    alone = detect_language([text])
    if alone is not None and alone == conversation.language:
        return alone
    earlier = await Message.filter(conversation_id=conversation.id, direction="incoming").order_by("-id").limit(
        LANGUAGE_SAMPLE - 1).values_list("text", flat=True)
    return detect_language([*reversed(earlier), text])


async def _contact(inbound: InboundMessage) -> Contact:
    """The contact behind the sender's channel identity, created on first sight."""
    known = await sql.fetch(_identified(), inbound.channel, inbound.contact_id)
    if known:
        contact = sql.instance(Contact, known[0])
        await _fill_in(contact, inbound)
        return contact
    contact = await Contact.create(name=inbound.contact_name, email=inbound.contact_email)
    await ContactIdentity.create(contact=contact, channel=inbound.channel, external_id=inbound.contact_id)
    return contact


async def _known_contact(conversation: Conversation, inbound: InboundMessage) -> None:
    """Resolve the sender of a message to a running conversation.

    The conversation's own contact is the sender's (identities never move between contacts)
    unless someone else writes in the thread, whose identity is then looked up or created.
    """
    if conversation.contact_external_id == inbound.contact_id and conversation.channel == inbound.channel:
        await _fill_in(conversation.contact, inbound)
    else:
        await _contact(inbound)


async def _fill_in(contact: Contact, inbound: InboundMessage) -> None:
    """Complete a contact's missing name or email from what this message tells."""
    if (inbound.contact_name and not contact.name) or (inbound.contact_email and not contact.email):
        contact.name = contact.name or inbound.contact_name
        contact.email = contact.email or inbound.contact_email
        await contact.save(update_fields=["name", "email"])


async def _running_conversation(inbound: InboundMessage) -> Conversation | None:
    """The not-ended conversation this message belongs to (with its contact), if any."""
    replied = inbound.thread.get("reply_to") or []
    if replied:
        earlier = await Message.filter(channel=inbound.channel, provider_id__in=list(replied)).order_by("-id").first()
        if earlier is not None:
            conversation = await Conversation.filter(id=earlier.conversation_id  # type: ignore[attr-defined]
                                                     ).select_related("contact").first()
            if conversation is not None and conversation.state != ConversationState.ENDED:
                return conversation
    rows = await sql.fetch(_running(), _open_key(inbound))
    if not rows:
        return None
    conversation = sql.instance(Conversation, rows[0])
    conversation.contact = sql.instance(Contact, rows[0], "contact__")
    return conversation


# The two reads every message starts with, pre-built (`handoff.sql`); after the ORM's start-up,
# which gives the models their foreign key columns.
@functools.cache
def _running() -> sql.Statement:
    """The conversation of an open key, with its contact.

    The open key is looked up in a subquery of its own: most conversations have ended (a NULL
    open key), and once SQLite's ANALYZE has counted those NULLs as one value shared by every row,
    its planner scanned the whole conversation table for the join's `c.open_key = ?` (per message,
    growing with history), while it keeps the unique index for a lookup on the table alone."""
    return sql.Statement(f"""
        SELECT {sql.columns(Conversation, "c")}, {sql.columns(Contact, "k", "contact__")}
        FROM conversation AS c JOIN contact AS k ON k.id = c.contact_id
        WHERE c.id = (SELECT id FROM conversation WHERE open_key = ?)""")


@functools.cache
def _identified() -> sql.Statement:
    """The contact of a channel identity (channel, external id)."""
    return sql.Statement(f"""
        SELECT {sql.columns(Contact, "k")} FROM contact_identity AS i JOIN contact AS k ON k.id = i.contact_id
        WHERE i.channel = ? AND i.external_id = ?""")


async def _new_conversation(inbound: InboundMessage, contact: Contact, now: datetime) -> Conversation:
    """A bot conversation opened by this message."""
    return await Conversation.create(
        contact=contact,
        channel=inbound.channel,
        external_key=inbound.key,
        contact_external_id=inbound.contact_id,
        open_key=_open_key(inbound),
        thread=_merged_thread({}, inbound),
        language=detect_language([inbound.text]) if inbound.text.strip() else None,
        last_customer_message_at=now,
        customer_messages=0 if inbound.automated else 1,
        last_activity_at=now,
        last_responder=None if inbound.automated else "customer",
    )


def _open_key(inbound: InboundMessage) -> str:
    return f"{inbound.channel}:{inbound.key}"
