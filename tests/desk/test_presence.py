"""Agent presence: online while a desk stream is open (on any instance), away when the agent says
so, offline otherwise; an instance that dies leaves rows that expire; each change is live."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from handoff import db, presence
from handoff.models import AgentConnection, AgentPresence
from handoff.validation import PresenceBody
from tests.desk.test_openapi import _check, _document


async def _presence(client: Any, auth: dict[str, str]) -> dict[str, str]:
    response = await client.get("/api/v1/agents", headers=auth)
    assert response.status == 200
    return {a["name"]: a["presence"] for a in (await response.json())["agents"]}


async def _presence_event(ws: Any, agent_id: int, presence: str) -> dict[str, Any]:
    """The next `agent.presence` event saying `agent_id` is now `presence` (others are skipped)."""
    while True:
        event = await ws.receive_json(timeout=5)
        if event["kind"] == "agent.presence" and (event["agent_id"], event["presence"]) == (agent_id, presence):
            return event


async def test_a_desk_stream_makes_an_agent_online_and_its_end_offline(client, make_agent):
    ana, ana_auth = await make_agent("Ana")
    _, bo_auth = await make_agent("Bo")
    assert await _presence(client, bo_auth) == {"Ana": "offline", "Bo": "offline"}
    async with client.ws_connect("/api/v1/stream", headers=bo_auth) as watcher:
        assert (await watcher.receive_json(timeout=5))["kind"] == "stream.ready"
        async with client.ws_connect("/api/v1/stream", headers=ana_auth) as ws:
            assert (await ws.receive_json(timeout=5))["kind"] == "stream.ready"
            await _presence_event(watcher, ana.id, "online")
            assert await _presence(client, bo_auth) == {"Ana": "online", "Bo": "online"}
            # A second tab of the same agent changes nothing, and closing it leaves her online.
            async with client.ws_connect("/api/v1/stream", headers=ana_auth) as second:
                await second.receive_json(timeout=5)
            await asyncio.sleep(0.2)
            assert (await _presence(client, bo_auth))["Ana"] == "online"
        await _presence_event(watcher, ana.id, "offline")
    for _ in range(100):  # the watcher's own row goes as its stream ends, just after
        if not await AgentConnection.exists():
            break
        await asyncio.sleep(0.05)
    assert not await AgentConnection.exists()


async def test_away_is_said_by_the_agent_and_shown_while_connected(client, make_agent):
    ana, auth = await make_agent("Ana")
    async with client.ws_connect("/api/v1/stream", headers=auth) as ws:
        await _presence_event(ws, ana.id, "online")
        response = await client.put("/api/v1/agents/me/presence", json={"status": "away"}, headers=auth)
        assert response.status == 200
        assert (await response.json())["agent"] == {"id": ana.id, "name": "Ana", "email": ana.email,
                                                    "presence": "away"}
        await _presence_event(ws, ana.id, "away")
        assert await _presence(client, auth) == {"Ana": "away"}
        back = await client.put("/api/v1/agents/me/presence", json={"status": "online"}, headers=auth)
        assert (await back.json())["agent"]["presence"] == "online"
        await _presence_event(ws, ana.id, "online")
    # Without a stream an agent is offline, whatever they said.
    response = await client.put("/api/v1/agents/me/presence", json={"status": "away"}, headers=auth)
    assert (await response.json())["agent"]["presence"] == "offline"


@pytest.mark.parametrize("body", [{}, {"status": "busy"}, {"status": 1}, [], "away"])
async def test_a_bad_presence_body_is_400_and_changes_nothing(client, make_agent, body):
    _, auth = await make_agent("Ana")
    response = await client.put("/api/v1/agents/me/presence", json=body, headers=auth)
    assert response.status == 400
    assert (await response.json())["error"]
    assert not await AgentPresence.filter(status="away").exists()


async def test_presence_needs_a_token(client):
    response = await client.put("/api/v1/agents/me/presence", json={"status": "away"})
    assert response.status == 401
    assert "error" in await response.json()


async def test_a_stream_on_another_instance_counts(aiohttp_client, app_factory, client, make_agent):
    other = await aiohttp_client(app_factory())
    _, auth = await make_agent("Ana")
    async with other.ws_connect("/api/v1/stream", headers=auth) as ws:
        await ws.receive_json(timeout=5)
        assert await _presence(client, auth) == {"Ana": "online"}


async def test_the_rows_of_a_dead_instance_expire_and_the_agent_goes_offline(client, rt, make_agent):
    ana, auth = await make_agent("Ana")
    # What an instance that died mid-stream leaves: a row nobody renews any more.
    connection_id, came_online = await presence.connect(rt.hub, ana)
    assert came_online
    assert await _presence(client, auth) == {"Ana": "online"}
    await AgentConnection.filter(id=connection_id).update(expires_at=db.clock(-1))
    assert await _presence(client, auth) == {"Ana": "offline"}  # expired is offline at once
    async with rt.hub.subscribe() as events:
        assert await presence.sweep(rt.hub) == 1
        event = await asyncio.wait_for(events.__anext__(), 5)
    assert (event["kind"], event["agent_id"], event["presence"]) == ("agent.presence", ana.id, "offline")
    assert await presence.sweep(rt.hub) == 0  # each row is swept once, by one instance
    assert not await AgentConnection.exists()


async def test_a_heartbeat_renews_the_row_and_rewrites_a_swept_one(client, rt, make_agent):
    ana, _ = await make_agent("Ana")
    connection_id, _ = await presence.connect(rt.hub, ana)
    await AgentConnection.filter(id=connection_id).update(expires_at=db.clock(1))
    await presence.heartbeat(ana.id, connection_id)
    assert await AgentConnection.filter(id=connection_id, expires_at__gt=db.clock(presence.CONNECTION_TTL - 5)).exists()
    await AgentConnection.filter(id=connection_id).delete()  # a sweep took it while this instance stalled
    await presence.heartbeat(ana.id, connection_id)
    assert (await presence.presence_of([ana.id]))[ana.id] == presence.Presence.ONLINE


async def test_presence_answers_match_the_openapi_document(client, make_agent):
    document = await _document(client)
    _, auth = await make_agent("Ana")
    body = document["paths"]["/api/v1/agents/me/presence"]["put"]["requestBody"]["content"]["application/json"]
    assert body["schema"] == PresenceBody.model_json_schema()
    response = await client.put("/api/v1/agents/me/presence", json={"status": "away"}, headers=auth)
    _check(document, "/api/v1/agents/me/presence", "put", 200, await response.text())
    for status in (400, 401):
        assert str(status) in document["paths"]["/api/v1/agents/me/presence"]["put"]["responses"]
    response = await client.get("/api/v1/agents", headers=auth)
    _check(document, "/api/v1/agents", "get", 200, await response.text())
