"""Inactivity ends bot conversations (never an agent's); the sweep picks unanswered customer
messages past the grace and unclaimed; live events cross instances via Redis."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from handoff import transitions as ops
from handoff.hub import Hub
from handoff.models import Conversation, Event, utcnow
from handoff.sweeper import answer_unanswered, end_inactive
from tests.conftest import settle


async def test_idle_bot_conversations_end_and_human_ones_stay(client, rt, say, make_agent):
    agent, _ = await make_agent()
    await say("hi", conversation="idle-bot")
    await say("hi", conversation="idle-human")
    await settle(rt)
    human = await Conversation.get(external_key="idle-human")
    await ops.takeover(rt, human.id, agent)
    long_ago = utcnow() - timedelta(seconds=rt.settings.inactivity_timeout + 60)
    await Conversation.all().update(last_activity_at=long_ago)
    assert await end_inactive(rt) == 1
    bot_conv = await Conversation.get(external_key="idle-bot")
    assert bot_conv.state == "ended" and bot_conv.open_key is None
    assert (await Conversation.get(id=human.id)).state == "human"
    assert await Event.filter(conversation_id=bot_conv.id, kind="ended").count() == 1
    await say("back again", conversation="idle-bot")
    await settle(rt)
    assert await Conversation.filter(external_key="idle-bot").count() == 2


async def test_the_sweep_answers_only_unclaimed_messages_past_the_grace(client, rt, say):
    await say("hi", conversation="waiting")
    await settle(rt)
    waiting = Conversation.filter(external_key="waiting")
    grace = timedelta(seconds=rt.settings.bot_sweep_interval)
    await waiting.update(last_responder="customer", last_customer_message_at=utcnow())
    assert await answer_unanswered(rt) == 0  # a live turn's message: left to it
    await waiting.update(last_customer_message_at=utcnow() - grace - timedelta(seconds=1),
                         bot_turn_holder="a" * 32, bot_turn_until=utcnow() + timedelta(seconds=30))
    assert await answer_unanswered(rt) == 0  # claimed by a running turn
    await waiting.update(bot_turn_until=utcnow() - timedelta(seconds=1))
    assert await answer_unanswered(rt) == 1  # the claim lapsed: its instance died
    await settle(rt)


async def test_events_cross_instances_through_redis():
    url = "redis://127.0.0.1:6379/0"
    first, second = Hub(url), Hub(url)
    await first.start()
    await second.start()
    try:
        async with second.subscribe() as events, first.subscribe() as own:
            await asyncio.sleep(0.2)  # let both Redis subscriptions settle
            marker = uuid.uuid4().hex
            first.publish("ticket.updated", marker=marker)
            remote = await asyncio.wait_for(events.__anext__(), 5)
            local = await asyncio.wait_for(own.__anext__(), 5)
            assert remote == {"kind": "ticket.updated", "marker": marker}
            assert local == remote
            await asyncio.sleep(0.2)
            assert own.queue.empty()  # the publisher does not get its own event twice
    finally:
        await first.close()
        await second.close()


async def test_a_slow_subscriber_is_told_it_lagged():
    hub = Hub(queue_size=3)
    async with hub.subscribe() as events:
        for i in range(5):
            hub.publish("x", i=i)
        assert await events.__anext__() == {"kind": "stream.lagged"}
        assert [(await events.__anext__())["i"] for _ in range(3)] == [2, 3, 4]


async def test_internal_kinds_reach_only_subscribers_that_ask_for_them():
    hub = Hub()
    async with hub.subscribe() as desk, hub.subscribe(kinds=frozenset({"internal.widget.push"})) as relay:
        hub.publish("internal.widget.push", visitor="v1")
        hub.publish("ticket.updated", ticket_id=1)
        hub.publish("internal.widget.push", local=False, visitor="v2")  # for other instances only
        assert await desk.__anext__() == {"kind": "ticket.updated", "ticket_id": 1}
        assert await relay.__anext__() == {"kind": "internal.widget.push", "visitor": "v1"}
        assert desk.queue.empty() and relay.queue.empty()
