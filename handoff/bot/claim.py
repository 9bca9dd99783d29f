"""The bot turn's claim on a conversation, kept in the database so that, with any number of
instances, exactly one turn at a time answers a conversation's customer messages.

A claim is the conversation's `bot_turn_holder` (the turn's random hex id) and `bot_turn_until`
(its expiry, database time: `db.clock`, so instances' clocks need not agree). `held()` takes it
with one conditional UPDATE — only when the conversation is the bot's and no live claim exists —
so of racing instances exactly one wins; it renews the claim every `CLAIM_TTL / 3` seconds while
the turn runs and clears it when the turn ends. A turn whose instance dies stops renewing, and
the claim lapses after at most `CLAIM_TTL` seconds. A turn whose claim was taken meanwhile (its
renewals failed until it lapsed) cannot commit its reply: the reply's write is fenced by the
holder (`turn.write_bot_reply`), and clears the claim in the same statement (`Holder.released`),
so a replied turn costs no statement of its own to let the next one in. The claim's statement
commits in a transaction shared with the writes that arrive with it (`handoff.group_commit`); the
turn a customer message starts is claimed in that message's own transaction (`take`, called by
`gateway`), so that the turn begins without a commit of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from tortoise.expressions import Q

from handoff import db, sql
from handoff.models import BOT_ANSWERS_SQL, Conversation, bot_answers

if TYPE_CHECKING:
    from handoff.group_commit import GroupCommit

log = logging.getLogger(__name__)

CLAIM_TTL = 30.0  # seconds


class Holder(str):
    """A claim's id (the conversation's `bot_turn_holder` while it holds). A write that cleared
    the claim in its own transaction sets `released`, and leaving `held()` then writes nothing.
    `conversation` is the conversation's row as the claim's statement left it."""

    released: bool = False
    conversation: Conversation | None = None


# Take the claim and read the conversation in one statement (`handoff.sql`).
_TAKE = sql.Statement(f"""
    UPDATE conversation SET bot_turn_holder = ?, bot_turn_until = {{clock}}
    WHERE id = ? AND (bot_turn_until IS NULL OR bot_turn_until < {{clock}}) AND {BOT_ANSWERS_SQL}
    RETURNING *""")


def free() -> Q:
    """The filter of conversations no live turn claims now (by the database's clock)."""
    return Q(bot_turn_until=None) | Q(bot_turn_until__lt=db.clock())


async def take(conversation_id: int) -> Holder | None:
    """Take the claim in the current transaction (the caller's: a message's receive, so that the
    turn it starts begins claimed); the holder, with the conversation's row as the statement left
    it, or None when another turn holds a live claim or the conversation is not the bot's."""
    holder = Holder(uuid.uuid4().hex)
    rows = await sql.fetch(_TAKE, str(holder), sql.Seconds(CLAIM_TTL), conversation_id, sql.Seconds(0))
    if not rows:
        return None
    holder.conversation = sql.instance(Conversation, rows[0])
    return holder


async def release(conversation_id: int, holder: Holder) -> None:
    """Clear the claim `holder` holds, if it still does (shielded: a turn cancelled at shutdown
    still frees the conversation for another instance)."""
    await asyncio.shield(Conversation.filter(id=conversation_id, bot_turn_holder=holder).update(
        bot_turn_holder=None, bot_turn_until=None))


async def _renew(conversation_id: int, holder: str) -> None:
    while True:
        await asyncio.sleep(CLAIM_TTL / 3)
        try:
            if not await Conversation.filter(id=conversation_id, bot_turn_holder=holder).update(
                    bot_turn_until=db.clock(CLAIM_TTL)):
                log.warning("bot turn claim on conversation %s was taken by another turn", conversation_id)
                return
        except Exception:  # the reply's write is fenced by the holder: a lapsed claim cannot commit
            log.warning("renewing the bot turn claim on conversation %s failed", conversation_id, exc_info=True)


@contextlib.asynccontextmanager
async def held(conversation_id: int, commits: GroupCommit, taken: Holder | None = None) -> AsyncIterator[Holder | None]:
    """Claim the conversation's bot turn for the block, the claim a unit of `commits` (or the
    claim `taken` already, with `take`); yields the holder id to fence the reply's write with, or
    None (holding nothing) when another turn holds a live claim or the conversation is no longer
    the bot's."""
    holder = taken or await commits.run(functools.partial(take, conversation_id))
    if holder is None:
        yield None
        return
    renewer = asyncio.create_task(_renew(conversation_id, holder), name=f"bot-claim-{conversation_id}")
    try:
        yield holder
    finally:
        renewer.cancel()
        if not holder.released:
            await release(conversation_id, holder)


async def unanswered_after(conversation_id: int, seen: int | None) -> bool:
    """True when the bot's conversation has a customer message past the `seen`th
    (`Conversation.customer_messages`; None: any) still unanswered."""
    return await Conversation.filter(bot_answers(), id=conversation_id, last_responder="customer",
                                     customer_messages__gt=seen or 0).exists()
