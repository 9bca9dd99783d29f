"""Predicates written twice, once for the ORM and once as pre-built SQL for the hot path
(`handoff.sql`), select the same rows on both stores."""

from __future__ import annotations

import itertools

from tortoise import connections

from handoff.bot import history
from handoff.desk.auth import create_agent
from handoff.models import BOT_ANSWERS_SQL, Contact, Conversation, Message, bot_answers, utcnow


async def test_who_the_bot_answers_is_the_same_as_property_orm_filter_and_sql(client):
    contact = await Contact.create(name="twin")
    agent, _ = await create_agent("Ann", "ann@example.com")
    for n, (state, assignee, helping) in enumerate(itertools.product(("bot", "human", "ended"), (None, agent),
                                                                     (False, True))):
        await Conversation.create(contact=contact, channel="api", external_key=f"k{n}", contact_external_id="c",
                                  state=state, assignee=assignee, bot_while_waiting=helping)
    by_property = {c.id for c in await Conversation.all() if c.bot_answers}
    by_orm = set(await Conversation.filter(bot_answers()).values_list("id", flat=True))
    _, rows = await connections.get("default").execute_query(f"SELECT id FROM conversation WHERE {BOT_ANSWERS_SQL}")
    by_sql = {row["id"] for row in rows}
    assert by_property == by_orm == by_sql
    assert len(by_sql) == 5  # every "bot" one (4), and the "human" one unassigned with the bot helping


async def test_the_bot_turns_history_read_is_the_same_in_sql_and_the_orm(client):
    contact = await Contact.create(name="twin")
    conversation = await Conversation.create(contact=contact, channel="api", external_key="turns",
                                              contact_external_id="c")
    kinds = itertools.product(("incoming", "outgoing", "activity"), ("customer", "bot", "agent", "system"),
                              (False, True), (None, utcnow()))
    for n, (direction, author, private, deleted) in enumerate(kinds):
        await Message.create(conversation=conversation, channel="api", direction=direction, author_kind=author,
                             text=f"m{n}", private=private, deleted_at=deleted)
    for limit in (1, 5, 100):
        orm = [m.text for m in await history._visible_turns(conversation.id, limit)]
        _, turns = await history.load_turns_and_conversation(conversation.id, limit, conversation)
        assert [t.text for t in reversed(turns)] == orm
    assert len(orm) == 9  # customer, bot and agent messages, neither private nor deleted, of 3 directions
