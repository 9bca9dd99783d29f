"""Routing of escalations (transitions.route): to an online agent with room, round robin; else
the ticket waits in Unassigned and goes to the next agent who comes online; never beyond an
agent's capacity, never one ticket twice, even with routings racing."""

from __future__ import annotations

import asyncio
from typing import Any

from handoff import presence, transitions
from handoff.models import Conversation, Event, Ticket
from handoff.runtime import Runtime
from tests.conftest import settle


def _configure(rt: Runtime, **changes: Any) -> None:
    rt.settings = rt.settings.model_copy(update=changes)


async def _escalate(rt: Runtime, say: Any, key: str) -> Ticket:
    await say("escalate please", conversation=key)
    await settle(rt)
    conversation = await Conversation.get(external_key=key)
    return await Ticket.get(conversation_id=conversation.id)


async def _online(rt: Runtime, make_agent: Any, name: str) -> Any:
    agent, _ = await make_agent(name)
    await presence.connect(rt.hub, agent)
    return agent


async def test_an_escalation_goes_to_an_online_agent_who_is_told_live(client, rt, say, make_agent):
    await make_agent("Offline")
    ana = await _online(rt, make_agent, "Ana")
    async with rt.hub.subscribe() as events:
        ticket = await _escalate(rt, say, "r1")
        kinds = []
        while True:
            event = await asyncio.wait_for(events.__anext__(), 5)
            kinds.append(event["kind"])
            if event["kind"] == "ticket.assigned":
                break
    assert (event["ticket_id"], event["agent_id"], event["by"]) == (ticket.id, ana.id, None)
    assert (ticket.assignee_id, ticket.status) == (ana.id, "on_you")
    assert (await Conversation.get(id=ticket.conversation_id)).assignee_id == ana.id
    assert await Event.filter(ticket_id=ticket.id, kind="auto_assigned", agent_id=ana.id).count() == 1
    assert "ticket.created" in kinds


async def test_round_robin_among_online_agents(client, rt, say, make_agent):
    ana = await _online(rt, make_agent, "Ana")
    bo = await _online(rt, make_agent, "Bo")
    owners = [(await _escalate(rt, say, f"rr{i}")).assignee_id for i in range(4)]
    assert owners == [ana.id, bo.id, ana.id, bo.id]


async def test_away_and_full_agents_are_passed_over_and_waiting_tickets_follow_room(client, rt, say, make_agent):
    _configure(rt, agent_capacity=1)
    ana = await _online(rt, make_agent, "Ana")
    bo = await _online(rt, make_agent, "Bo")
    await presence.set_status(rt.hub, bo, presence.Presence.AWAY)
    first = await _escalate(rt, say, "c1")
    second = await _escalate(rt, say, "c2")
    assert first.assignee_id == ana.id
    assert (second.assignee_id, second.status) == (None, "open")  # Ana is full, Bo is away
    await transitions.close(rt, first.id, ana)
    assert await transitions.route_waiting(rt) == 1  # what the presence sweep does: Ana has room again
    assert (await Ticket.get(id=second.id)).assignee_id == ana.id


async def test_a_ticket_waits_for_the_next_agent_who_comes_online(client, rt, say, make_agent):
    waiting = await _escalate(rt, say, "w1")
    assert waiting.assignee_id is None
    ana, auth = await make_agent("Ana")
    async with client.ws_connect("/api/v1/stream", headers=auth) as ws:
        while True:
            event = await ws.receive_json(timeout=5)
            if event["kind"] == "ticket.assigned":
                break
        assert event["ticket_id"] == waiting.id
    assert (await Ticket.get(id=waiting.id)).assignee_id == ana.id


async def test_an_agent_back_from_away_gets_the_waiting_tickets(client, rt, say, make_agent):
    ana, auth = await make_agent("Ana")
    await presence.connect(rt.hub, ana)
    await presence.set_status(rt.hub, ana, presence.Presence.AWAY)
    waiting = await _escalate(rt, say, "a1")
    assert waiting.assignee_id is None
    response = await client.put("/api/v1/agents/me/presence", json={"status": "online"}, headers=auth)
    assert (await response.json())["agent"]["presence"] == "online"
    assert (await Ticket.get(id=waiting.id)).assignee_id == ana.id


async def test_auto_assign_off_leaves_escalations_in_unassigned(client, rt, say, make_agent):
    _configure(rt, auto_assign=False)
    await _online(rt, make_agent, "Ana")
    ticket = await _escalate(rt, say, "off")
    assert (ticket.assignee_id, ticket.status) == (None, "open")
    assert await transitions.route_waiting(rt) == 0


async def test_racing_routings_never_exceed_capacity_nor_assign_a_ticket_twice(client, rt, say, make_agent):
    _configure(rt, auto_assign=False)
    tickets = [await _escalate(rt, say, f"race{i}") for i in range(10)]
    agents = [await _online(rt, make_agent, name) for name in ("Ana", "Bo", "Cy")]
    _configure(rt, auto_assign=True, agent_capacity=2)
    # Several instances at once: sweeps offering every waiting ticket, and routings of each one.
    await asyncio.gather(*(transitions.route_waiting(rt) for _ in range(3)),
                         *(transitions.route(rt, t.id) for t in tickets),
                         *(transitions.route_waiting(rt, a.id) for a in agents))
    rows = await Ticket.filter(id__in=[t.id for t in tickets])
    held = {a.id: sum(1 for t in rows if t.assignee_id == a.id) for a in agents}
    assert held == {a.id: 2 for a in agents}
    assert sum(1 for t in rows if t.assignee_id is None) == 4
    for ticket in tickets:
        assert await Event.filter(ticket_id=ticket.id, kind="auto_assigned").count() <= 1

