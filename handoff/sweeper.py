"""Housekeeping loops: end bot conversations left inactive, remove uploads never attached to
a message, apply or expire delivery receipts kept for provider ids no message held yet, and
every few seconds answer customer messages whose bot turn failed or was interrupted; and
drop desk streams whose instance died (agents go offline) and route waiting tickets to agents
who have room."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from handoff import eventlog, presence, receipts, transitions
from handoff.bot import claim
from handoff.bot.turn import run_bot_turn
from handoff.models import Conversation, bot_answers, utcnow
from handoff.states import ConversationState

if TYPE_CHECKING:
    from handoff.runtime import Runtime

log = logging.getLogger(__name__)
RECOVERY_WINDOW = timedelta(hours=1)
MEDIA_SWEEP_INTERVAL = 3600.0
RECEIPT_SWEEP_INTERVAL = 600.0
PRESENCE_SWEEP_INTERVAL = presence.CONNECTION_TTL / 3
LOG_SWEEP_INTERVAL = 600.0


async def end_inactive(rt: Runtime) -> int:
    """End bot conversations idle longer than the inactivity timeout; returns how many.

    Conversations with a human (an open ticket) are left to their agent: a ticket is
    never closed behind an agent's back.
    """
    cutoff = utcnow() - timedelta(seconds=rt.settings.inactivity_timeout)
    ended = 0
    for conversation in await Conversation.filter(state=ConversationState.BOT, last_activity_at__lt=cutoff).limit(500):
        ended += await transitions.end_inactive(rt, conversation)
    return ended


async def answer_unanswered(rt: Runtime, grace: float | None = None) -> int:
    """Spawn a claimed bot turn for each bot conversation whose customer's latest message,
    sent within `RECOVERY_WINDOW` and more than `grace` seconds ago (default `bot_sweep_interval`:
    the time left to the message's own turn), has no answer and no live claim; returns how many.

    Any instance may run it at any time: a turn whose claim another instance holds does nothing.
    It answers what a failed turn (a database outage, an instance that died mid-turn) left.
    """
    now = utcnow()
    wait = timedelta(seconds=rt.settings.bot_sweep_interval if grace is None else grace)
    rows = await Conversation.filter(claim.free(), bot_answers(), last_responder="customer",
                                     last_customer_message_at__gte=now - RECOVERY_WINDOW,
                                     last_customer_message_at__lte=now - wait).limit(1000).values_list("id", flat=True)
    for conversation_id in rows:
        rt.spawn(run_bot_turn(rt, conversation_id), name=f"bot-turn-{conversation_id}")
    return len(rows)


async def answer_forever(rt: Runtime) -> None:
    """Run `answer_unanswered` every `bot_sweep_interval` seconds."""
    while True:
        await asyncio.sleep(rt.settings.bot_sweep_interval)
        try:
            await answer_unanswered(rt)
        except Exception:
            log.exception("unanswered messages sweep failed")


async def sweep_receipts(rt: Runtime) -> tuple[int, int]:
    """Apply kept delivery receipts whose message now holds their id, then delete those older
    than `receipts.PENDING_RECEIPT_TTL`; returns (applied, expired)."""
    return await receipts.apply_known(rt), await receipts.expire()


async def sweep_forever(rt: Runtime) -> None:
    """Run `end_inactive` periodically, the kept receipts' sweep and the live-event log's prune
    (events older than `live_event_retention`) every ten minutes, and the media store's sweep of
    abandoned uploads hourly."""
    interval = max(1.0, min(60.0, rt.settings.inactivity_timeout / 4))
    loop = asyncio.get_running_loop()
    next_media_sweep = next_receipt_sweep = next_log_sweep = loop.time()
    while True:
        await asyncio.sleep(interval)
        try:
            await end_inactive(rt)
        except Exception:
            log.exception("inactivity sweep failed")
        if loop.time() >= next_log_sweep:
            next_log_sweep = loop.time() + LOG_SWEEP_INTERVAL
            try:
                await eventlog.prune(rt.settings.live_event_retention)
            except Exception:
                log.exception("live-event log prune failed")
        if loop.time() >= next_receipt_sweep:
            next_receipt_sweep = loop.time() + RECEIPT_SWEEP_INTERVAL
            try:
                await sweep_receipts(rt)
            except Exception:
                log.exception("receipt sweep failed")
        if loop.time() >= next_media_sweep:
            next_media_sweep = loop.time() + MEDIA_SWEEP_INTERVAL
            try:
                removed = await asyncio.to_thread(rt.media.sweep)
            except Exception:
                log.exception("media sweep failed")
            else:
                if removed:
                    log.info("removed %d uploads that were never attached to a message", removed)


async def presence_forever(rt: Runtime) -> None:
    """Every `PRESENCE_SWEEP_INTERVAL` seconds: expire dead desk streams (`presence.sweep`), then
    offer the tickets waiting in Unassigned to online agents with room (`transitions.route_waiting`:
    an agent whose ticket closed has room again)."""
    while True:
        await asyncio.sleep(PRESENCE_SWEEP_INTERVAL)
        try:
            await presence.sweep(rt.hub)
            await transitions.route_waiting(rt)
        except Exception:
            log.exception("presence sweep failed")
