"""Durable delivery: retries with backoff and Retry-After, visible failure, nothing lost
across a restart."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta

import pytest

from handoff.desk import operations as ops
from handoff.models import Conversation, Event, Message, Outbox
from handoff.outbox import OutboxWorker, backoff_delay
from handoff.timeline import utcnow
from tests.conftest import settle


def test_backoff_is_full_jitter_and_capped():
    rng = random.Random(7)
    delays = [backoff_delay(attempt, 1.0, 30.0, rng) for attempt in range(1, 12) for _ in range(50)]
    assert all(0 <= d <= 30.0 for d in delays)
    early = [backoff_delay(1, 1.0, 30.0, rng) for _ in range(200)]
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
    from handoff.timeline import utcnow

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
