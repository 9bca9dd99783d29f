"""Ingest what a channel parsed from one provider request: each item on its own.

A provider request can carry many independent items (a Meta batch, an email with several
parts). `ingest_all` hands each one to the part of the core that owns its kind — messages
to the gateway, receipts to the delivery record, edits, deletions and replies sent from the
provider's own app to `handoff.changes` — and keeps going when one of them raises, so a
neighbour's failure never costs an item its turn. The caller answers the provider 2xx only
when every item was committed (`Outcome.failed == 0`); a retry is a no-op for the ones that were.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from handoff import changes, gateway, metrics, receipts
from handoff.schema import DeliveryUpdate, InboundMessage, MessageDeletion, MessageEdit, OutsideReply

if TYPE_CHECKING:
    from handoff.channels.base import ParsedItem
    from handoff.runtime import Runtime

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    """What became of one request's items: stored messages (`receipts`), and how many raised."""

    receipts: list[tuple[InboundMessage, gateway.Receipt]] = field(default_factory=list)
    failed: int = 0


async def ingest(rt: Runtime, item: ParsedItem) -> gateway.Receipt | None:
    """Commit one parsed item; the gateway's Receipt for a customer message, else None."""
    if isinstance(item, InboundMessage):
        return await gateway.receive(rt, item)
    if isinstance(item, DeliveryUpdate):
        await receipts.record_delivery(rt, item)
        return None
    if isinstance(item, MessageEdit):
        await changes.apply_edit(rt, item)
        return None
    if isinstance(item, MessageDeletion):
        await changes.apply_deletion(rt, item)
        return None
    if isinstance(item, OutsideReply):
        await changes.record_outside_reply(rt, item)
        return None
    raise TypeError(f"no handler for {type(item).__name__}")


async def ingest_all(rt: Runtime, channel: str, items: list[ParsedItem]) -> Outcome:
    """Commit every item in order; one that raises is logged and counted, and the rest go on."""
    outcome = Outcome()
    for item in items:
        try:
            receipt = await ingest(rt, item)
        except Exception:
            log.exception("%s: could not store %s %s", channel, type(item).__name__,
                          getattr(item, "provider_id", "?"))
            metrics.WEBHOOK_ITEMS_FAILED.labels(channel).inc()
            outcome.failed += 1
            continue
        if receipt is not None and isinstance(item, InboundMessage):
            outcome.receipts.append((item, receipt))
    return outcome
