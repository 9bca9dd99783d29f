"""The desk's reads of one conversation's or one ticket's rows find them by an index, however many
other conversations the database holds: checked on SQLite's query plans after ANALYZE, with a
history of many conversations (PostgreSQL's planner rightly scans tables this small)."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from tortoise import connections

from handoff.desk.auth import create_agent
from handoff.models import Contact, Conversation, Event, Message, Ticket
from handoff.states import TicketStatus

LIVE = (TicketStatus.OPEN, TicketStatus.ON_CUSTOMER)


@pytest.fixture
async def history(client, db_url):
    if not db_url.startswith("sqlite"):
        pytest.skip("a plan on SQLite's statistics; PostgreSQL scans tables this small by choice")
    now = datetime.now(timezone.utc)
    await Contact.bulk_create([Contact(name=f"customer {i}") for i in range(200)])
    await Conversation.bulk_create([
        Conversation(contact=contact, channel="api", external_key=f"old-{contact.id}", contact_external_id="h",
                     state="ended", last_activity_at=now) for contact in await Contact.all()])
    conversations = await Conversation.all()
    agents = [(await create_agent(f"Agent {i}", f"agent{i}@example.com"))[0] for i in range(20)]
    await Ticket.bulk_create([Ticket(conversation=c, channel="api", status=TicketStatus.CLOSED, kind="takeover",
                                     assignee=agents[n % 20]) for n, c in enumerate(conversations)])
    tickets = {t.conversation_id: t for t in await Ticket.all()}  # type: ignore[attr-defined]
    await Message.bulk_create([
        Message(conversation=c, ticket=tickets[c.id], channel="api", direction="incoming", author_kind="customer",
                text=f"m{n}", delivery_status="none") for c in conversations for n in range(10)])
    await Event.bulk_create([Event(conversation=c, ticket=tickets[c.id], kind="taken_over") for c in conversations
                             for _ in range(5)])
    await connections.get("default").execute_script("ANALYZE")
    return conversations[100], tickets[conversations[100].id], agents[3]


async def _plan(queryset) -> list[str]:
    _, rows = await connections.get("default").execute_query("EXPLAIN QUERY PLAN " + queryset.sql(params_inline=True))
    return [row["detail"] for row in rows]


async def test_a_conversations_timeline_and_tickets_and_a_tickets_messages_use_an_index(history):
    conversation, ticket, agent = history
    for queryset in (Event.filter(conversation_id=conversation.id).order_by("id"),
                     Ticket.filter(conversation_id=conversation.id),
                     Message.filter(ticket_id=ticket.id, direction="incoming").order_by("-id").limit(1),
                     Ticket.filter(assignee_id=agent.id, status__in=LIVE)):
        steps = await _plan(queryset)
        assert not any(step.startswith("SCAN") for step in steps), (queryset.sql(), steps)
    assert len(await Event.filter(conversation_id=conversation.id)) == 5
