"""Durable delivery: retries with backoff and Retry-After, visible failure, nothing lost
across a restart, and a slow provider holding back only its own conversation."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import pytest

from handoff import transitions as ops
from handoff.models import Conversation, Event, Message, Outbox, utcnow
from handoff.backoff import full_jitter
from handoff.outbox import OutboxWorker
from tests.conftest import settle


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


async def test_stop_leaves_a_hung_send_claimed_for_the_next_worker(client, rt, say, callback):
    callback.hold("stopped")
    await say("hello", conversation="stopped")
    await callback.wait_until_held()
    await asyncio.wait_for(rt.outbox.stop(), 10)
    row = await Outbox.get()
    assert row.status == "sending" and row.claimed_until > utcnow()  # not lost, not released early
    assert callback.for_conversation("stopped") == []
    await Outbox.filter(id=row.id).update(claimed_until=utcnow() - timedelta(seconds=1))  # the claim expires
    callback.gates.clear()  # the next attempt is answered (the first one stays unanswered)
    await OutboxWorker(rt).run_once()
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
