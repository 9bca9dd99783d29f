"""A desk agents can work a shift in (issue 15), through the REST API and the live stream, on
SQLite and PostgreSQL: unread counts per ticket per agent, lists by last activity with keyset
paging through ties, list rows that say whom and what, the rules for others' tickets, and the
events each agent's stream carries."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from handoff.desk.live import wants
from handoff.events import EventKind
from handoff.models import Contact, Conversation, Ticket, utcnow
from tests.conftest import settle
from tests.stream_marks import events_until, mark


async def _taken(client: Any, rt: Any, say: Any, auth: dict[str, str], key: str) -> tuple[Conversation, dict[str, Any]]:
    await say("hello", conversation=key, contact=key)
    await settle(rt)
    conversation = await Conversation.get(external_key=key)
    response = await client.post(f"/api/v1/conversations/{conversation.id}/takeover", headers=auth)
    assert response.status == 201
    return conversation, await response.json()


async def _get(client: Any, path: str, auth: dict[str, str]) -> Any:
    response = await client.get(path, headers=auth)
    assert response.status == 200, await response.text()
    return await response.json()


async def _unread_of(client: Any, auth: dict[str, str], ticket_id: int) -> int:
    rows = (await _get(client, "/api/v1/tickets", auth))["tickets"]
    return next(t["unread"] for t in rows if t["id"] == ticket_id)


async def test_unread_counts_are_per_agent_and_opening_the_ticket_reads_it(client, rt, say, make_agent):
    _, ana = await make_agent("Ana")
    _, bob = await make_agent("Bob")
    conversation, ticket = await _taken(client, rt, say, ana, "u1")
    assert await _unread_of(client, ana, ticket["id"]) == 0  # "hello" came before the ticket
    await say("are you there?", conversation="u1", contact="u1")
    await say("hello??", conversation="u1", contact="u1")
    assert await _unread_of(client, ana, ticket["id"]) == 2
    assert await _unread_of(client, bob, ticket["id"]) == 2
    assert await _get(client, "/api/v1/unread", ana) == {"mine": 2, "unassigned": 0}
    assert await _get(client, "/api/v1/unread", bob) == {"mine": 0, "unassigned": 0}  # not Bob's, not queued

    await _get(client, f"/api/v1/tickets/{ticket['id']}", ana)  # Ana opens it
    assert await _unread_of(client, ana, ticket["id"]) == 0
    assert await _unread_of(client, bob, ticket["id"]) == 2
    await say("one more thing", conversation="u1", contact="u1")
    assert await _unread_of(client, ana, ticket["id"]) == 1
    conversations = (await _get(client, "/api/v1/conversations", ana))["conversations"]
    assert [c["unread"] for c in conversations if c["id"] == conversation.id] == [1]
    assert await _get(client, "/api/v1/unread", ana) == {"mine": 1, "unassigned": 0}
    assert (await client.post(f"/api/v1/tickets/{ticket['id']}/read", headers=ana)).status == 200
    assert await _get(client, "/api/v1/unread", ana) == {"mine": 0, "unassigned": 0}
    assert (await client.post("/api/v1/tickets/999/read", headers=ana)).status == 404

    # An escalated ticket is in everyone's queue count until someone opens it.
    await say("I want a person: escalate", conversation="u2", contact="u2")
    await settle(rt)
    queued = await Ticket.get(conversation__external_key="u2")
    assert queued.assignee_id is None
    await say("still waiting", conversation="u2", contact="u2")
    assert (await _get(client, "/api/v1/unread", bob))["unassigned"] == 1
    await _get(client, f"/api/v1/tickets/{queued.id}", bob)
    assert (await _get(client, "/api/v1/unread", bob))["unassigned"] == 0
    assert (await _get(client, "/api/v1/unread", ana))["unassigned"] == 1


async def _conversations(n: int, key: str) -> list[Conversation]:
    made = []
    for i in range(n):
        contact = await Contact.create(name=f"{key} {i}")
        made.append(await Conversation.create(contact=contact, channel="api", external_key=f"{key}-{i}",
                                              contact_external_id=f"{key}-{i}"))
    return made


async def _all_pages(client: Any, auth: dict[str, str], path: str, key: str, limit: int) -> list[list[int]]:
    pages, before = [], None
    while True:
        params = {"limit": str(limit), **({"before": before} if before else {})}
        body = await (await client.get(path, params=params, headers=auth)).json()
        pages.append([row["id"] for row in body[key]])
        before = body["next_before"]
        if before is None:
            return pages


async def test_lists_follow_last_activity_and_page_through_ties(client, rt, say, make_agent):
    _, ana = await make_agent("Ana")
    rows = await _conversations(7, "tie")
    same = (utcnow() - timedelta(minutes=5)).replace(microsecond=123456)  # all before what the test does next
    await Conversation.filter(id__in=[c.id for c in rows[:5]]).update(last_activity_at=same)  # five share an instant
    await Conversation.filter(id=rows[5].id).update(last_activity_at=same + timedelta(seconds=1))
    await Conversation.filter(id=rows[6].id).update(last_activity_at=same - timedelta(seconds=1))
    expected = [rows[5].id, *sorted((c.id for c in rows[:5]), reverse=True), rows[6].id]
    for limit in (1, 2, 3, 50):
        pages = await _all_pages(client, ana, "/api/v1/conversations", "conversations", limit)
        assert [i for page in pages for i in page] == expected, limit

    # A page cursor keeps its place when its row has news meanwhile: nothing twice, nothing skipped.
    first = await (await client.get("/api/v1/conversations", params={"limit": "3"}, headers=ana)).json()
    await Conversation.filter(id=first["conversations"][-1]["id"]).update(last_activity_at=utcnow())
    rest = await (await client.get("/api/v1/conversations", params={"before": first["next_before"]},
                                   headers=ana)).json()
    assert [c["id"] for c in first["conversations"]] + [c["id"] for c in rest["conversations"]] == expected

    # A customer message brings its conversation, and its ticket, to the top.
    older, _ = await _taken(client, rt, say, ana, "old")
    newer, _ = await _taken(client, rt, say, ana, "new")
    tickets = (await _get(client, "/api/v1/tickets", ana))["tickets"]
    assert [t["conversation_id"] for t in tickets] == [newer.id, older.id]
    await say("news on the older one", conversation="old", contact="old")
    tickets = (await _get(client, "/api/v1/tickets", ana))["tickets"]
    assert [t["conversation_id"] for t in tickets] == [older.id, newer.id]
    assert tickets[0]["last_message"]["text"] == "news on the older one"
    assert (await _get(client, "/api/v1/conversations", ana))["conversations"][0]["id"] == older.id
    # The ticket list pages by the same order through ties too.
    await Conversation.filter(id__in=[older.id, newer.id]).update(last_activity_at=same)
    pages = await _all_pages(client, ana, "/api/v1/tickets", "tickets", 1)
    assert [i for page in pages for i in page] == sorted((t["id"] for t in tickets), reverse=True)


@pytest.mark.parametrize("before", ["1_0", "x_5", "12345678901234567890_1", "1_99999999999", "_5", "99999"])
async def test_a_bad_cursor_is_400(client, make_agent, before):
    _, ana = await make_agent("Ana")
    response = await client.get("/api/v1/conversations", params={"before": before}, headers=ana)
    assert response.status == 400
    assert (await response.json())["error"].startswith("before must be")


async def test_rows_say_who_the_customer_is_what_was_said_last_and_who_answers(client, rt, say, make_agent):
    ana_agent, ana = await make_agent("Ana")
    await say("¿Dónde está mi pedido? Lo pedí hace una semana y no ha llegado nada todavía.",
              conversation="es", contact="es-1")
    await settle(rt)
    row = (await _get(client, "/api/v1/conversations", ana))["conversations"][0]
    assert row["contact"] == {"id": row["contact"]["id"], "name": "Customer", "email": None, "external_id": "es-1"}
    assert row["language"] == "es"
    assert row["last_message"]["author_kind"] == "bot" and row["last_message"]["text"].startswith("echo: ¿Dónde")
    assert row["last_responder"] == {"kind": "bot", "agent": None}

    conversation, ticket = await _taken(client, rt, say, ana, "es")
    await client.post(f"/api/v1/tickets/{ticket['id']}/messages", json={"text": "x" * 500}, headers=ana)
    await client.post(f"/api/v1/tickets/{ticket['id']}/messages", json={"text": "a note", "internal": True}, headers=ana)
    row = next(c for c in (await _get(client, "/api/v1/conversations", ana))["conversations"] if c["id"] == conversation.id)
    assert row["last_message"]["author_kind"] == "agent"  # the note is not the last message
    assert len(row["last_message"]["text"]) == 200 and row["last_message"]["text"].endswith("…")
    assert row["last_responder"] == {"kind": "agent", "agent": {"id": ana_agent.id, "name": "Ana",
                                                                 "email": ana_agent.email}}
    await say("gracias", conversation="es", contact="es-1")
    row = next(c for c in (await _get(client, "/api/v1/conversations", ana))["conversations"] if c["id"] == conversation.id)
    assert row["last_message"]["text"] == "gracias"  # the customer wrote last; Ana answered last
    assert row["last_responder"]["kind"] == "agent" and row["last_responder"]["agent"]["id"] == ana_agent.id

    assert (await client.post(f"/api/v1/tickets/{ticket['id']}/close", headers=ana)).status == 200
    ended = await _get(client, f"/api/v1/conversations/{conversation.id}", ana)  # an ended one opens too
    assert ended["state"] == "ended" and ended["last_message"]["text"] == "gracias"


async def test_others_tickets_need_a_confirmation_and_replies_stay_the_assignees(client, rt, say, make_agent):
    ana_agent, ana = await make_agent("Ana")
    bob_agent, bob = await make_agent("Bob")
    conversation, ticket = await _taken(client, rt, say, ana, "r1")
    tid = ticket["id"]
    mine = (await _get(client, f"/api/v1/tickets/{tid}", ana))["permissions"]
    theirs = (await _get(client, f"/api/v1/tickets/{tid}", bob))["permissions"]
    # compose: False — the test app has no model configured (tests/desk/test_compose.py has one)
    assert mine == {"reply": True, "note": True, "claim": False, "transfer": True, "allow_ai": True, "close": True,
                    "confirm": False, "compose": False}
    assert theirs == {"reply": False, "note": True, "claim": False, "transfer": True, "allow_ai": True, "close": True,
                      "confirm": True, "compose": False}

    reply = await client.post(f"/api/v1/tickets/{tid}/messages", json={"text": "hi"}, headers=bob)
    assert reply.status == 403 and "Ana" in (await reply.json())["error"]
    note = await client.post(f"/api/v1/tickets/{tid}/messages", json={"text": "fyi", "internal": True}, headers=bob)
    assert note.status == 201
    assert (await client.post(f"/api/v1/tickets/{tid}/claim", headers=bob)).status == 409
    for action, body in (("allow-ai", None), ("close", {}), ("transfer", {"agent_id": bob_agent.id}),
                         ("allow-ai", {"confirm": False})):
        response = await client.post(f"/api/v1/tickets/{tid}/{action}", json=body, headers=bob)
        answer = await response.json()
        assert response.status == 409, action
        assert answer["confirm_required"] is True and answer["assignee"]["name"] == "Ana", action
        assert "confirm" in answer["error"]
    fresh = await Ticket.get(id=tid)
    assert (fresh.status, fresh.assignee_id) == ("on_you", ana_agent.id)  # nothing changed
    assert (await Conversation.get(id=conversation.id)).state == "human"
    bad = await client.post(f"/api/v1/tickets/{tid}/allow-ai", json={"confirm": "yes"}, headers=bob)
    assert bad.status == 400 and (await bad.json())["error"] == "confirm must be true or false"

    taken = await client.post(f"/api/v1/tickets/{tid}/transfer", json={"agent_id": bob_agent.id, "confirm": True},
                              headers=bob)
    assert taken.status == 200 and (await taken.json())["assignee"]["id"] == bob_agent.id
    assert (await client.post(f"/api/v1/tickets/{tid}/allow-ai", headers=bob)).status == 200  # now Bob's own
    assert (await Conversation.get(id=conversation.id)).state == "bot"
    again = await client.post(f"/api/v1/tickets/{tid}/close", json={"confirm": True}, headers=ana)
    assert again.status == 409 and "closed" in (await again.json())["error"]
    closed = (await _get(client, f"/api/v1/tickets/{tid}", ana))["permissions"]
    assert not any(closed.values())

    # An unassigned ticket is anyone's to close without a confirmation.
    await say("escalate please", conversation="r2", contact="r2")
    await settle(rt)
    queued = await Ticket.get(conversation__external_key="r2")
    assert (await client.post(f"/api/v1/tickets/{queued.id}/close", headers=bob)).status == 200


async def test_each_agents_stream_carries_their_ticket_messages_and_assignments(client, rt, say, make_agent):
    ana_agent, ana = await make_agent("Ana")
    bob_agent, bob = await make_agent("Bob")
    conversation, ticket = await _taken(client, rt, say, ana, "s1")
    async with client.ws_connect("/api/v1/stream", headers=ana) as ana_ws, \
            client.ws_connect("/api/v1/stream", headers=bob) as bob_ws:
        for ws in (ana_ws, bob_ws):
            assert (await ws.receive_json(timeout=5))["kind"] == EventKind.STREAM_READY

        async def until_now() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
            token = await mark(rt)  # everything committed so far reaches each stream before it
            return await events_until(ana_ws, token), await events_until(bob_ws, token)

        await client.post(f"/api/v1/tickets/{ticket['id']}/messages", json={"text": "on it"}, headers=ana)
        await say("thanks!", conversation="s1", contact="s1")
        ana_events, bob_events = await until_now()
        [to_ana] = [e for e in ana_events if e["kind"] == EventKind.TICKET_MESSAGE]
        assert to_ana["ticket_id"] == ticket["id"] and to_ana["assignee_id"] == ana_agent.id
        assert to_ana["status"] == "on_you"  # the customer replied: the badge follows
        assert not [e for e in bob_events if e["kind"] == EventKind.TICKET_MESSAGE]
        assert [e["kind"] for e in bob_events if e["kind"] == EventKind.MESSAGE_CREATED]  # the lists still update

        await client.post(f"/api/v1/tickets/{ticket['id']}/transfer", json={"agent_id": bob_agent.id}, headers=ana)
        ana_events, bob_events = await until_now()
        [to_bob] = [e for e in bob_events if e["kind"] == EventKind.TICKET_ASSIGNED]
        assert to_bob["ticket_id"] == ticket["id"] and to_bob["by"]["name"] == "Ana"
        assert not [e for e in ana_events if e["kind"] == EventKind.TICKET_ASSIGNED]

        rt.settings = rt.settings.model_copy(update={"auto_assign": False})  # keep it in Unassigned (not routed)
        await say("escalate: a person please", conversation="s2", contact="s2")
        await settle(rt)
        await say("hello? anyone?", conversation="s2", contact="s2")
        for events in await until_now():
            created = [e for e in events if e["kind"] == EventKind.TICKET_CREATED]
            assert created and created[0]["ticket"]["assignee"] is None
            [queued] = [e for e in events if e["kind"] == EventKind.TICKET_MESSAGE]
            assert queued["assignee_id"] is None


def test_the_stream_filter_reads_only_the_addressed_events():
    assert wants({"kind": "ticket.message", "assignee_id": 3}, 3)
    assert not wants({"kind": "ticket.message", "assignee_id": 3}, 4)
    assert wants({"kind": "ticket.message", "assignee_id": None}, 4)
    assert wants({"kind": "ticket.assigned", "agent_id": 4, "by": {"id": 3}}, 4)
    assert not wants({"kind": "ticket.assigned", "agent_id": 4, "by": {"id": 3}}, 3)
    assert not wants({"kind": "ticket.assigned", "agent_id": 4, "by": {"id": 4}}, 4)
    assert wants({"kind": "message.created"}, 9)

