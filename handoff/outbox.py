"""Durable delivery of outgoing messages.

Each outgoing message is committed together with an outbox row; this worker claims due
rows (compare-and-set, so several instances can share the table), delivers them through
their channel in order per conversation, and retries failures with exponential backoff
and full jitter, honouring the provider's Retry-After. After the last attempt the message
is marked failed and the failure is recorded on its ticket's timeline. Receipts the provider
sent before its send call answered are applied once the message's provider id is committed
(`handoff.receipts`).

Claims are short (`outbox_claim_seconds`, database time) and one heartbeat per worker renews
all of its live claims in one statement every third of that; a worker that cannot renew a
claim before it lapses stops that conversation's delivery and sends nothing more of it. The
moment the provider answers, the row is marked done and its message sent (with the provider's
id) in one commit, before anything else: a message whose worker dies after that is never sent
again. What remains at-least-once is a death between the provider's acceptance and that commit
(`benchmarks/outbox_window.py` measures it). A row an earlier version of handoff left
`accepted` (the provider had it; the outcome was not recorded yet) is recorded, never re-sent.
`stop()` releases the worker's claims. The claim and the final records are pre-built statements
(`handoff.sql`): they run for every message.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import uuid
from collections import defaultdict
from datetime import timedelta
from typing import TYPE_CHECKING

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from handoff import db, metrics, receipts, sql
from handoff.backoff import full_jitter
from handoff.channels.base import DeliveryError, NotDelivered, with_file_links
from handoff.events import KIND_OF_AUTHOR, EventKind
from handoff.models import Agent, Conversation, Message, Outbox, utcnow
from handoff.notices import render, sends_notice
from handoff.schema import Address, Attachment, OutboundMessage
from handoff.timeline import Pending, log_events, publish, record_failure

if TYPE_CHECKING:
    from handoff.runtime import Runtime

log = logging.getLogger(__name__)

SEND_TIMEOUT = 60.0
MIN_POLL_GAP = 0.05  # seconds between polls asked for by wake() (the timed poll aside)
CLAIMED = ("sending", "accepted")  # the statuses a claim holds a row in


@functools.cache
def _claim_statement(expired: bool, fenced: bool) -> sql.Statement:
    """The claim's compare-and-set (`OutboxWorker._compare_and_set`): the row as it was polled,
    with no earlier row of its conversation pending or being sent; taking over a claim only once
    it has `expired`; a bot message only while its conversation is at the version it was written
    under (`fenced`)."""
    return sql.Statement(f"""
        UPDATE outbox SET status = ?, claimed_by = ?, claimed_until = {{clock}}
        WHERE id = ? AND status = ? AND attempts = ?
            AND NOT EXISTS (SELECT 1 FROM outbox AS earlier WHERE earlier.conversation_id = ?
                            AND earlier.status IN ('pending', 'sending') AND earlier.id < ?)
            {"AND claimed_until < {clock}" if expired else ""}
            {"AND EXISTS (SELECT 1 FROM conversation WHERE id = ? AND version = ?)" if fenced else ""}""")


# A final row and its message's delivery state (`OutboxWorker._commit_final`); [with the text sent].
_FINAL_MESSAGE = {with_text: sql.Statement(f"""
    UPDATE message SET delivery_status = ?, delivery_error = ?, provider_id = ?{", text = ?" if with_text else ""}
    WHERE id = ?""") for with_text in (False, True)}
_FINAL_ROW = sql.Statement("UPDATE outbox SET status = ?, attempts = ?, last_error = ? WHERE id = ?")


class ClaimLost(Exception):
    """This worker's claim on a row lapsed or was taken: it must send nothing more of it."""


def address_of(conversation: Conversation) -> Address:
    """Where a conversation's messages go on its channel."""
    return Address(
        channel=conversation.channel,
        contact_id=conversation.contact_external_id,
        conversation_key=conversation.external_key,
        thread=dict(conversation.thread or {}),
    )


class OutboxWorker:
    """Claims due outbox rows and delivers them; `offer()` hands it the rows this instance just
    committed, `wake()` makes it poll at once.

    Each conversation's rows are delivered in order by one task at a time, and the loop does
    not wait for these tasks: a slow provider holds back only its own conversation. At most
    `concurrency` conversations are delivered at once; while one is, polls leave its rows out.
    Offered rows are claimed like polled ones (the same compare-and-set, fence and order), but
    without a poll: the poll every `poll_interval` seconds is what finds other instances'
    rows, retries that came due and lapsed claims.
    """

    def __init__(self, rt: Runtime, poll_interval: float = 2.0, batch: int = 100, concurrency: int = 16,
                 claim_seconds: float | None = None) -> None:
        self.rt = rt
        self.poll_interval = poll_interval
        self.batch = batch
        self.concurrency = concurrency
        self.claim_seconds = claim_seconds or rt.settings.outbox_claim_seconds
        self.holder = uuid.uuid4().hex  # `claimed_by` on the rows this worker claims
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        # Row id -> (its conversation, the loop time its claim surely lasts until): measured from
        # before the statement that set or renewed it, so never later than the database's expiry.
        self._claims: dict[int, tuple[int, float]] = {}
        self._recording: set[asyncio.Task[None]] = set()  # acceptances being committed (shielded)
        self._running: dict[int, asyncio.Task[bool]] = {}  # conversation id -> its delivery
        self._skipped: set[int] = set()  # running conversations a poll left out: look again when done
        self._backlog = False  # the last poll found more conversations than free slots
        # Conversation id -> rows committed here and offered, in id order, not started yet.
        self._offered: dict[int, list[Outbox]] = {}
        self._poll_wanted = False

    def wake(self) -> None:
        """Look for due rows now instead of at the next poll."""
        self._poll_wanted = True
        self._wake.set()

    def offer(self, rows: list[Outbox]) -> None:
        """Deliver these just-committed rows without polling for them. Each must carry its
        `message`, and the message its whole `conversation` (as `timeline.add_outgoing` leaves them)."""
        for row in rows:
            self._offered.setdefault(row.conversation_id, []).append(row)
        self._wake.set()

    def start(self) -> None:
        """Run the delivery loop in the background."""
        self._task = asyncio.create_task(self._loop(), name="outbox")

    async def stop(self, grace: float = 0.0) -> None:
        """Stop polling, give the sends in flight up to `grace` seconds to finish, cancel the rest
        and release their claims (`release`): another worker takes them over at once. A send
        cancelled in flight may have reached the provider: it is sent again (at-least-once)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        running = list(self._running.values())
        if running and grace > 0:
            await asyncio.wait(running, timeout=grace)
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        await self._stop_heartbeat()
        await asyncio.gather(*self._recording, return_exceptions=True)  # acceptances first, then release
        await self.release()

    async def release(self) -> int:
        """Expire every claim this worker holds now, so that another worker takes the rows at once;
        returns how many. A database that cannot be reached leaves them to expire on their own."""
        self._claims.clear()
        try:
            return await Outbox.filter(claimed_by=self.holder, status__in=CLAIMED).update(
                claimed_by=None, claimed_until=db.clock(-1))
        except Exception:
            log.warning("outbox claims not released; they expire within %ss", self.claim_seconds, exc_info=True)
            return 0

    async def _stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            await asyncio.gather(self._heartbeat, return_exceptions=True)
            self._heartbeat = None

    def _holds(self, row_id: int) -> bool:
        """True while this worker's claim on the row surely lasts (a margin of a sixth of it)."""
        claim = self._claims.get(row_id)
        return claim is not None and asyncio.get_running_loop().time() < claim[1] - self.claim_seconds / 6

    async def _beat(self) -> None:
        """Renew all live claims in one statement every third of a claim; stop the delivery of any
        claim that was lost or could not be renewed in time."""
        interval = self.claim_seconds / 3
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(interval)
            ids = list(self._claims)
            if ids:
                started = loop.time()
                try:
                    async with asyncio.timeout(interval):
                        renewed = await Outbox.filter(id__in=ids, claimed_by=self.holder, status__in=CLAIMED).update(
                            claimed_until=db.clock(self.claim_seconds))
                        held = set(ids) if renewed == len(ids) else set(await Outbox.filter(
                            id__in=ids, claimed_by=self.holder, status__in=CLAIMED).values_list("id", flat=True))
                except Exception:  # the database is slow or gone: the claims run on to their end
                    log.warning("outbox heartbeat failed", exc_info=True)
                else:
                    for row_id in ids:
                        if row_id in self._claims:
                            conversation_id = self._claims[row_id][0]
                            self._claims[row_id] = (conversation_id, started + self.claim_seconds if row_id in held else 0.0)
            for row_id in [row_id for row_id in self._claims if not self._holds(row_id)]:
                conversation_id = self._claims.pop(row_id)[0]
                task = self._running.get(conversation_id)
                if task is not None:
                    log.warning("outbox claim on row %s lost: conversation %s stops here", row_id, conversation_id)
                    task.cancel()

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_poll = last_poll = loop.time()
        while True:
            self._wake.clear()
            self._start_offered()
            more = False
            # A wanted poll waits MIN_POLL_GAP after the last one: under load, deliveries end
            # faster than polls return, and one poll then serves all of them. It waits for a free
            # slot too: with none, it could start nothing (the end of a delivery wakes the loop).
            wanted = self._poll_wanted and loop.time() >= last_poll + MIN_POLL_GAP and len(self._running) < self.concurrency
            if loop.time() >= next_poll or wanted:
                self._poll_wanted = False
                last_poll = loop.time()
                next_poll = last_poll + self.poll_interval
                try:
                    _, more = await self._start_due()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("outbox round failed")
            free = len(self._running) < self.concurrency
            if more and free:
                self._poll_wanted = True
            until = min(next_poll, last_poll + MIN_POLL_GAP) if self._poll_wanted and free else next_poll
            try:
                async with asyncio.timeout(max(0.0, until - loop.time())):
                    await self._wake.wait()
            except TimeoutError:
                pass

    async def run_once(self) -> bool:
        """Deliver what is offered and due now and wait for those deliveries; True when more may be waiting."""
        offered = self._start_offered()
        started, more = await self._start_due()
        await asyncio.gather(*offered, *started, return_exceptions=True)
        if self._task is None:  # not started: no heartbeat outlives the round
            await self._stop_heartbeat()
        return more or bool(self._offered)

    def _start_offered(self) -> list[asyncio.Task[bool]]:
        """Start a delivery for each offered conversation not being delivered here, while slots are
        free (the end of a running one wakes the loop for its own offered rows)."""
        started = []
        for conversation_id in list(self._offered):
            if len(self._running) >= self.concurrency:
                break
            if conversation_id not in self._running:
                started.append(self._spawn(conversation_id, self._offered.pop(conversation_id)))
        return started

    async def _start_due(self) -> tuple[list[asyncio.Task[bool]], bool]:
        """Poll due rows of the conversations not offered here and start a delivery per
        conversation not being delivered here while slots are free; True with them when more may
        be waiting. A conversation being delivered that has due rows the poll found is marked
        to be polled again when its delivery ends (`_skipped`); only those: marking every running
        conversation made each poll under load start the next one as they ended."""
        # next_attempt_at is written from the instances' clocks (a skew only shifts a retry);
        # claims expire by the database's.
        due = Q(status="pending", next_attempt_at__lte=utcnow()) | Q(status__in=CLAIMED, claimed_until__lt=db.clock())
        query = Outbox.filter(due)
        if self._offered:  # their rows start from the offer
            query = query.filter(conversation_id__not_in=list(self._offered))
        rows = await query.select_related("message__conversation").order_by("id").limit(self.batch)
        by_conversation: dict[int, list[Outbox]] = defaultdict(list)
        for row in rows:
            if row.conversation_id in self._running:  # behind the delivery running now
                self._skipped.add(row.conversation_id)
            elif row.conversation_id not in self._offered:  # since the poll
                by_conversation[row.conversation_id].append(row)
        started = []
        for conversation_id, group in by_conversation.items():
            if len(self._running) >= self.concurrency:
                break
            started.append(self._spawn(conversation_id, group))
        self._backlog = len(started) < len(by_conversation)
        return started, self._backlog or len(rows) == self.batch

    def _spawn(self, conversation_id: int, rows: list[Outbox]) -> asyncio.Task[bool]:
        task = asyncio.create_task(self._deliver_in_order(rows), name=f"outbox-{conversation_id}")
        self._running[conversation_id] = task
        task.add_done_callback(functools.partial(self._done, conversation_id))
        return task

    def _done(self, conversation_id: int, task: asyncio.Task[bool]) -> None:
        """Free the slot; poll again at once when a poll left rows out while this one ran, and
        start what was offered meanwhile."""
        del self._running[conversation_id]
        skipped = conversation_id in self._skipped
        self._skipped.discard(conversation_id)
        if not task.cancelled() and task.result() and (skipped or self._backlog):
            self.wake()
        elif self._offered or self._poll_wanted:  # a poll put off for want of a free slot
            self._wake.set()

    async def _deliver_in_order(self, rows: list[Outbox]) -> bool:
        """Deliver one conversation's rows in order, up to a refused claim or a retry; True
        when it took at least one row (a refused claim alone must not start another poll)."""
        took = False
        try:
            for row in rows:
                if not await self._claim(row):
                    break
                took = True
                try:
                    if not await self._deliver(row):
                        break
                finally:
                    self._claims.pop(row.id, None)
        except ClaimLost:
            log.warning("outbox claim lost: conversation %s left to the worker that holds it", rows[0].conversation_id)
        except Exception:
            log.exception("delivering to conversation %s failed", rows[0].conversation_id)
        return took

    async def _claim(self, row: Outbox) -> bool:
        """Take a polled row for this worker; False when another has it or it must wait.

        A bot message is claimed only while its conversation is still at the version it was
        written under, in the same statement; when that fence refuses, the row is claimed
        without it and its conversation read again, so that `_deliver` cancels it.
        """
        bot = row.message.author_kind == "bot" and row.status != "accepted"  # an accepted one was sent
        if await self._compare_and_set(row, fenced=bot):
            return True
        if not bot or not await self._compare_and_set(row, fenced=False):
            return False
        row.message.conversation = await Conversation.get(id=row.conversation_id)
        return True

    async def _compare_and_set(self, row: Outbox, fenced: bool) -> bool:
        """Claim the row as it was polled, unless an earlier message of its conversation is
        still pending or being sent (waiting for a retry: the order holds)."""
        expired = row.status in CLAIMED  # an expired claim: only one worker may take it over
        params: list[object] = ["accepted" if row.status == "accepted" else "sending", self.holder,
                                sql.Seconds(self.claim_seconds), row.id, row.status, row.attempts,
                                row.conversation_id, row.id]
        if expired:
            params.append(sql.Seconds(0))
        if fenced:
            params += [row.conversation_id, row.message.epoch]
        started = asyncio.get_running_loop().time()
        async def claim() -> int:  # a unit of the group commit: it shares concurrent writes' commit
            return await sql.execute(_claim_statement(expired, fenced), *params)

        if not await self.rt.commits.run(claim):
            return False
        self._claims[row.id] = (row.conversation_id, started + self.claim_seconds)
        if self._heartbeat is None:
            self._heartbeat = asyncio.create_task(self._beat(), name="outbox-heartbeat")
        return True

    async def _deliver(self, row: Outbox) -> bool:
        """Send one row; True when the conversation's next message may follow."""
        message = row.message
        conversation = message.conversation
        if row.status == "accepted":  # the provider took it before its worker died: record only
            await self._finish(row, message, "sent", None, row.first_part_id)
            metrics.MESSAGES_OUT.labels(row.channel, "sent").inc()
            return True
        if message.author_kind == "bot" and message.epoch != conversation.version:
            await self._finish(row, message, "cancelled", "the conversation was taken over before delivery")
            metrics.BOT_REPLIES_FENCED.inc()
            return True
        channel = self.rt.channels.get(row.channel)
        if channel is None:
            await self._fail(row, message, f"the {row.channel} channel is not configured")
            return True
        style = channel.capabilities.notice_style
        if message.notice and not sends_notice(style, message.notice):
            await self._finish(row, message, "skipped", f"{row.channel} conversations get no such notice")
            return True
        outbound = dataclasses.replace(
            with_file_links(channel.capabilities, await _outbound(message, conversation, style)),
            parts_sent=row.parts_sent, on_part_sent=functools.partial(self._record_part, row.id))
        if not self._holds(row.id):
            raise ClaimLost(row.id)
        try:
            provider_id = await asyncio.wait_for(channel.send(address_of(conversation), outbound), SEND_TIMEOUT)
        except DeliveryError as exc:
            return await self._retry_or_fail(row, message, exc)
        except NotDelivered as exc:
            await self._finish(row, message, "skipped", str(exc))
            return True
        except (asyncio.CancelledError, ClaimLost):
            raise
        except Exception as exc:
            log.exception("sending message %s on %s failed", message.id, row.channel)
            return await self._retry_or_fail(row, message, DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True))
        provider_id = row.first_part_id or provider_id or None
        text = outbound.text if message.notice and outbound.text != message.text else None  # the channel's wording
        # Shielded: a stop that cancels us now must not lose what the provider already holds.
        recording = asyncio.create_task(self._record_sent(row, message, provider_id, text))
        self._recording.add(recording)
        recording.add_done_callback(self._recording.discard)
        pending, provider_id = await asyncio.shield(recording)
        await self._announce(row, pending, provider_id)
        metrics.MESSAGES_OUT.labels(row.channel, "sent").inc()
        return True

    async def _record_sent(self, row: Outbox, message: Message, provider_id: str | None, text: str | None
                           ) -> tuple[Pending, str | None]:
        """Record the message sent (with the provider's id) and the row done, in one commit, the
        first thing after the provider's answer; a database error is retried while this worker's
        claim lasts (after that, another worker may send the message again: the at-least-once
        window). Returns what `_commit_final` returns."""
        delay = 0.05
        while True:
            try:
                # Not fenced by the claim: whoever holds the row now, the provider has the message.
                return await self._commit_final(row, message, "sent", None, provider_id, text)
            except Exception:
                if not self._holds(row.id):
                    raise
                log.warning("recording message %s as sent failed; retrying", row.message_id, exc_info=True)
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)

    async def _record_part(self, outbox_id: int, parts_sent: int, provider_id: str) -> None:
        """Persist how far a split message got, so a retry or a restart resumes after that part;
        ClaimLost when this worker's claim no longer surely holds (the next part is not sent)."""
        first = {"first_part_id": provider_id or None} if parts_sent == 1 else {}
        await Outbox.filter(id=outbox_id).update(parts_sent=parts_sent, **first)
        if not self._holds(outbox_id):
            raise ClaimLost(outbox_id)

    async def _retry_or_fail(self, row: Outbox, message: Message, exc: DeliveryError) -> bool:
        attempts = row.attempts + 1
        reason = str(exc) + (f" (code {exc.code})" if exc.code else "")
        if exc.parts_sent:
            reason += f" after {exc.parts_sent} part(s) of the message were sent"
        if not exc.retryable or attempts >= self.rt.settings.outbox_max_attempts:
            await self._fail(row, message, reason, attempts)
            return True
        settings = self.rt.settings
        delay = full_jitter(attempts, settings.outbox_base_delay, settings.outbox_max_delay)
        if exc.retry_after is not None:
            delay = max(delay, exc.retry_after)
        await Outbox.filter(id=row.id, claimed_by=self.holder, status="sending").update(  # only while ours
            status="pending", attempts=attempts, last_error=reason,
            next_attempt_at=utcnow() + timedelta(seconds=delay), claimed_until=None, claimed_by=None,
        )
        metrics.MESSAGES_OUT.labels(row.channel, "retry").inc()
        return False

    async def _fail(self, row: Outbox, message: Message, reason: str, attempts: int | None = None) -> None:
        async with in_transaction():  # a final outbox row and its message's state commit together
            await Message.filter(id=message.id).update(delivery_status="failed", delivery_error=reason)
            await Outbox.filter(id=row.id).update(status="failed", last_error=reason,
                                                  attempts=attempts if attempts is not None else row.attempts + 1)
        metrics.MESSAGES_OUT.labels(row.channel, "failed").inc()
        metrics.OUTBOX_FAILURES.labels(row.channel).inc()
        await record_failure(self.rt, message, reason)

    async def _finish(self, row: Outbox, message: Message, status: str, error: str | None,
                      provider_id: str | None = None, text: str | None = None) -> None:
        """Record the row's outcome (`_commit_final`), then tell who needs to know (`_announce`)."""
        pending, provider_id = await self._commit_final(row, message, status, error, provider_id, text)
        await self._announce(row, pending, provider_id)

    async def _commit_final(self, row: Outbox, message: Message, status: str, error: str | None,
                            provider_id: str | None = None, text: str | None = None) -> tuple[Pending, str | None]:
        """The row's final status and its message's delivery state (and `text`, the wording the
        channel sent), in one transaction; returns its live events and the provider id kept
        (None when the provider reused an id another message holds: the status alone is kept)."""

        async def final(provider_id: str | None) -> Pending:  # a unit of the group commit
            pending = Pending()
            await sql.execute(_FINAL_MESSAGE[text is not None], status, error, provider_id,
                              *([text] if text is not None else []), message.id)
            await sql.execute(_FINAL_ROW, "done" if status == "sent" else status, row.attempts + 1, error, row.id)
            pending.add(EventKind.MESSAGE_UPDATED, conversation_id=message.conversation_id,  # type: ignore[attr-defined]
                        message_id=message.id, delivery_status=status, delivery_error=error)
            await log_events(pending)
            return pending

        async def commit(provider_id: str | None) -> Pending:
            return await self.rt.commits.run(functools.partial(final, provider_id))

        try:
            return await commit(provider_id or None), provider_id or None
        except IntegrityError:  # the provider reused an id we already hold: keep the status only
            return await commit(None), None

    async def _announce(self, row: Outbox, pending: Pending, provider_id: str | None) -> None:
        """After a final commit: publish its live events and apply the receipts that came first."""
        await publish(self.rt, pending)
        channel = self.rt.channels.get(row.channel)
        if provider_id and channel is not None and channel.capabilities.delivery_receipts:
            # Receipts that arrived before the provider answered (after the commit: see receipts).
            try:
                await receipts.apply_pending(self.rt, row.channel, provider_id)
            except Exception:  # they stay kept; the sweeper applies them
                log.exception("applying early receipts for message %s failed", row.message_id)  # type: ignore[attr-defined]


async def _outbound(message: Message, conversation: Conversation, notice_style: str) -> OutboundMessage:
    text = message.text
    if message.notice:
        text = render(message.notice, conversation.language, notice_style, **message.notice_params)
    agent = await Agent.get_or_none(id=message.agent_id) if message.agent_id else None  # type: ignore[attr-defined]
    last_in = conversation.last_customer_message_at
    return OutboundMessage(
        id=message.id,
        kind=KIND_OF_AUTHOR[message.author_kind],  # type: ignore[arg-type]
        text=text,
        conversation_id=conversation.id,
        author_name=agent.name if agent else None,
        notice=message.notice,
        attachments=tuple(Attachment(**a) for a in message.attachments),
        last_customer_message_at=last_in.timestamp() if last_in else None,
    )
