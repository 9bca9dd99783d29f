"""Every customer message is answered exactly once across instances: bot turns are claimed in the
database, a sweep answers what a failed or interrupted turn left, and a replayed webhook of a stored
but unanswered message gets it answered. Runs on both stores; PostgreSQL is where the race is real."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from handoff import db
from handoff.bot import claim
from handoff.bot.turn import run_bot_turn
from handoff.models import Conversation, Message, utcnow
from handoff.runtime import RUNTIME, Runtime
from handoff.channels.api import sign
from tests.conftest import API_SECRET, api_body, settle
from tests.fakes.bots import EchoBot

FAST = dict(bot_sweep_interval=0.2)


async def post(client: Any, body: bytes) -> int:
    resp = await client.post("/webhooks/api", data=body, headers={
        "X-Handoff-Signature": sign(API_SECRET, body), "Content-Type": "application/json"})
    return resp.status


async def timeline(key: str) -> list[tuple[str, str]]:
    """(author, text) of the conversation's customer and bot messages, in order."""
    conversation = await Conversation.get(external_key=key)
    rows = await Message.filter(conversation_id=conversation.id, author_kind__in=("customer", "bot")
                                ).order_by("id").values_list("author_kind", "text")
    return [(author, text) for author, text in rows]


def answered_once(rows: list[tuple[str, str]]) -> bool:
    """Each run of customer messages is followed by exactly one bot reply echoing its last message."""
    if not rows or rows[-1][0] != "bot":
        return False
    return all(author != "bot" or (i > 0 and rows[i - 1][0] == "customer" and text == f"echo: {rows[i - 1][1]}")
               for i, (author, text) in enumerate(rows))


async def until(condition: Any, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_quick_messages_on_two_instances_are_each_answered_once(aiohttp_client: Any, app_factory: Any,
                                                                       settings: Any) -> None:
    shared = settings.model_copy(update=FAST)
    one = await aiohttp_client(app_factory(settings=shared, bot=EchoBot(delay=0.05)))
    two = await aiohttp_client(app_factory(settings=shared, bot=EchoBot(delay=0.05)))
    keys = [f"quick-{i}" for i in range(12)]

    async def customer(n: int, key: str) -> None:
        for m in range(3):  # quick messages alternating between the instances
            assert await post((one, two)[(n + m) % 2], api_body(f"{key} message {m}", conversation=key,
                                                                contact=key)) == 202
            await asyncio.sleep(0.01 * (n % 3))

    await asyncio.gather(*(customer(n, key) for n, key in enumerate(keys)))
    await asyncio.gather(settle(one.app[RUNTIME]), settle(two.app[RUNTIME]))
    for key in keys:
        rows = await timeline(key)
        assert answered_once(rows), rows
    assert not await Conversation.filter(bot_turn_holder__not_isnull=True).exists()  # every claim released


async def interrupt_first_turn(rt: Runtime, bot: EchoBot) -> None:
    """The turn in flight dies mid-answer (its instance stops), as a turn does in a database outage."""
    await asyncio.wait_for(bot.started.wait(), 5)
    for task in list(rt._tasks):
        if task.get_name().startswith("bot-turn-"):
            task.cancel()
    assert bot.gate is not None
    bot.gate = None
    await asyncio.sleep(0.05)


async def test_an_interrupted_turn_is_answered_by_the_sweep(aiohttp_client: Any, app_factory: Any,
                                                            settings: Any) -> None:
    bot = EchoBot()
    bot.gate = asyncio.Event()
    client = await aiohttp_client(app_factory(settings=settings.model_copy(update=FAST), bot=bot))
    rt = client.app[RUNTIME]
    assert await post(client, api_body("where is my order?", conversation="cut", contact="cut")) == 202
    await interrupt_first_turn(rt, bot)
    await until(lambda: Message.filter(author_kind="bot").exists())
    await settle(rt)
    assert await timeline("cut") == [("customer", "where is my order?"), ("bot", "echo: where is my order?")]
    assert len(bot.calls) == 2


async def test_a_dead_instances_claim_lapses_and_the_sweep_answers(aiohttp_client: Any, app_factory: Any,
                                                                   settings: Any) -> None:
    bot = EchoBot()
    bot.gate = asyncio.Event()
    client = await aiohttp_client(app_factory(settings=settings.model_copy(update=FAST), bot=bot))
    rt = client.app[RUNTIME]
    assert await post(client, api_body("hello?", conversation="dead", contact="dead")) == 202
    await interrupt_first_turn(rt, bot)
    # Another instance claimed the turn and died: its claim holds for a while, then lapses.
    until_ = utcnow() + timedelta(seconds=0.6)
    await Conversation.filter(external_key="dead").update(bot_turn_holder="f" * 32, bot_turn_until=until_)
    await asyncio.sleep(0.4)
    assert not await Message.filter(author_kind="bot").exists()  # nobody answers under a live claim
    await until(lambda: Message.filter(author_kind="bot").exists())
    await settle(rt)
    assert await timeline("dead") == [("customer", "hello?"), ("bot", "echo: hello?")]


async def test_a_replayed_webhook_of_an_unanswered_message_gets_it_answered(aiohttp_client: Any, app_factory: Any,
                                                                            settings: Any) -> None:
    bot = EchoBot()
    bot.gate = asyncio.Event()
    slow_sweep = settings.model_copy(update=dict(bot_sweep_interval=60.0))  # only the replay may answer
    client = await aiohttp_client(app_factory(settings=slow_sweep, bot=bot))
    rt = client.app[RUNTIME]
    body = api_body("can I return it?", conversation="replay", contact="replay", message_id="provider-1")
    assert await post(client, body) == 202
    await interrupt_first_turn(rt, bot)
    await settle(rt)
    assert await timeline("replay") == [("customer", "can I return it?")]
    for _ in range(2):  # the provider retries; the second replay finds it answered
        assert await post(client, body) == 202
        await settle(rt)
    assert await timeline("replay") == [("customer", "can I return it?"), ("bot", "echo: can I return it?")]


async def test_of_racing_claims_exactly_one_wins_until_released(client: Any, rt: Runtime, say: Any) -> None:
    assert (await say("hi", conversation="race")).status == 202
    await settle(rt)
    conversation = await Conversation.get(external_key="race")
    entered = asyncio.Event()
    results: list[bool] = []

    async def contender() -> None:
        async with claim.held(conversation.id, rt.commits) as holder:
            results.append(holder is not None)
            if holder is not None:
                await entered.wait()

    racers = [asyncio.create_task(contender()) for _ in range(5)]
    await until(lambda: asyncio.sleep(0, len(results) == 5))
    assert sorted(results) == [False, False, False, False, True]
    entered.set()
    await asyncio.gather(*racers)
    async with claim.held(conversation.id, rt.commits) as holder:  # released: the next turn takes it
        assert holder is not None


async def test_claim_expiry_is_read_on_the_database_clock(client: Any, rt: Runtime, say: Any) -> None:
    assert (await say("hi", conversation="clock")).status == 202
    await settle(rt)
    conversation = await Conversation.get(external_key="clock")
    # Written by the database: live for 5 s more, whatever this process's clock says.
    await Conversation.filter(id=conversation.id).update(bot_turn_holder="elsewhere", bot_turn_until=db.clock(5))
    assert not await Conversation.filter(claim.free(), id=conversation.id).exists()
    async with claim.held(conversation.id, rt.commits) as holder:
        assert holder is None
    await Conversation.filter(id=conversation.id).update(bot_turn_until=db.clock(-0.5))  # lapsed
    assert await Conversation.filter(claim.free(), id=conversation.id).exists()
    async with claim.held(conversation.id, rt.commits) as holder:
        assert holder is not None


async def test_a_turn_whose_claim_was_taken_commits_no_reply(client: Any, rt: Runtime, say: Any, bot: EchoBot) -> None:
    bot.gate = asyncio.Event()  # the turn is generating its reply...
    assert (await say("where is my parcel?", conversation="lapsed")).status == 202
    await asyncio.wait_for(bot.started.wait(), 5)
    conversation = await Conversation.get(external_key="lapsed")
    # ...while its renewals fail, its claim lapses and another instance's turn takes the conversation.
    await Conversation.filter(id=conversation.id).update(bot_turn_holder="another-turn", bot_turn_until=db.clock(30))
    bot.gate.set()
    await rt.drain()
    assert await timeline("lapsed") == [("customer", "where is my parcel?")]  # that turn answers, not this one
    await Conversation.filter(id=conversation.id).update(bot_turn_holder=None, bot_turn_until=None)
    assert await run_bot_turn(rt, conversation.id) == "replied"  # and the fence is the claim only
    assert await timeline("lapsed") == [("customer", "where is my parcel?"), ("bot", "echo: where is my parcel?")]


async def test_a_reply_is_written_with_its_claims_release_and_a_later_message_gets_its_own_turn(
        client: Any, rt: Runtime, say: Any, bot: EchoBot) -> None:
    assert (await say("first", conversation="released")).status == 202
    await settle(rt)
    conversation = await Conversation.get(external_key="released")
    assert (conversation.bot_turn_holder, conversation.bot_turn_until, conversation.last_responder) == (None, None, "bot")
    assert conversation.customer_messages == 1
    bot.gate = asyncio.Event()  # the next turn holds its claim while it generates...
    bot.started.clear()
    assert (await say("second", conversation="released")).status == 202
    await asyncio.wait_for(bot.started.wait(), 5)
    assert (await say("third", conversation="released")).status == 202  # ...so this one's own turn is "busy"
    bot.gate.set()
    await settle(rt)
    # The held turn's reply to "second" is superseded by "third"; its loop answers "third" once.
    assert await timeline("released") == [("customer", "first"), ("bot", "echo: first"), ("customer", "second"),
                                          ("customer", "third"), ("bot", "echo: third")]
    assert (await Conversation.get(external_key="released")).customer_messages == 3


async def test_a_message_claims_its_turn_when_stored_and_a_turn_stopped_while_waiting_to_begin_frees_it(
        client: Any, rt: Runtime, say: Any, bot: EchoBot) -> None:
    from tortoise.transactions import in_transaction

    bot.gate = asyncio.Event()  # the first message's turn holds its claim while it generates
    assert (await say("hi", conversation="born")).status == 202
    conversation = await Conversation.get(external_key="born")
    assert conversation.bot_turn_holder is not None  # claimed by the transaction that stored the message
    bot.gate.set()
    await settle(rt)
    async with in_transaction():
        holder = await claim.take(conversation.id)
    assert holder is not None and holder.conversation.id == conversation.id
    assert (await Conversation.get(id=conversation.id)).bot_turn_holder == holder
    async with rt.turn_lock(conversation.id):  # as if this instance's previous turn were ending
        turn = asyncio.create_task(run_bot_turn(rt, conversation.id, holder))
        await asyncio.sleep(0.05)
        turn.cancel()  # a shutdown while the turn waits to begin
        await asyncio.gather(turn, return_exceptions=True)
    assert (await Conversation.get(id=conversation.id)).bot_turn_holder is None  # free for another instance
