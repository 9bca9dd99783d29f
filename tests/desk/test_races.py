"""Concurrency guarantees, on SQLite and PostgreSQL: one takeover winner, one open ticket,
and the fence that stops an in-flight bot reply."""

from __future__ import annotations

import asyncio
import copy

import pytest
from tortoise.exceptions import IntegrityError

from handoff.bot.turn import write_bot_reply
from handoff import transitions as ops
from handoff.errors import Conflict
from handoff.models import Contact, Conversation, Message, Ticket
from tests.conftest import settle
from tests.statements import Statements

AGENTS = 32
ROUNDS = 200


async def _bot_conversation(say, rt, key: str) -> Conversation:
    await say("hello", conversation=key)
    await settle(rt)
    return await Conversation.get(external_key=key)


async def _fresh_conversation(key: str) -> Conversation:
    contact = await Contact.create(name=key)
    return await Conversation.create(contact=contact, channel="api", external_key=key, contact_external_id=key,
                                     open_key=f"api:{key}")


def _instances(rt, n: int) -> list:
    """`n` runtimes over the same database, like n instances: takeovers wait for one another only
    within an instance (`Runtime.takeovers`); across them the compare-and-set decides."""
    copies = [copy.copy(rt) for _ in range(n)]
    for instance in copies:
        instance.takeovers = {}
    return copies


async def _race(rt, conversation_id: int, agents: list, instances: int = 4) -> list:
    runtimes = _instances(rt, instances)
    return await asyncio.gather(*(ops.takeover(runtimes[i % instances], conversation_id, a) for i, a in enumerate(agents)),
                                return_exceptions=True)


async def test_32_agents_take_over_at_once_and_exactly_one_wins(client, rt, say, make_agent):
    agents = [(await make_agent(f"Agent{i}"))[0] for i in range(AGENTS)]
    for round_ in range(ROUNDS):
        conversation = await _fresh_conversation(f"race-{round_}")
        results = await _race(rt, conversation.id, agents)
        winners = [r for r in results if isinstance(r, Ticket)]
        losers = [r for r in results if isinstance(r, Conflict)]
        assert len(winners) == 1, results
        assert len(losers) == AGENTS - 1
        assert {loser.ticket.id for loser in losers} == {winners[0].id}
        assert {loser.assignee.id for loser in losers} == {winners[0].assignee_id}
        assert await Ticket.filter(conversation_id=conversation.id).count() == 1


async def test_takeovers_racing_in_one_instance_cost_the_losers_no_statement(client, rt, make_agent):
    agents = [(await make_agent(f"Solo{i}"))[0] for i in range(8)]
    alone, raced = await _fresh_conversation("taken-alone"), await _fresh_conversation("taken-by-one-of-8")
    with Statements() as one:
        await ops.takeover(rt, alone.id, agents[0])
        await settle(rt)
    with Statements() as many:
        results = await _race(rt, raced.id, agents, instances=1)
        await settle(rt)
    winners = [r for r in results if isinstance(r, Ticket)]
    assert len(winners) == 1 and all(isinstance(r, Conflict) for r in results if r is not winners[0])
    assert {r.assignee.id for r in results if isinstance(r, Conflict)} == {winners[0].assignee_id}
    # Seven losers through the database would cost five statements each (read, compare-and-set,
    # and the three reads naming the winner); a background poll of the outbox may add one.
    assert many.count <= one.count + 2, (one.count, many.count)


async def test_http_takeover_race_tells_the_loser_who_won(client, rt, say, make_agent):
    conversation = await _bot_conversation(say, rt, "http-race")
    (_, ana), (_, ben) = await make_agent("Ana"), await make_agent("Ben")
    responses = await asyncio.gather(
        client.post(f"/api/v1/conversations/{conversation.id}/takeover", headers=ana),
        client.post(f"/api/v1/conversations/{conversation.id}/takeover", headers=ben),
    )
    statuses = sorted(r.status for r in responses)
    assert statuses == [201, 409]
    winner = next(r for r in responses if r.status == 201)
    loser = next(r for r in responses if r.status == 409)
    won, lost = await winner.json(), await loser.json()
    assert lost["ticket_id"] == won["id"]
    assert lost["assignee"]["name"] == won["assignee"]["name"]
    assert "already taken over by " + won["assignee"]["name"] == lost["error"]


async def test_the_database_refuses_a_second_open_ticket(client, rt, say):
    conversation = await _bot_conversation(say, rt, "one-open")
    await Ticket.create(conversation=conversation, open_key=conversation.id, channel="api")
    with pytest.raises(IntegrityError):
        await Ticket.create(conversation=conversation, open_key=conversation.id, channel="api")
    closed = await Ticket.create(conversation=conversation, open_key=None, channel="api", status="closed")
    assert closed.id


async def test_bot_reply_in_flight_during_takeover_is_never_delivered(client, rt, say, bot, callback, make_agent):
    agent, _ = await make_agent()
    bot.gate = asyncio.Event()
    await say("slow question", conversation="fence")
    await asyncio.wait_for(bot.started.wait(), 5)
    conversation = await Conversation.get(external_key="fence")
    await ops.takeover(rt, conversation.id, agent)
    bot.gate.set()
    await settle(rt)
    assert [m["kind"] for m in callback.for_conversation("fence")] == ["notice"]
    assert await Message.filter(conversation_id=conversation.id, author_kind="bot").count() == 0
    events = await conversation.events.all().values_list("kind", flat=True)
    assert "bot_reply_dropped" in events


async def test_bot_reply_written_just_before_takeover_is_cancelled_by_the_outbox(client, rt, say, callback, make_agent):
    agent, _ = await make_agent()
    conversation = await _bot_conversation(say, rt, "late")
    await rt.outbox.stop()
    assert await write_bot_reply(rt, conversation.id, conversation.version, "stale answer") == "replied"
    await ops.takeover(rt, conversation.id, agent)
    await rt.outbox.run_once()
    await settle(rt)
    assert "stale answer" not in [m["text"] for m in callback.for_conversation("late")]
    stale = await Message.get(text="stale answer")
    assert stale.delivery_status == "cancelled"


async def test_stale_version_reply_is_fenced(client, rt, say, make_agent):
    conversation = await _bot_conversation(say, rt, "fenced")
    assert await write_bot_reply(rt, conversation.id, conversation.version - 1, "old") == "fenced"


async def test_a_customer_who_writes_again_gets_one_answer_to_everything(client, rt, say, callback, bot):
    """The second message arrives while the bot is still answering the first: the stale answer
    (which never saw it) is dropped, and the turn queued for the second answers both."""
    bot.gate = asyncio.Event()
    await say("my order is late", conversation="twice")
    await asyncio.wait_for(bot.started.wait(), 5)
    await say("and the box was damaged", conversation="twice")
    bot.gate.set()
    await settle(rt)
    answers = [m["text"] for m in callback.for_conversation("twice") if m["kind"] == "bot"]
    assert answers == ["echo: and the box was damaged"]
    assert [[t.text for t in call] for call in bot.calls] == [
        ["my order is late"], ["my order is late", "and the box was damaged"]]
    conversation = await Conversation.get(external_key="twice")
    assert "bot_reply_dropped" not in await conversation.events.all().values_list("kind", flat=True)


@pytest.mark.stress
async def test_takeover_race_stress(client, rt, say, make_agent):
    agents = [(await make_agent(f"S{i}"))[0] for i in range(AGENTS)]
    for round_ in range(1000):
        conversation = await _fresh_conversation(f"stress-{round_}")
        results = await _race(rt, conversation.id, agents)
        assert sum(isinstance(r, Ticket) for r in results) == 1
