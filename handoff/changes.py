"""Changes to a conversation that arrive after the fact: a customer's edit or unsend of a message,
and a reply the business sent from outside handoff (the provider's own app).

Each function takes what a channel parsed (`handoff.schema.MessageEdit`, `MessageDeletion`,
`OutsideReply`), commits it in one transaction with a timeline `Event` (`message.edited`,
`message.deleted`, `outside_reply`), then publishes live events for the desk. A provider's
retry is a no-op, and so is a change to a message handoff never stored: it is logged and ignored
(there is nothing to edit or erase; Meta sends a message's own notification before its changes).
Each returns True when it changed something.

Meta's platform policy asks apps to honour deletions: an unsent message keeps its row (the
timeline stays in order) with its text, attachments and earlier revisions erased.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q

from handoff import transitions
from handoff.events import EventKind, iso, ticket_json
from handoff.media import attachment_json
from handoff.models import Conversation, Message, Ticket, utcnow
from handoff.schema import MessageDeletion, MessageEdit, OutsideReply
from handoff.states import ConversationState
from handoff.timeline import Pending, add_event, publish, transaction
from handoff.transitions import escalate, write_summary

if TYPE_CHECKING:
    from handoff.runtime import Runtime

log = logging.getLogger(__name__)

EDIT_ATTEMPTS = 3
# An echo without a decisive app id whose text is part of a message handoff sent this recently is
# taken for ours: Meta can post the echo before the send call that returned its id has finished,
# and the later parts of a split message are never recorded by id.
OWN_ECHO_WINDOW = timedelta(minutes=15)
OWN_ECHO_LOOKBACK = 20
_APPS = {"instagram": "the Instagram app", "messenger": "Meta Business Suite or another app"}


async def apply_edit(rt: Runtime, edit: MessageEdit) -> bool:
    """Replace a stored message's text with the customer's edit, keeping the earlier text.

    The replaced text goes to `Message.revisions` as `{"text", "replaced_at"}` (ISO 8601 UTC) and
    `edited_at` is set. An edit whose text the message already has, or had before, is a replay and
    changes nothing (so is an edit of an unsent message). Compare-and-set on the text: two
    concurrent edits never lose one another's revision.
    """
    for _ in range(EDIT_ATTEMPTS):
        message = await _message(edit.channel, edit.provider_id)
        if message is None or message.deleted_at is not None:
            return False
        seen = {message.text, *(r.get("text") for r in message.revisions or [])}
        if edit.text in seen:
            return False
        now = utcnow()
        revisions = [*(message.revisions or []), {"text": message.text, "replaced_at": iso(now)}]
        pending = Pending()
        async with transaction(pending):
            changed = await Message.filter(id=message.id, text=message.text, deleted_at=None).update(
                text=edit.text, edited_at=now, revisions=revisions)
            if changed:
                await add_event(pending, message.conversation, "message.edited", message_id=message.id)
        if changed:
            pending.add(EventKind.MESSAGE_UPDATED, conversation_id=message.conversation.id, message_id=message.id,
                        edited_at=iso(now))
            await publish(rt, pending)
            return True
    log.warning("%s: message %s kept changing; edit not applied", edit.channel, edit.provider_id)
    return False


async def apply_deletion(rt: Runtime, deletion: MessageDeletion) -> bool:
    """Mark a message unsent: `deleted_at` set, its text, attachments and revisions erased."""
    message = await _message(deletion.channel, deletion.provider_id)
    if message is None or message.deleted_at is not None:
        return False
    now = utcnow()
    pending = Pending()
    async with transaction(pending):
        erased = await Message.filter(id=message.id, deleted_at=None).update(
            text="", attachments=[], revisions=None, deleted_at=now)
        if erased:
            await add_event(pending, message.conversation, "message.deleted", message_id=message.id)
    if not erased:
        return False  # a concurrent replay erased it first
    pending.add(EventKind.MESSAGE_UPDATED, conversation_id=message.conversation.id, message_id=message.id, deleted=True)
    await publish(rt, pending)
    await _forget_in_tickets(rt, message)
    return True


async def _forget_in_tickets(rt: Runtime, message: Message) -> None:
    """Tickets whose subject or summary quote the unsent text lose them and are summarized again
    (the history the summarizer reads no longer holds the message)."""
    words = " ".join(message.text.split())
    if not words:
        return
    quoted = words[:40]
    for ticket in await Ticket.filter(conversation_id=message.conversation.id):
        subject = ticket.subject.removesuffix("...").strip()
        if (subject and words.startswith(subject)) or quoted in ticket.summary:
            await Ticket.filter(id=ticket.id).update(subject="", summary="")
            rt.spawn(write_summary(rt, ticket.id), name=f"summary-{ticket.id}")


async def record_outside_reply(rt: Runtime, reply: OutsideReply) -> bool:
    """Store a reply a person sent from the provider's own app, and hand the conversation to people.

    The reply is an outgoing message by a person (author "agent", no agent, `origin`
    "<channel>_app", delivery status "sent") on the contact's latest conversation; a bot
    conversation is escalated first (`transitions.escalate`), so the bot stops talking over
    them; an assigned ticket becomes "on_customer", as after a desk reply (an unassigned one stays
    in the queue). Nothing is stored for an
    echo of our own: a provider id handoff holds (a message sent whole, or the first part of a
    split one: the id its receipts name), or — when the echo has no app id to tell, or
    META_APP_ID is unset — text handoff sent to this conversation in the last 15 minutes. An
    echo to a contact with no conversation is ignored.
    """
    if await Message.filter(channel=reply.channel, provider_id=reply.provider_id).exists():
        return False
    conversation = await Conversation.filter(channel=reply.channel, contact_external_id=reply.contact_id
                                             ).order_by("-id").first()
    if conversation is None:
        log.info("%s: reply %s from another app to a contact with no conversation", reply.channel, reply.provider_id)
        return False
    decisive = reply.app_id is not None and bool(rt.settings.meta_app_id)
    if not decisive and await _sent_by_us(conversation, reply):
        return False
    if conversation.state == ConversationState.BOT:
        # Before the message, so that a retry after a crash in between still finds it escalated.
        await escalate(rt, conversation.id, f"a person replied from {_APPS.get(reply.channel, 'another app')}",
                       expected_version=conversation.version, notify_customer=False)
    ticket = await Ticket.get_or_none(open_key=conversation.id)
    pending = Pending()
    now = utcnow()
    try:
        async with transaction(pending):
            message = await Message.create(
                conversation=conversation, ticket=ticket, channel=reply.channel, direction="outgoing",
                author_kind="agent", text=reply.text, provider_id=reply.provider_id, delivery_status="sent",
                attachments=[attachment_json(a) for a in reply.attachments], origin=_origin(reply.channel))
            pending.messages.append(message)
            await add_event(pending, conversation, "outside_reply", ticket=ticket, message_id=message.id,
                            app_id=reply.app_id)
            # A person in the provider's own app: which of our agents is not known.
            await Conversation.filter(id=conversation.id).update(last_responder="agent", responded_by="agent",
                                                                responded_by_agent_id=None, last_activity_at=now,
                                                                waiting_since=None)
            answered = ticket is not None and ticket.assignee_id is not None  # type: ignore[attr-defined]
            if answered:  # an unassigned ticket stays in the queue, for an agent to pick up
                await transitions.answered(ticket)  # type: ignore[arg-type]
    except IntegrityError:
        return False  # a concurrent replay stored it first
    if answered:
        pending.add(EventKind.TICKET_UPDATED, ticket=await ticket_json(ticket))  # type: ignore[arg-type]
    await publish(rt, pending)
    return True


async def _message(channel: str, provider_id: str) -> Message | None:
    message = await Message.filter(channel=channel, provider_id=provider_id).select_related("conversation").first()
    if message is None:
        log.info("%s: no stored message %s to change; ignored", channel, provider_id)
    return message




async def _sent_by_us(conversation: Conversation, reply: OutsideReply) -> bool:
    """True when a recent handoff message to this conversation contains the echo's text (or,
    for an echo of files only, carried files)."""
    recent = await Message.filter(
        Q(origin__isnull=True) | Q(origin__not=_origin(reply.channel)),
        conversation_id=conversation.id, direction="outgoing", private=False,
        created_at__gte=utcnow() - OWN_ECHO_WINDOW,
    ).order_by("-id").limit(OWN_ECHO_LOOKBACK)
    text = reply.text.strip()
    if text:
        return any(text in m.text for m in recent)
    return bool(reply.attachments) and any(m.attachments for m in recent)


def _origin(channel: str) -> str:
    """`Message.origin` of a reply written in the provider's own app ("instagram_app")."""
    return f"{channel}_app"[:16]
