"""The desk REST API's contract: auth, bad input, wrong states, the live stream, OpenAPI."""

from __future__ import annotations

import logging
import time

import aiohttp
import pytest

from handoff.app import create_app
from handoff.config import Settings
from handoff.db import DatabaseFolderMissing
from handoff.desk import auth as desk_auth
from handoff.desk.auth import create_agent
from handoff.desk.serialize import conversation_json
from handoff.events import ticket_json
from handoff.models import Agent, Contact, Conversation, Message, Ticket
from tests.conftest import settle
from tests.fakes.bots import EchoBot, FixedSummarizer
from tests.statements import Statements


async def _taken(client, rt, say, auth, key="t1"):
    await say("hello", conversation=key)
    await settle(rt)
    conversation = await Conversation.get(external_key=key)
    ticket = await (await client.post(f"/api/v1/conversations/{conversation.id}/takeover", headers=auth)).json()
    return conversation, ticket


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}])
async def test_requests_without_a_valid_token_are_401(client, headers):
    for path in ("/api/v1/conversations", "/api/v1/tickets", "/api/v1/agents"):
        response = await client.get(path, headers=headers)
        assert response.status == 401
        assert (await response.json())["error"]


async def test_inactive_agents_are_refused(client, make_agent):
    agent, auth = await make_agent()
    agent.is_active = False
    await agent.save()
    assert (await client.get("/api/v1/tickets", headers=auth)).status == 401


async def test_a_deactivated_agents_token_stops_working_within_the_token_ttl(client, make_agent, monkeypatch):
    agent, auth = await make_agent()
    assert (await client.get("/api/v1/tickets", headers=auth)).status == 200
    await Agent.filter(id=agent.id).update(is_active=False)
    now = time.monotonic()
    monkeypatch.setattr(desk_auth, "_clock", lambda: now + desk_auth.TOKEN_TTL + 0.1)
    assert (await client.get("/api/v1/tickets", headers=auth)).status == 401


async def test_unknown_ids_are_404(client, make_agent):
    _, auth = await make_agent()
    for method, path in [("get", "/api/v1/conversations/999"), ("post", "/api/v1/conversations/999/takeover"),
                         ("get", "/api/v1/tickets/999"), ("post", "/api/v1/tickets/999/claim"),
                         ("post", "/api/v1/tickets/999/allow-ai"), ("post", "/api/v1/tickets/999/close"),
                         ("get", "/api/v1/tickets/abc"), ("get", "/api/v1/tickets/99999999999"),
                         ("post", "/api/v1/conversations/99999999999/takeover")]:
        response = await getattr(client, method)(path, headers=auth)
        assert response.status == 404, path
        assert "error" in await response.json()


async def test_malformed_bodies_are_400_and_change_nothing(client, rt, say, make_agent):
    _, auth = await make_agent()
    other, _ = await make_agent("Other")
    _, ticket = await _taken(client, rt, say, auth)
    before = await Message.all().count()
    cases = [
        ("messages", b"{oops", "not valid JSON"),
        ("messages", b'"text"', "JSON object"),
        ("messages", b"{}", "text must not be empty"),
        ("messages", b'{"text": 42}', "text must be a string"),
        ("messages", b'{"text": "hi", "internal": "yes"}', "internal must be"),
        ("messages", ('{"text": "%s"}' % ("x" * 10_001)).encode(), "longer than"),
        ("transfer", b'{"note": "x"}', "agent_id"),
        ("transfer", b'{"agent_id": "2"}', "agent_id"),
    ]
    for action, body, error in cases:
        response = await client.post(f"/api/v1/tickets/{ticket['id']}/{action}", data=body,
                                     headers={**auth, "Content-Type": "application/json"})
        assert response.status == 400, (action, body)
        assert error in (await response.json())["error"]
    assert await Message.all().count() == before
    response = await client.post(f"/api/v1/tickets/{ticket['id']}/transfer", json={"agent_id": 9999}, headers=auth)
    assert response.status == 404
    assert (await Ticket.get(id=ticket["id"])).assignee_id != other.id
    assert (await client.get("/api/v1/conversations?state=weird", headers=auth)).status == 400
    assert (await client.get("/api/v1/tickets?status=weird", headers=auth)).status == 400


async def test_wrong_states_are_409_and_change_nothing(client, rt, say, make_agent):
    _, auth = await make_agent()
    conversation, ticket = await _taken(client, rt, say, auth)
    again = await client.post(f"/api/v1/conversations/{conversation.id}/takeover", headers=auth)
    assert again.status == 409
    assert (await again.json())["ticket_id"] == ticket["id"]
    assert (await client.post(f"/api/v1/tickets/{ticket['id']}/allow-ai", headers=auth)).status == 200
    events_before = await conversation.events.all().count()
    for action in ("allow-ai", "close", "claim"):
        response = await client.post(f"/api/v1/tickets/{ticket['id']}/{action}", headers=auth)
        assert response.status == 409, action
        assert "closed" in (await response.json())["error"]
    response = await client.post(f"/api/v1/tickets/{ticket['id']}/messages", json={"text": "late"}, headers=auth)
    assert response.status == 409
    assert await conversation.events.all().count() == events_before

    second = await (await client.post(f"/api/v1/conversations/{conversation.id}/takeover", headers=auth)).json()
    await client.post(f"/api/v1/tickets/{second['id']}/close", headers=auth)
    ended = await client.post(f"/api/v1/conversations/{conversation.id}/takeover", headers=auth)
    assert ended.status == 409
    assert "ended" in (await ended.json())["error"]


async def test_only_the_assignee_replies_but_anyone_adds_notes(client, rt, say, make_agent):
    _, ana = await make_agent("Ana")
    _, ben = await make_agent("Ben")
    _, ticket = await _taken(client, rt, say, ana)
    refused = await client.post(f"/api/v1/tickets/{ticket['id']}/messages", json={"text": "hi"}, headers=ben)
    assert refused.status == 403
    assert "Ana" in (await refused.json())["error"]
    note = await client.post(f"/api/v1/tickets/{ticket['id']}/messages", json={"text": "fyi", "internal": True},
                             headers=ben)
    assert note.status == 201
    assert (await note.json())["private"] is True


async def test_live_stream_pushes_events(client, rt, say, make_agent):
    _, auth = await make_agent()
    token = auth["Authorization"].split()[1]
    async with client.ws_connect(f"/api/v1/stream?token={token}") as ws:
        assert (await ws.receive_json(timeout=5))["kind"] == "stream.ready"
        await say("stream me", conversation="live")
        kinds = []
        while "message.created" not in kinds:
            kinds.append((await ws.receive_json(timeout=5))["kind"])
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect("/api/v1/stream?token=wrong")
    assert refused.value.status == 401


async def test_openapi_document_lists_every_route(client):
    document = await (await client.get("/api/v1/openapi.json")).json()
    assert document["openapi"].startswith("3.")
    served = {(route.resource.canonical, route.method.lower()) for route in client.app.router.routes()
              if route.resource is not None and route.resource.canonical.startswith("/api/v1/")
              and route.method not in ("HEAD", "OPTIONS")}
    documented = {(path, method) for path, operations in document["paths"].items() for method in operations}
    assert len(served) >= 14
    assert served - documented == {("/api/v1/openapi.json", "get")}  # the document itself
    for path in ("/api/v1/conversations", "/api/v1/tickets"):
        listing = document["paths"][path]["get"]
        assert {"q", "limit", "before"} <= {p["name"] for p in listing["parameters"]}
        page = listing["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
        assert "next_before" in document["components"]["schemas"][page]["properties"]


async def test_health_and_metrics(client, rt, say):
    await say("count me", conversation="m")
    await settle(rt)
    health = await (await client.get("/healthz")).json()
    assert health["ok"] is True and "api" in health["channels"]
    text = await (await client.get("/metrics")).text()
    assert 'handoff_messages_in_total{channel="api"}' in text
    assert "handoff_outbox_backlog" in text


async def test_an_sqlite_database_in_a_missing_folder_stops_the_start_with_a_clear_error(aiohttp_client):
    app = create_app(Settings(database_url="sqlite:///no-such-directory/x.db"), bot=EchoBot(),
                     summarizer=FixedSummarizer(), run_migrations=False, workers=False)
    with pytest.raises(DatabaseFolderMissing, match="no-such-directory does not exist"):
        await aiohttp_client(app)


@pytest.mark.parametrize("database_url", ["postgres://handoff@127.0.0.1:1/closed"])
async def test_health_without_a_database_is_a_503_that_keeps_the_cause_in_the_log(
        aiohttp_client, database_url, caplog):
    app = create_app(Settings(database_url=database_url), bot=EchoBot(), summarizer=FixedSummarizer(),
                     run_migrations=False, workers=False)  # tortoise connects on the first query
    client = await aiohttp_client(app)
    with caplog.at_level(logging.ERROR, logger="handoff.routes"):
        answer = await client.get("/healthz")
        assert answer.status == 503
        health = await answer.json()
        assert {k: v for k, v in health.items() if k != "hub"} == {"ok": False, "database": "unreachable"}
        assert health["hub"]["redis"] == "not configured"
    assert any(record.exc_info for record in caplog.records if "database is unreachable" in record.getMessage())


async def _add_conversations(start: int, stop: int, agent: Agent) -> None:
    """Conversations start..stop-1: odd ones taken over by `agent` (an open ticket), even ones with the bot."""
    for i in range(start, stop):
        contact = await Contact.create(name=f"Customer {i}", email=f"c{i}@example.com")
        taken = i % 2 == 1
        conversation = await Conversation.create(
            contact=contact, channel="api", external_key=f"k{i}", contact_external_id=f"ext-{i}",
            state="human" if taken else "bot", assignee=agent if taken else None)
        await Ticket.create(conversation=conversation, open_key=conversation.id if taken else None, channel="api",
                            status="on_you" if taken else "closed", assignee=agent if taken else None,
                            subject=f"Order {i}")


async def test_lists_send_as_many_statements_for_30_rows_as_for_3(aiohttp_client, app_factory):
    # No outbox or sweeper: every statement sent during a request is the request's own.
    client = await aiohttp_client(app_factory(workers=False))
    agent, token = await create_agent("Ana", "ana@example.com")
    auth = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/agents", headers=auth)).status == 200  # the token's agent is remembered now
    counts: dict[tuple[str, int], int] = {}
    for start, total in ((0, 3), (3, 30)):
        await _add_conversations(start, total, agent)
        for path in ("/api/v1/conversations", "/api/v1/tickets", "/api/v1/conversations?q=customer",
                     "/api/v1/tickets?q=CUSTOMER&status=on_you,closed"):
            with Statements() as sql:
                response = await client.get(path, headers=auth)
            assert response.status == 200
            rows = (await response.json())["tickets" if "tickets" in path else "conversations"]
            assert len(rows) == total
            counts[(path, total)] = sql.count
    # The page (with who answered last), its open tickets, their last messages (ids, rows), the
    # caller's unread counts (reads, counts) and the labels.
    for path in ("/api/v1/conversations", "/api/v1/conversations?q=customer"):
        assert counts[(path, 3)] == counts[(path, 30)] <= 7, counts
    # The page, the unread counts (reads, counts), the last messages (ids, rows), the labels.
    for path in ("/api/v1/tickets", "/api/v1/tickets?q=CUSTOMER&status=on_you,closed"):
        assert counts[(path, 3)] == counts[(path, 30)] <= 6, counts


async def test_list_rows_keep_the_shape_of_a_single_conversation_or_ticket(client, make_agent):
    agent, auth = await make_agent()
    await _add_conversations(0, 4, agent)
    conversations = (await (await client.get("/api/v1/conversations", headers=auth)).json())["conversations"]
    tickets = (await (await client.get("/api/v1/tickets", headers=auth)).json())["tickets"]
    assert [c["open_ticket_id"] is not None for c in conversations] == [True, False, True, False]
    for row in conversations:
        assert row == await conversation_json(await Conversation.get(id=row["id"]), agent.id)
    for row in tickets:
        conversation = await Conversation.get(id=row["conversation_id"])
        single = await conversation_json(conversation, agent.id)
        assert row == {**await ticket_json(await Ticket.get(id=row["id"])), "contact": single["contact"],
                       "labels": single["labels"],
                       "last_message": single["last_message"], "last_activity_at": single["last_activity_at"],
                       "unread": 0}


async def _customer(name: str, email: str | None, external_id: str, subject: str | None = None) -> Conversation:
    contact = await Contact.create(name=name, email=email)
    conversation = await Conversation.create(contact=contact, channel="api", external_key=external_id,
                                             contact_external_id=external_id)
    if subject is not None:
        await Ticket.create(conversation=conversation, channel="api", subject=subject, status="closed")
    return conversation


async def test_search_matches_customer_name_email_external_id_and_ticket_subject(client, make_agent):
    _, auth = await make_agent()
    ana = await _customer("Ana Souza", "ana@example.com", "wa:+5511999", subject="Refund for order 42")
    bruno = await _customer("Bruno", "bruno@shop.test", "psid-77", subject="Where is my parcel?")
    chloe = await _customer("Chloé 100%", None, "visitor_1")

    async def found(path: str, q: str) -> list[int]:
        response = await client.get(path, params={"q": q}, headers=auth)
        assert response.status == 200, await response.text()
        body = await response.json()
        rows = body["conversations"] if "conversations" in body else body["tickets"]
        return [r["id"] if "conversations" in body else r["conversation_id"] for r in rows]

    for q, expected in [("souza", [ana.id]), ("ANA", [ana.id]), ("@SHOP.test", [bruno.id]), ("5511", [ana.id]),
                        ("refund", [ana.id]), ("  parcel ", [bruno.id]), ("100%", [chloe.id]),
                        ("_", [chloe.id]), ("nobody", []), ("", [chloe.id, bruno.id, ana.id])]:
        assert await found("/api/v1/conversations", q) == expected, q
        assert await found("/api/v1/tickets", q) == [i for i in expected if i != chloe.id], q  # Chloé has no ticket


async def test_lists_page_newest_first_with_next_before(client, make_agent):
    agent, auth = await make_agent()
    await _add_conversations(0, 5, agent)
    for path, key in (("/api/v1/conversations", "conversations"), ("/api/v1/tickets", "tickets")):
        seen, pages, before = [], [], None
        while True:
            params = {"limit": "2", **({"before": str(before)} if before else {})}
            body = await (await client.get(path, params=params, headers=auth)).json()
            pages.append(len(body[key]))
            seen += [row["id"] for row in body[key]]
            before = body["next_before"]
            if before is None:
                break
            assert before.endswith(f"_{seen[-1]}")  # a cursor: the last row's activity and id
        assert pages == [2, 2, 1]
        assert seen == sorted(seen, reverse=True) and len(set(seen)) == 5
    body = await (await client.get("/api/v1/tickets?status=on_you&limit=1&q=customer", headers=auth)).json()
    assert [t["status"] for t in body["tickets"]] == ["on_you"]
    assert body["next_before"].endswith(f"_{body['tickets'][0]['id']}")
    body = await (await client.get("/api/v1/conversations", headers=auth)).json()
    assert len(body["conversations"]) == 5 and body["next_before"] is None


async def test_bad_list_parameters_are_400(client, make_agent):
    _, auth = await make_agent()
    paging = ["limit=0", "limit=201", "limit=ten", "limit=-1", "limit=2.5", "limit=\uff11", "before=abc", "before=0",
              "before=99999999999", "before=\u00b2", "q=" + "x" * 201, "q=a%00b"]
    cases = [(path, query) for path in ("conversations", "tickets") for query in paging] + [
        ("conversations", "state=bot,weird"), ("tickets", "status=open,"), ("tickets", "status=closed;open"),
        ("tickets", "assignee=\u00b2"), ("tickets", "assignee=99999999999")]
    for path, query in cases:
        response = await client.get(f"/api/v1/{path}?{query}", headers=auth)
        assert response.status == 400, (path, query)
        assert (await response.json())["error"].startswith(query.split("=")[0]), (path, query)
