"""Durable delivery: retries with backoff and Retry-After, visible failure, nothing lost
across a restart, and a slow provider holding back only its own conversation."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from datetime import timedelta

import asyncpg
import pytest

from handoff import db
from handoff import transitions as ops
from handoff.models import Conversation, Event, Message, Outbox, utcnow
from handoff.backoff import full_jitter
from handoff.outbox import OutboxWorker
from handoff.channels.api import sign
from handoff.runtime import RUNTIME
from tests.conftest import API_SECRET, api_body, settle


def test_backoff_is_full_jitter_and_capped():
    rng = random.Random(7)
    delays = [full_jitter(attempt, 1.0, 30.0, rng) for attempt in range(1, 12) for _ in range(50)]
    assert all(0 <= d <= 30.0 for d in delays)
    early = [full_jitter(1, 1.0, 30.0, rng) for _ in range(200)]
    assert max(early) <= 2.0
    assert len({round(d, 3) for d in early}) > 100  # jittered, not a fixed schedule


async def test_retry_after_is_honoured_then_delivered(client, rt, say, callback):
    callback.fail_next = [(429, "0.3"), (503, None)]
    await say("hello", conversation="retry")
    await settle(rt)
    assert [m["text"] for m in callback.for_conversation("retry")] == ["echo: hello"]
    row = await Outbox.get()
    assert row.status == "done" and row.attempts == 3
    message = await Message.get(author_kind="bot")
    assert message.delivery_status == "sent"


async def test_final_failure_is_visible_on_the_ticket(client, rt, say, callback, make_agent):
    agent, auth = await make_agent()
    await say("hello", conversation="fail")
    await settle(rt)
    conversation = await Conversation.get(external_key="fail")
    ticket = await ops.takeover(rt, conversation.id, agent)
    callback.fail_next = [(500, None)] * 10
    response = await client.post(f"/api/v1/tickets/{ticket.id}/messages", json={"text": "are you there?"},
                                 headers=auth)
    assert response.status == 201
    await settle(rt)
    failed = await Message.get(text="are you there?")
    assert failed.delivery_status == "failed"
    assert "HTTP 500" in failed.delivery_error
    events = await Event.filter(kind="delivery_failed", ticket_id=ticket.id)
    assert failed.id in {e.data["message_id"] for e in events}
    assert all("HTTP 500" in e.data["reason"] for e in events)


async def test_client_errors_are_not_retried(client, rt, say, callback):
    callback.fail_next = [(400, None)]
    await say("hello", conversation="c400")
    await settle(rt)
    row = await Outbox.get()
    assert row.status == "failed" and row.attempts == 1
    assert callback.for_conversation("c400") == []


async def test_messages_survive_a_restart(aiohttp_client, app_factory, callback, bot):
    first = await aiohttp_client(app_factory(workers=False))
    from handoff.runtime import RUNTIME

    from tests.conftest import API_SECRET, api_body
    from handoff.channels.api import sign

    body = api_body("before restart", conversation="durable")
    response = await first.post("/webhooks/api", data=body, headers={"X-Handoff-Signature": sign(API_SECRET, body)})
    assert response.status == 202
    await first.app[RUNTIME].drain()
    assert await Outbox.filter(status="pending").count() == 1  # bot reply written, not yet delivered
    await first.close()
    assert callback.received == []

    second = await aiohttp_client(app_factory())
    await settle(second.app[RUNTIME])
    assert [m["text"] for m in callback.for_conversation("durable")] == ["echo: before restart"]


async def test_unanswered_message_is_answered_after_a_restart(aiohttp_client, app_factory, callback, bot):
    import asyncio

    from handoff.runtime import RUNTIME
    from tests.conftest import API_SECRET, api_body
    from handoff.channels.api import sign

    bot.gate = asyncio.Event()  # the bot hangs: the process stops before it answers
    first = await aiohttp_client(app_factory())
    body = api_body("answer me", conversation="crash")
    await first.post("/webhooks/api", data=body, headers={"X-Handoff-Signature": sign(API_SECRET, body)})
    await asyncio.wait_for(bot.started.wait(), 5)
    await first.app[RUNTIME].cancel_tasks()
    await first.close()
    bot.gate.set()
    second = await aiohttp_client(app_factory())
    await settle(second.app[RUNTIME])
    assert [m["text"] for m in callback.for_conversation("crash")] == ["echo: answer me"]


@pytest.mark.parametrize("channel_missing", [True])
async def test_message_for_an_unconfigured_channel_fails_visibly(client, rt, say, callback, channel_missing):
    await say("hello", conversation="gone")
    await settle(rt)
    conversation = await Conversation.get(external_key="gone")
    rt.channels.pop("api")
    agent_reply = await Message.create(conversation=conversation, channel="api", direction="outgoing",
                                       author_kind="agent", text="x", delivery_status="pending")
    await Outbox.create(message=agent_reply, channel="api", conversation_id=conversation.id, next_attempt_at=utcnow())
    await rt.outbox.run_once()
    await agent_reply.refresh_from_db()
    assert agent_reply.delivery_status == "failed"
    assert "not configured" in agent_reply.delivery_error


async def test_an_expired_claim_is_taken_over_by_one_worker_only(client, rt, say, callback):
    await say("hello", conversation="expired")
    await settle(rt)
    conversation = await Conversation.get(external_key="expired")
    orphan = await Message.create(conversation=conversation, channel="api", direction="outgoing",
                                  author_kind="agent", text="sent by a crashed instance", delivery_status="pending")
    await Outbox.create(message=orphan, channel="api", conversation_id=conversation.id, status="sending",
                        next_attempt_at=utcnow(), claimed_until=utcnow() - timedelta(seconds=1))
    await asyncio.gather(rt.outbox.run_once(), OutboxWorker(rt).run_once())
    await settle(rt)
    texts = [m["text"] for m in callback.for_conversation("expired")]
    assert texts.count("sent by a crashed instance") == 1


async def test_a_provider_id_we_already_hold_keeps_the_delivery_status(client, rt, say, callback):
    await rt.outbox.stop()
    await say("hello", conversation="reused")
    await rt.drain()
    reply = await Message.get(author_kind="bot")
    holder = await Message.get(author_kind="customer")
    await Message.filter(id=holder.id).update(provider_id=f"api-out-{reply.id}")  # what the api channel answers
    await rt.outbox.run_once()
    await reply.refresh_from_db()
    assert (reply.delivery_status, reply.provider_id) == ("sent", None)
    row = await Outbox.get(message_id=reply.id)
    assert (row.status, row.attempts) == ("done", 1)
    assert [m["text"] for m in callback.for_conversation("reused")] == ["echo: hello"]


def texts(callback, conversation: str) -> list[str]:
    """The texts a conversation's callbacks carried, in arrival order."""
    return [m["text"] for m in callback.for_conversation(conversation)]


async def woken_only(rt, **options) -> OutboxWorker:
    """Swap the app's worker for one that polls only when woken, so a missed wake-up shows."""
    await rt.outbox.stop()
    rt.outbox = OutboxWorker(rt, poll_interval=3600, **options)
    rt.outbox.start()
    return rt.outbox


async def test_a_hung_send_does_not_hold_back_other_conversations(client, rt, say, callback):
    await woken_only(rt, batch=2)  # the hung conversation's queued rows alone would fill a poll
    gate = callback.hold("slow")
    await say("first", conversation="slow")
    assert [m["text"] for m in await callback.wait_until_held()] == ["echo: first"]
    for text in ("second", "third"):  # two replies queued behind the hung one
        await say(text, conversation="slow")
        await rt.drain()
    await OutboxWorker(rt).run_once()  # another instance does not overtake it either
    await say("hello", conversation="fast")
    await callback.wait_for(lambda got: any(m["conversation"] == "fast" for m in got))
    assert texts(callback, "fast") == ["echo: hello"]
    assert texts(callback, "slow") == []  # still in flight, and nothing overtook it
    assert [m["text"] for m in callback.held] == ["echo: first"]
    gate.set()
    await callback.wait_for(lambda got: len([m for m in got if m["conversation"] == "slow"]) == 3)
    await settle(rt)
    assert texts(callback, "slow") == ["echo: first", "echo: second", "echo: third"]
    rows = await Outbox.filter(conversation_id=(await Conversation.get(external_key="slow")).id)
    assert [(r.status, r.attempts) for r in rows] == [("done", 1)] * 3


async def test_a_conversation_waiting_for_a_slot_goes_when_one_frees(client, rt, say, callback):
    worker = await woken_only(rt, concurrency=1)
    gate = callback.hold("slow")
    await say("first", conversation="slow")
    await callback.wait_until_held()
    await say("hello", conversation="fast")
    await rt.drain()
    assert await worker.run_once() is True  # due, but the only slot is taken
    assert texts(callback, "fast") == []
    gate.set()
    await callback.wait_for(lambda got: any(m["conversation"] == "fast" for m in got))
    await settle(rt)
    assert (texts(callback, "slow"), texts(callback, "fast")) == (["echo: first"], ["echo: hello"])


async def test_a_conversation_left_out_by_a_full_poll_goes_when_a_slot_frees(client, rt, say, callback):
    await rt.outbox.stop()
    gate = callback.hold("slow")
    for conversation in ("slow", "fast"):
        await say("hi", conversation=conversation)
        await rt.drain()
    await woken_only(rt, concurrency=1)  # its first poll finds both; the slow one takes the slot
    await callback.wait_until_held()
    gate.set()
    await callback.wait_for(lambda got: any(m["conversation"] == "fast" for m in got))
    assert [m["conversation"] for m in callback.received] == ["slow", "fast"]


async def test_a_poll_asked_for_while_every_slot_is_busy_waits_for_one_to_free(client, rt, say, callback):
    worker = await woken_only(rt, concurrency=1)
    polls = 0
    start_due = worker._start_due

    async def counted():
        nonlocal polls
        polls += 1
        return await start_due()

    worker._start_due = counted
    gate = callback.hold("slow")
    await say("first", conversation="slow")
    await callback.wait_until_held()
    rt.outbox = OutboxWorker(rt)  # another instance's: the row of "other" is not offered to ours
    await say("hi", conversation="other")
    await rt.drain()
    rt.outbox = worker
    polls = 0
    for _ in range(5):
        worker.wake()
        await asyncio.sleep(0.06)  # past MIN_POLL_GAP each time
    assert polls == 0  # with no free slot, a poll could start nothing
    gate.set()
    await callback.wait_for(lambda got: any(m["conversation"] == "other" for m in got), timeout=5)
    assert polls >= 1 and texts(callback, "other") == ["echo: hi"]


async def test_stop_releases_a_hung_send_for_the_next_worker_at_once(client, rt, say, callback):
    callback.hold("stopped")
    await say("hello", conversation="stopped")
    await callback.wait_until_held()
    await asyncio.wait_for(rt.outbox.stop(), 10)
    row = await Outbox.get()
    assert row.status == "sending" and row.claimed_by is None  # released, not lost
    assert callback.for_conversation("stopped") == []
    callback.gates.clear()  # the next attempt is answered (the first one stays unanswered)
    await OutboxWorker(rt).run_once()  # no waiting for an expiry
    assert texts(callback, "stopped") == ["echo: hello"]
    row = await Outbox.get()
    assert (row.status, row.attempts) == ("done", 1)


async def test_stop_lets_a_send_in_flight_finish_within_the_grace(client, rt, say, callback):
    gate = callback.hold("graceful")
    await say("hello", conversation="graceful")
    await callback.wait_until_held()
    stopping = asyncio.create_task(rt.outbox.stop(grace=30))
    await asyncio.sleep(0)  # the stop is under way: no new rounds, the send in flight may finish
    gate.set()
    await asyncio.wait_for(stopping, 10)
    assert texts(callback, "graceful") == ["echo: hello"]
    row = await Outbox.get()
    assert (row.status, row.attempts) == ("done", 1)


# Short claims, a heartbeat, and acceptance recorded first (issue 12, item 4).

CLAIM = 1.0  # seconds: short, so that expiries happen within the test


class FrozenAfterAcceptance(OutboxWorker):
    """A worker whose process stops right after the provider's acceptance was committed: what
    follows (publishing it, applying early receipts) never happens."""

    async def _announce(self, *args, **kwargs):
        await asyncio.Event().wait()


def kill(worker: OutboxWorker, round_: asyncio.Task) -> None:
    """The worker's process dies: its tasks stop where they are; nothing is released."""
    for task in (round_, worker._heartbeat, *worker._running.values()):
        if task is not None:
            task.cancel()


async def until(condition, timeout: float = 10.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await condition():
        assert loop.time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def two_replies_queued(rt, say, key: str) -> list[Outbox]:
    """Two bot replies of one conversation, waiting in the outbox (the app's worker stopped)."""
    await rt.outbox.stop()
    for text in ("first", "second"):
        await say(text, conversation=key)
        await rt.drain()
    rows = await Outbox.all().order_by("id")
    assert [r.status for r in rows] == ["pending", "pending"]
    return rows


async def test_a_worker_dead_after_the_provider_accepted_never_sends_it_again(client, rt, say, callback):
    first, second = await two_replies_queued(rt, say, "accepted")
    dying = FrozenAfterAcceptance(rt, claim_seconds=CLAIM)
    round_ = asyncio.create_task(dying.run_once())
    await callback.wait_for(lambda got: len(got) == 1)
    await until(lambda: Outbox.filter(id=first.id, status="done").exists())
    kill(dying, round_)
    await asyncio.gather(round_, return_exceptions=True)
    row = await Outbox.get(id=first.id)
    assert (row.status, row.claimed_by) == ("done", dying.holder)  # recorded in the commit after the answer
    await _successor_delivers_the_rest(rt)
    assert texts(callback, "accepted") == ["echo: first", "echo: second"]  # the first one once
    sent = await Message.filter(author_kind="bot").order_by("id")
    assert [(m.delivery_status, m.provider_id) for m in sent] == [
        ("sent", f"api-out-{first.message_id}"), ("sent", f"api-out-{second.message_id}")]


async def test_a_row_left_accepted_is_recorded_as_sent_not_sent_again(client, rt, say, callback):
    # What an earlier version of handoff left when its worker died after the provider's answer:
    # the row `accepted`, with the provider's id, under a claim that has lapsed.
    first, second = await two_replies_queued(rt, say, "left-accepted")
    await Outbox.filter(id=first.id).update(status="accepted", first_part_id="api-out-earlier",
                                            claimed_by="gone", claimed_until=db.clock(-1))
    await _successor_delivers_the_rest(rt)
    assert texts(callback, "left-accepted") == ["echo: second"]
    sent = await Message.filter(author_kind="bot").order_by("id")
    assert [(m.delivery_status, m.provider_id) for m in sent] == [
        ("sent", "api-out-earlier"), ("sent", f"api-out-{second.message_id}")]


async def _successor_delivers_the_rest(rt) -> None:
    successor = OutboxWorker(rt, claim_seconds=CLAIM)

    async def delivered() -> bool:
        await successor.run_once()
        return not await Outbox.filter(status__in=("pending", "sending", "accepted")).exists()

    await until(delivered, timeout=CLAIM + 5)


async def test_a_worker_killed_mid_send_is_succeeded_soon_after_its_claim_lapses(client, rt, say, callback):
    first, _ = await two_replies_queued(rt, say, "killed")
    callback.hold("killed")
    dying = OutboxWorker(rt, claim_seconds=CLAIM)
    round_ = asyncio.create_task(dying.run_once())
    await callback.wait_until_held()  # the provider has not answered: nothing was accepted
    kill(dying, round_)
    await asyncio.gather(round_, return_exceptions=True)
    callback.gates.clear()
    successor = OutboxWorker(rt, claim_seconds=CLAIM)
    assert await Outbox.filter(id=first.id, status="sending", claimed_by=dying.holder).exists()
    await successor.run_once()  # the claim is still live: the conversation waits, in order
    assert texts(callback, "killed") == []

    async def delivered() -> bool:
        await successor.run_once()
        return len(texts(callback, "killed")) == 2

    await until(delivered, timeout=CLAIM + 5)  # within seconds of the claim's end, not minutes
    assert texts(callback, "killed") == ["echo: first", "echo: second"]


async def test_a_live_workers_slow_send_outlasting_its_claim_is_not_taken(client, rt, say, callback):
    await rt.outbox.stop()
    gate = callback.hold("slow")
    await say("hello", conversation="slow")
    await rt.drain()
    slow = OutboxWorker(rt, claim_seconds=CLAIM)
    slow.start()
    await callback.wait_until_held()
    other = OutboxWorker(rt, claim_seconds=CLAIM)
    for _ in range(8):  # three claims' length: only the heartbeat keeps the row
        await other.run_once()
        await asyncio.sleep(CLAIM / 2.5)
    assert len(callback.held) == 1
    row = await Outbox.get()
    assert (row.status, row.claimed_by) == ("sending", slow.holder)
    gate.set()
    await callback.wait_for(lambda got: len(got) == 1)
    await until(lambda: Outbox.filter(status="done").exists())
    await slow.stop()
    assert texts(callback, "slow") == ["echo: hello"]


async def write_lock(db_url: str):
    """Another client holds the outbox rows' write lock (PostgreSQL: row locks; SQLite: the
    database's), so this process's heartbeat cannot renew; returns a function releasing it."""
    if db_url.startswith("sqlite"):
        connection = sqlite3.connect(db_url.split("://", 1)[1], isolation_level=None, check_same_thread=False)
        connection.execute("BEGIN IMMEDIATE")

        async def release_sqlite() -> None:
            connection.execute("ROLLBACK")
            connection.close()

        return release_sqlite
    connection = await asyncpg.connect(db_url.replace("postgres://", "postgresql://", 1))
    transaction = connection.transaction()
    await transaction.start()
    await connection.execute("SELECT id FROM outbox FOR UPDATE")

    async def release_postgres() -> None:
        await transaction.rollback()
        await connection.close()

    return release_postgres


async def test_a_worker_that_cannot_renew_its_claim_stops_sending(client, rt, say, callback, db_url):
    first, second = await two_replies_queued(rt, say, "stale")
    callback.hold("stale")
    stalled = OutboxWorker(rt, claim_seconds=CLAIM)
    round_ = asyncio.create_task(stalled.run_once())
    await callback.wait_until_held()
    release = await write_lock(db_url)
    try:
        await asyncio.wait_for(round_, CLAIM + 5)  # it gave up the conversation at its claim's end
    finally:
        await release()
    assert stalled._claims == {}  # and renews nothing
    callback.gates.clear()  # the stalled worker's request stays unanswered; the next ones pass
    successor = OutboxWorker(rt, claim_seconds=CLAIM)

    async def delivered() -> bool:
        await successor.run_once()
        return len(texts(callback, "stale")) == 2

    await until(delivered, timeout=CLAIM + 5)
    assert texts(callback, "stale") == ["echo: first", "echo: second"]
    assert [m["text"] for m in callback.held] == ["echo: first"]  # nothing more from the stalled worker
    rows = await Outbox.filter(id__in=(first.id, second.id)).order_by("id")
    assert [(r.status, r.attempts) for r in rows] == [("done", 1), ("done", 1)]


async def test_without_a_callback_url_replies_stay_on_the_timeline_marked_skipped(
        aiohttp_client, app_factory, settings, callback, caplog):
    """The api channel with no HANDOFF_API_CALLBACK_URL delivers nowhere by configuration: its
    replies are `skipped` with the reason, never `failed` with a delivery_failed event."""
    with caplog.at_level("WARNING", logger="handoff.channels.api"):
        client = await aiohttp_client(app_factory(settings=settings.model_copy(update={"api_callback_url": ""})))
    assert "HANDOFF_API_CALLBACK_URL is not set" in caplog.text  # said once, at start
    rt = client.app[RUNTIME]
    body = api_body("hello", conversation="no-callback")
    answer = await client.post("/webhooks/api", data=body, headers={"X-Handoff-Signature": sign(API_SECRET, body),
                                                                  "Content-Type": "application/json"})
    assert answer.status == 202
    await settle(rt)
    reply = await Message.get(direction="outgoing", author_kind="bot")
    assert (reply.delivery_status, reply.delivery_error) == ("skipped", "not sent: HANDOFF_API_CALLBACK_URL is not set")
    assert (await Outbox.get(message_id=reply.id)).attempts <= 1
    assert not await Event.filter(kind="delivery_failed").exists()
    assert callback.for_conversation("no-callback") == []
