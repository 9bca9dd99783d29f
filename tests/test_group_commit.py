"""Group commit: concurrent units share a transaction, each caller gets its own outcome only after
the commit, and one failing unit costs its neighbours only a retry alone."""

from __future__ import annotations

import asyncio

import pytest

from tortoise.exceptions import IntegrityError
from tortoise.expressions import F

from handoff import eventlog
from handoff.events import EventKind

from handoff.group_commit import GroupCommit
from handoff.models import Contact, ContactIdentity, Conversation, Message
from handoff.timeline import Pending, log_events, transaction
from tests.conftest import settle


async def _identity(external_id: str) -> int:
    contact = await Contact.create(name=external_id)
    await ContactIdentity.create(contact=contact, channel="group", external_id=external_id)
    return contact.id


async def test_units_that_arrive_while_one_commits_share_the_next_transaction(client):
    group = GroupCommit()
    ids = await asyncio.gather(*(group.run(lambda i=i: _identity(f"u{i}")) for i in range(12)))
    assert len(set(ids)) == 12
    assert group.groups >= 1  # the first committed alone, the others arrived meanwhile
    assert await ContactIdentity.filter(channel="group").count() == 12


async def test_a_failing_unit_costs_its_neighbours_nothing_but_a_retry(client):
    await _identity("taken")
    group = GroupCommit()
    names = ["a", "b", "taken", "c", "d"]
    outcomes = await asyncio.gather(*(group.run(lambda n=n: _identity(n)) for n in ["first", *names]),
                                    return_exceptions=True)
    assert isinstance(outcomes[3], IntegrityError)  # "taken": its own caller gets its own error
    assert all(isinstance(o, int) for i, o in enumerate(outcomes) if i != 3)
    stored = await ContactIdentity.filter(channel="group").values_list("external_id", flat=True)
    assert sorted(stored) == sorted(["taken", "first", "a", "b", "c", "d"])  # each once
    assert await Contact.filter(name="taken").count() == 1  # the failed unit's contact rolled back


async def test_a_unit_that_raises_rolls_back_only_its_own_writes(client):
    group = GroupCommit()

    async def half_done() -> None:
        await _identity("half")
        raise ValueError("changed its mind")

    outcomes = await asyncio.gather(group.run(lambda: _identity("lead")), group.run(lambda: _identity("x")),
                                    group.run(half_done), group.run(lambda: _identity("y")), return_exceptions=True)
    assert isinstance(outcomes[2], ValueError)
    assert sorted(await ContactIdentity.filter(channel="group").values_list("external_id", flat=True)) == ["lead", "x", "y"]


async def test_concurrent_webhooks_with_replays_are_stored_once_and_answered_once(client, rt, say, callback):
    bodies = [(f"hello {i}", f"conv-{i % 10}", f"m-{i}") for i in range(40)]
    replays = bodies[::4]  # the provider sends some twice, at the same moment
    answers = await asyncio.gather(*(say(text, conversation=conv, message_id=mid) for text, conv, mid in [*bodies, *replays]))
    assert {r.status for r in answers} == {202}
    await settle(rt)
    assert await Message.filter(direction="incoming").count() == 40
    assert await Conversation.all().count() == 10
    assert rt.commits.groups >= 1
    for conversation in await Conversation.all():
        assert conversation.customer_messages == 4
    # Each conversation's latest message is answered, and no reply is sent twice.
    for conversation in await Conversation.all():
        last = await Message.filter(conversation_id=conversation.id, direction="incoming").order_by("-id").first()
        got = [m["text"] for m in callback.for_conversation(conversation.external_key)]
        assert got and got[-1] == f"echo: {last.text}"
        assert len(got) == len(set(got))


async def test_every_write_of_an_answered_message_is_a_unit_and_concurrent_ones_share_commits(client, rt, say, callback):
    before = rt.commits.units
    answers = await asyncio.gather(*(say(f"hi {i}", conversation=f"alone-{i}", message_id=f"a-{i}") for i in range(24)))
    assert {r.status for r in answers} == {202}
    await settle(rt)
    assert len(callback.received) == 24
    # Each message: its receipt (with its bot turn's claim), the bot's reply, the outbox's claim
    # and final records.
    assert rt.commits.units - before == 24 * 4
    assert rt.commits.commits < rt.commits.units  # some were committed together


async def test_a_group_takes_the_event_log_lock_only_after_every_unit(client, db_url):
    # Unit 1 logs events, unit 2 then waits for a row another transaction holds while that one
    # logs its own events. Were unit 1's append (and its lock, held to the commit) taken at once,
    # the two transactions would wait for each other: PostgreSQL's deadlock error.
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite runs one write transaction at a time: no row lock to wait for")
    contact = await Contact.create(name="held")
    conversation = await Conversation.create(contact=contact, channel="group", external_key="held",
                                              contact_external_id="held")
    group = GroupCommit()
    row_held, unit_waiting = asyncio.Event(), asyncio.Event()

    async def logs_events() -> Pending:
        pending = Pending()
        pending.add(EventKind.CONVERSATION_UPDATED, conversation_id=conversation.id, state="bot")
        await log_events(pending)
        return pending

    async def then_waits_for_the_row() -> None:
        await row_held.wait()
        unit_waiting.set()
        await Conversation.filter(id=conversation.id).update(customer_messages=F("customer_messages") + 1)

    async def holds_the_row_then_logs() -> Pending:
        pending = Pending()
        async with transaction(pending):
            await Conversation.filter(id=conversation.id).update(version=F("version") + 1)
            row_held.set()
            await unit_waiting.wait()
            await asyncio.sleep(0.2)  # the unit is now blocked on the row
            pending.add(EventKind.CONVERSATION_UPDATED, conversation_id=conversation.id, state="human")
        return pending

    first, _, outside = await asyncio.wait_for(asyncio.gather(
        group.run(logs_events), group.run(then_waits_for_the_row), holds_the_row_then_logs()), 20)
    assert group.groups == 1  # both units shared one transaction (a deadlock would have split them)
    assert len(first.logged) == 1 and len(outside.logged) == 1
    assert first.logged[0]["seq"] != outside.logged[0]["seq"]
    updated = await Conversation.get(id=conversation.id)
    assert (updated.version, updated.customer_messages) == (conversation.version + 1, 1)


async def test_a_groups_live_events_are_appended_together_each_unit_keeping_its_own(client, monkeypatch):
    group = GroupCommit()
    inserts = 0
    real = eventlog.append

    async def counted(events, conn=None):
        nonlocal inserts
        inserts += 1
        return await real(events, conn)

    def logs(n: int):
        async def unit() -> Pending:
            pending = Pending()
            for i in range(n):
                pending.add(EventKind.CONVERSATION_UPDATED, conversation_id=n, state=f"s{i}")
            await log_events(pending)
            return pending
        return unit

    monkeypatch.setattr(eventlog, "append", counted)
    pendings = await asyncio.gather(*(group.run(logs(n)) for n in (1, 2, 0, 3)))
    monkeypatch.undo()
    assert (group.commits, group.groups, inserts) == (1, 1, 1)  # one transaction, one INSERT
    assert [[e["state"] for e in p.logged] for p in pendings] == [["s0"], ["s0", "s1"], [], ["s0", "s1", "s2"]]
    seqs = [e["seq"] for p in pendings for e in p.logged]
    assert seqs == sorted(seqs) and len(set(seqs)) == 6
    stored = [(e["seq"], e["conversation_id"], e["state"]) for e in await eventlog.after(0)]
    assert stored[-6:] == [(e["seq"], e["conversation_id"], e["state"]) for p in pendings for e in p.logged]


async def test_with_several_committers_a_group_does_not_wait_for_another_to_commit(client, db_url):
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite has one writer: the app runs one committer there")
    group = GroupCommit(parallel=2)
    second_ran = asyncio.Event()

    async def waits_for_the_second() -> int:
        await asyncio.wait_for(second_ran.wait(), 5)  # in flight until the other group has run
        return await _identity("first")

    async def second() -> int:
        second_ran.set()
        return await _identity("second")

    ids = await asyncio.gather(group.run(waits_for_the_second), group.run(second))
    assert len(set(ids)) == 2 and group.commits == 2
    assert sorted(await ContactIdentity.filter(channel="group").values_list("external_id", flat=True)) == ["first", "second"]
    # Later units find a free committer again.
    assert await group.run(lambda: _identity("third"))


async def test_a_unit_postgres_aborts_as_deadlocked_runs_again(client, db_url):
    # Two committers take the same two rows in opposite orders: PostgreSQL aborts one
    # transaction (deadlock detected); its unit runs again and both callers get their results.
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite runs one write transaction at a time: no deadlock")
    first, second = [await Contact.create(name=n) for n in ("first", "second")]
    group = GroupCommit(parallel=2)
    both_hold_one = asyncio.Barrier(2)
    runs = {"a": 0, "b": 0}

    def unit(name: str, rows: tuple[Contact, Contact]):
        async def work() -> str:
            runs[name] += 1
            await Contact.filter(id=rows[0].id).update(name=name)
            if runs[name] == 1:
                await both_hold_one.wait()
            await Contact.filter(id=rows[1].id).update(name=name)
            return name
        return work

    results = await asyncio.wait_for(asyncio.gather(group.run(unit("a", (first, second))),
                                                    group.run(unit("b", (second, first)))), 30)
    assert results == ["a", "b"]
    assert group.retries == 1 and sorted(runs.values()) == [1, 2]
    again = "a" if runs["a"] == 2 else "b"  # ran again after the other committed: its writes are last
    assert [c.name for c in await Contact.filter(id__in=[first.id, second.id])] == [again, again]
    assert group.commits == 2
