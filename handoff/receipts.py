"""Delivery receipts: apply a provider's receipt to the message it names, even when it arrives
before the send call that returned the message's id has finished.

Twilio can POST a status callback (`MessageStatus=undelivered`, `ErrorCode=63016`) before its
`POST /Messages.json` answers, and Meta a Messenger `delivery.mids` or an Instagram `read.mid`
before the Send API answers: the outbox has not recorded the provider id yet. Such a receipt
is kept as a `PendingReceipt` row (unique on channel, provider id, state: a provider's retry
is a no-op) and applied when the outbox records the id; the sweeper applies any it finds whose
message is now known, and deletes the ones older than `PENDING_RECEIPT_TTL`.

No receipt is lost when the two meet, with any number of instances, because each side writes
and commits first and reads second (both statements in READ COMMITTED, or SQLite's single
writer):

- the outbox commits the message's provider id, then calls `apply_pending` (reads the rows);
- `record_delivery` commits the pending row, then looks the message up again.

Whichever commit comes second, its reader sees the other's write: if the receipt row was
committed before the outbox read, the outbox applies it; otherwise the outbox's commit came
before the receipt's re-check, which finds the message and applies it. Both may see it, so a
row is claimed by deleting it, in the same transaction as the message's update: exactly one
claimer applies it. A crash between the outbox's commit and its `apply_pending` leaves the row
for the sweeper (`apply_known`).

Delivery states never move backwards (a late `delivered` after `read` is ignored) and a
failure is recorded once; both are compare-and-set updates on the message, so two receipts
applied at once by two instances cannot interleave into an older state.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from prometheus_client import Counter
from tortoise.exceptions import IntegrityError

from handoff import metrics
from handoff.events import EventKind
from handoff.models import Message, PendingReceipt, utcnow
from handoff.schema import DeliveryUpdate
from handoff.timeline import Pending, publish, record_failure, transaction

if TYPE_CHECKING:
    from handoff.runtime import Runtime

log = logging.getLogger(__name__)

PENDING_RECEIPT_TTL = timedelta(days=1)
PROGRESS = ("pending", "queued", "sent", "delivered", "read")
FAILURES = ("failed", "undelivered")
SWEEP_BATCH = 500

RECEIPTS_EXPIRED = Counter("handoff_pending_receipts_expired_total",
                           "Early delivery receipts deleted unapplied: no message took their provider id in time",
                           ["channel"], registry=metrics.REGISTRY)


async def record_delivery(rt: Runtime, update: DeliveryUpdate) -> bool:
    """Apply a provider receipt to the message it names; False when no message holds the id yet
    (the receipt is then kept as a `PendingReceipt` and applied when the outbox records it)."""
    message = await _message(update.channel, update.provider_id)
    if message is None:
        try:
            await PendingReceipt.create(channel=update.channel, provider_id=update.provider_id, state=update.state,
                                        error_code=update.error_code, error=update.error)
        except IntegrityError:
            pass  # the provider's retry of a receipt already kept
        # The outbox may have committed the id after the lookup above but read the pending rows
        # before this insert committed: look again (see the module docstring).
        if await _message(update.channel, update.provider_id) is None:
            return False
        await apply_pending(rt, update.channel, update.provider_id)
        return True
    await _apply(rt, message, update)
    return True


async def apply_pending(rt: Runtime, channel: str, provider_id: str) -> int:
    """Apply the kept receipts for a provider id now held by a message, in state order, and
    delete them; returns how many this call applied (0 when another caller took them)."""
    rows = await PendingReceipt.filter(channel=channel, provider_id=provider_id)
    applied = 0
    for row in sorted(rows, key=_rank):
        message = await _message(channel, provider_id)
        if message is None:
            return applied
        update = DeliveryUpdate(channel=channel, provider_id=provider_id, state=row.state,  # type: ignore[arg-type]
                                error_code=row.error_code, error=row.error)
        if await _apply(rt, message, update, claim=row):
            applied += 1
    return applied


async def apply_known(rt: Runtime) -> int:
    """Apply kept receipts whose message now holds their id (left by a crash between the
    outbox's commit and its `apply_pending`); returns how many were applied. Reads the kept
    rows `SWEEP_BATCH` at a time, one message query per batch."""
    applied = 0
    after = 0
    while True:
        rows = await PendingReceipt.filter(id__gt=after).order_by("id").limit(SWEEP_BATCH).values_list(
            "id", "channel", "provider_id")
        if not rows:
            return applied
        after = rows[-1][0]
        kept = {(channel, provider_id) for _, channel, provider_id in rows}
        held = await Message.filter(provider_id__in={p for _, p in kept}).values_list("channel", "provider_id")
        for channel, provider_id in sorted(kept & set(held)):
            applied += await apply_pending(rt, channel, provider_id)
        if len(rows) < SWEEP_BATCH:
            return applied


async def expire(max_age: timedelta = PENDING_RECEIPT_TTL) -> int:
    """Delete kept receipts older than `max_age`; returns how many (counted by channel in
    `handoff_pending_receipts_expired_total`, and logged)."""
    cutoff = utcnow() - max_age
    removed = 0
    while True:
        stale = await PendingReceipt.filter(created_at__lt=cutoff).order_by("id").limit(SWEEP_BATCH).values_list(
            "id", "channel")
        for receipt_id, channel in stale:
            if await PendingReceipt.filter(id=receipt_id).delete():  # one by one: exact counts with two sweepers
                RECEIPTS_EXPIRED.labels(channel).inc()
                removed += 1
        if len(stale) < SWEEP_BATCH:
            break
    if removed:
        log.warning("deleted %d delivery receipts that no sent message claimed within %s", removed, max_age)
    return removed


async def _message(channel: str, provider_id: str) -> Message | None:
    return await Message.get_or_none(channel=channel, provider_id=provider_id)


def _rank(row: PendingReceipt) -> int:
    """Progress states in order, failures last."""
    return PROGRESS.index(row.state) if row.state in PROGRESS else len(PROGRESS)


def _error(update: DeliveryUpdate) -> str | None:
    if update.state not in FAILURES:
        return None
    return " ".join(filter(None, [update.error_code and f"error {update.error_code}", update.error])) or None


async def _apply(rt: Runtime, message: Message, update: DeliveryUpdate, claim: PendingReceipt | None = None) -> bool:
    """Move the message to the receipt's state unless it is already there or further (claiming
    the kept row in the same transaction); publish it, and record a failure on the timeline.
    False when the claim was taken by another caller."""
    error = _error(update)
    if update.state in PROGRESS:
        not_before = PROGRESS[PROGRESS.index(update.state):]  # receipts arrive out of order
    else:
        not_before = FAILURES  # a failure is recorded once
    pending = Pending()
    async with transaction(pending):
        if claim is not None and not await PendingReceipt.filter(id=claim.id).delete():
            return False
        moved = await Message.filter(id=message.id, delivery_status__not_in=not_before).update(
            delivery_status=update.state, delivery_error=error)
        if moved:
            pending.add(EventKind.MESSAGE_UPDATED, conversation_id=message.conversation_id,  # type: ignore[attr-defined]
                        message_id=message.id, delivery_status=update.state, delivery_error=error)
    if not moved:
        return True
    await publish(rt, pending)
    if error:
        await record_failure(rt, message, error)
    return True
