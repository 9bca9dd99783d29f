"""The desk REST API's contract: auth, bad input, wrong states, the live stream, OpenAPI."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from handoff.models import Conversation, Message, Ticket
from tests.conftest import settle


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


async def test_unknown_ids_are_404(client, make_agent):
    _, auth = await make_agent()
    for method, path in [("get", "/api/v1/conversations/999"), ("post", "/api/v1/conversations/999/takeover"),
                         ("get", "/api/v1/tickets/999"), ("post", "/api/v1/tickets/999/claim"),
                         ("post", "/api/v1/tickets/999/allow-ai"), ("post", "/api/v1/tickets/999/close"),
                         ("get", "/api/v1/tickets/abc")]:
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


async def test_health_and_metrics(client, rt, say):
    await say("count me", conversation="m")
    await settle(rt)
    health = await (await client.get("/healthz")).json()
    assert health["ok"] is True and "api" in health["channels"]
    text = await (await client.get("/metrics")).text()
    assert 'handoff_messages_in_total{channel="api"}' in text
    assert "handoff_outbox_backlog" in text
