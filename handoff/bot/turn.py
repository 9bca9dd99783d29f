"""One bot turn: read the conversation, ask the bot (outside any transaction), and write
its reply only if the conversation still belongs to the bot under the same version.

A reply generated while a takeover commits is dropped here (the fence), and the outbox
checks the version once more just before sending. Each turn first claims the conversation in
the database (`claim`), so that with several instances one turn at a time answers it.

Messages the customer unsent are left out of the history (`history.spoken`). When all the
customer said since the last answer is shared content (a story mention, a shared post or reel:
`text/uri-list` attachments, see `channels.meta`), the bot says nothing: it is not a question, a
"could you rephrase?" would be noise and would count as a miss towards escalation; the desk
shows it, and the bot answers with everything once the customer writes words.

On a channel that caps bot replies (`CapsBotReplies`: email, where an autoresponder that marks
nothing as automated could answer every reply), a turn past the cap — that many bot replies to
the conversation's contact address in the last hour, over all its conversations — writes no
reply: it records a `bot_replies_capped` event on the timeline (the desk shows it) and marks the
conversation answered-for-now (`last_responder` "capped"), so the sweep leaves it; the next
message from that address tries again.
"""

from __future__ import annotations

import functools
import logging
from datetime import timedelta
from typing import TYPE_CHECKING


from handoff import metrics, sql
from handoff.bot import claim
from handoff.bot.base import BotReply, Turn
from handoff.bot.history import load_turns_and_conversation, spoken
from handoff.bot.intent import wants_human
from handoff.channels.base import CapsBotReplies, ShowsTyping, supports
from handoff.models import BOT_ANSWERS_SQL, Conversation, Message, Ticket, bot_answers, utcnow
from handoff.outbox import address_of
from handoff.states import ConversationState
from handoff.timeline import Pending, add_event, add_notice, add_outgoing, log_events, publish, transaction
from handoff.transitions import escalate, team_absence

if TYPE_CHECKING:
    from handoff.runtime import Runtime

log = logging.getLogger(__name__)

HISTORY_TURNS = 30
CAP_WINDOW = timedelta(hours=1)
# What channels give shared content (links, not files): RFC 2483's list of URIs.
SHARE_CONTENT_TYPE = "text/uri-list"


async def run_bot_turn(rt: Runtime, conversation_id: int, claimed: claim.Holder | None = None) -> str:
    """Answer the customer's latest message if the bot still owns the conversation.

    The turn is claimed in the database (`claim.held`; `claimed`: already, by the transaction that
    stored the message): while one instance's turn holds the conversation, any other turn returns
    "busy", and the holder, once done, answers what the customer wrote meanwhile in a further
    turn. Returns what the last turn did: "replied", "escalated", "fenced", "superseded",
    "skipped", "capped", "busy" or "lost" (the claim lapsed and another turn took it: that one
    answers). A turn stopped while it waits to begin (for this instance's previous turn of the
    conversation) frees the claim it was given; one cancelled before it ran at all leaves it to
    lapse (`claim.CLAIM_TTL`), and the sweep answers then.
    """
    try:
        async with rt.turn_lock(conversation_id):
            while True:
                async with claim.held(conversation_id, rt.commits, claimed) as holder:
                    claimed = None
                    if holder is None:
                        return "busy"
                    outcome, seen = await _turn(rt, conversation_id, holder)
                # A message that came while we held the claim had its own turn refused ("busy"):
                # this turn answers it, once the claim is free for any instance to take. A reply
                # committed with the claim's release answered every message counted before it, and
                # any later one's own turn finds the claim free: nothing is left to look for.
                if holder.released or not await claim.unanswered_after(conversation_id, seen):
                    return outcome
    finally:
        if claimed is not None:  # stopped before the turn began: free the conversation now
            await claim.release(conversation_id, claimed)


async def _turn(rt: Runtime, conversation_id: int, holder: claim.Holder) -> tuple[str, int | None]:
    """One claimed turn; returns its outcome and the customer message count it read."""
    conversation, history = await load_turns_and_conversation(conversation_id, HISTORY_TURNS, holder.conversation)
    if conversation is None or not conversation.bot_answers:
        return "skipped", None
    seen = conversation.customer_messages
    return await _answer(rt, conversation, history, holder), seen


async def _answer(rt: Runtime, conversation: Conversation, history: list[Turn], holder: claim.Holder) -> str:
    history = spoken(history)
    if not history or history[-1].author != "customer":
        return "skipped"
    if await _only_shares(conversation.id, history):
        return "skipped"
    if await _capped(rt, conversation):
        return "capped"
    version = conversation.version
    language = conversation.language or "en"
    if wants_human(history[-1].text):
        reply = BotReply(escalate=True, reason="the customer asked for a person")
    else:
        reply = await _ask(rt, conversation, history, language)
    if (reply.escalate or not (reply.text or "").strip()) and conversation.state == ConversationState.HUMAN:
        # Helping while the conversation waits for the team: it is in the queue already; say so again.
        notice = await team_absence(rt, conversation.language) or ("waiting", {})
        return await write_bot_reply(rt, conversation.id, version, "", conversation=conversation, notice=notice,
                                     answers_through=conversation.customer_messages, holder=holder)
    if reply.escalate or not (reply.text or "").strip():
        reason = reply.reason or "the assistant had no answer"
        ticket = await escalate(rt, conversation.id, reason, expected_version=version)
        return "escalated" if ticket is not None else "fenced"
    return await write_bot_reply(rt, conversation.id, version, reply.text or "", conversation=conversation,
                                 answers_through=conversation.customer_messages, holder=holder)


async def _only_shares(conversation_id: int, history: list[Turn]) -> bool:
    """True when every customer message since the bot's or an agent's last turn is shared content."""
    waiting = 0
    while waiting < len(history) and history[-1 - waiting].author == "customer":
        waiting += 1
    # Shared content is described as "[story mention] <url>" lines: only then is a query needed.
    if not all(turn.text.startswith("[") for turn in history[-waiting:]):
        return False
    latest = await Message.filter(conversation_id=conversation_id, direction="incoming", deleted_at=None,
                                  ).exclude(text="").order_by("-id").limit(waiting).values_list("attachments", flat=True)
    return len(latest) == waiting and all(
        attachments and all(a.get("content_type") == SHARE_CONTENT_TYPE for a in attachments)
        for attachments in latest)


async def _capped(rt: Runtime, conversation: Conversation) -> bool:
    """True (and the cap recorded on the timeline) when the channel's hourly cap of bot replies to
    this contact address is reached."""
    channel = rt.channels.get(conversation.channel)
    if not supports(channel, CapsBotReplies) or channel.bot_replies_per_hour <= 0:  # type: ignore[attr-defined]
        return False
    since = utcnow() - CAP_WINDOW
    sent = await Message.filter(
        channel=conversation.channel, direction="outgoing", author_kind="bot", created_at__gte=since,
        conversation__contact_external_id=conversation.contact_external_id).count()
    if sent < channel.bot_replies_per_hour:
        return False
    pending = Pending()
    async with transaction(pending):
        if not await Conversation.filter(id=conversation.id, version=conversation.version,
                                         last_responder="customer").update(last_responder="capped"):
            return True  # another change came first; nothing to record
        await add_event(pending, conversation, "bot_replies_capped", limit=channel.bot_replies_per_hour,
                        window="1h", address=conversation.contact_external_id)
    await publish(rt, pending)
    metrics.BOT_REPLIES_CAPPED.inc()
    log.warning("bot: %d replies to %s in the last hour on %s: not answering conversation %s",
                sent, conversation.contact_external_id, conversation.channel, conversation.id)
    return True


async def _ask(rt: Runtime, conversation: Conversation, history: list, language: str) -> BotReply:
    channel = rt.channels.get(conversation.channel)
    if supports(channel, ShowsTyping):
        rt.spawn(_typing(channel, conversation), name=f"typing-{conversation.id}")
    try:
        return await rt.bot.reply(history, language)
    except Exception as exc:  # the customer is never left without an answer
        log.exception("bot failed on conversation %s", conversation.id)
        return BotReply(escalate=True, reason=f"assistant unavailable: {type(exc).__name__}")


async def _typing(channel: ShowsTyping, conversation: Conversation) -> None:
    try:
        await channel.typing(address_of(conversation), True)
    except Exception:
        log.debug("typing indicator failed", exc_info=True)


@functools.cache
def _replied(counted: bool, claimed: bool) -> sql.Statement:
    """The fenced write that marks the conversation answered by the bot (`write_bot_reply`): at the
    version the reply was generated under, the customer message count it answered (`counted`),
    and the turn's claim (`claimed`), which it releases."""
    return sql.Statement(f"""
        UPDATE conversation SET last_responder = 'bot', responded_by = 'bot', responded_by_agent_id = NULL,
            last_activity_at = ?{", bot_turn_holder = NULL, bot_turn_until = NULL" if claimed else ""}
        WHERE id = ? AND version = ?{" AND customer_messages = ?" if counted else ""}
            {" AND bot_turn_holder = ?" if claimed else ""} AND {BOT_ANSWERS_SQL}""")


async def write_bot_reply(rt: Runtime, conversation_id: int, version: int, text: str, *,
                          conversation: Conversation | None = None, answers_through: int | None = None,
                          holder: claim.Holder | None = None, notice: tuple[str, dict[str, str]] | None = None) -> str:
    """Write the bot's reply, fenced by the conversation version it was generated under.

    With `answers_through` (the conversation's `customer_messages` the reply was generated
    from), a reply the customer has written past is dropped as "superseded".
    `conversation`, when the caller holds it, saves reading it again: only its id, channel,
    language and state are used, none of which can change under the fenced version. With `holder`
    (the turn's claim), a turn whose claim another turn has taken writes nothing and returns
    "lost"; a reply written releases the claim in the same statement (`holder.released`). With
    `notice` (`(name, params)`), that customer notice is the answer instead of `text`. While the
    conversation waits for its team and the bot helps meanwhile (`Conversation.bot_while_waiting`),
    the answer goes on the open ticket, so the desk shows what the bot said.
    """
    if conversation is None:
        conversation = await Conversation.get(id=conversation_id)
    known: Conversation = conversation
    fence = [p for p in (answers_through, holder and str(holder)) if p is not None]

    async def write() -> tuple[str, Pending]:
        """The reply's unit of the group commit (it may run twice: it decides on what it reads)."""
        pending = Pending()
        statement = _replied(answers_through is not None, holder is not None)
        if await sql.execute(statement, utcnow(), conversation_id, version, *fence):
            ticket = await Ticket.get_or_none(open_key=conversation_id) if known.state == ConversationState.HUMAN else None
            if notice is not None:
                await add_notice(pending, known, notice[0], ticket=ticket, **notice[1])
            else:
                await add_outgoing(pending, known, "bot", text, ticket=ticket, epoch=version)
            outcome = "replied"
        elif holder is not None and not await Conversation.filter(id=conversation_id, bot_turn_holder=holder).exists():
            return "lost", pending
        elif fence and await Conversation.filter(bot_answers(), id=conversation_id, version=version).exists():
            return "superseded", pending  # only newer customer words: their own turn answers them all
        else:
            await add_event(pending, known, "bot_reply_dropped", reason="the conversation changed owner", version=version)
            outcome = "fenced"
        await log_events(pending)
        return outcome, pending

    # In the group commit: concurrent replies (and the messages and deliveries recorded with them)
    # share one transaction and its commit.
    outcome, pending = await rt.commits.run(write)
    if outcome == "lost":
        log.warning("bot turn on conversation %s lost its claim: its reply is dropped", conversation_id)
    if outcome in ("lost", "superseded"):
        return outcome
    if holder is not None and outcome == "replied":
        holder.released = True
    await publish(rt, pending)
    if outcome == "fenced":
        metrics.BOT_REPLIES_FENCED.inc()
    return outcome
