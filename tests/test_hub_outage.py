"""Live events survive a Redis outage (issue 12, item 5): two instances share the database and a
redis-server this test starts and stops itself. Desk streams and widget tabs on one instance get
what the other publishes while Redis is down (from the event log), each once and in order; a
desk stream resumes after the last seq it saw; /healthz and /metrics show the hub down, then up;
a widget message is delivered only once a tab acknowledges it; the desk's sign-in limits are
shared through Redis and fall back to the process while it is down. Both stores."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from handoff.channels.api import sign
from handoff.desk.auth import create_agent
from handoff.events import EventKind
from handoff.hub import INTERNAL
from handoff.models import Conversation, LiveEvent, Message, Ticket
from handoff.runtime import RUNTIME
from handoff.web import auth
from tests.channels.test_widget import frames_until, new_session, open_ws, own_origin
from tests.conftest import API_SECRET, api_body, settle
from tests.fakes.redis_server import RedisServer

BOUND = 15.0  # seconds: Redis down, an event reaches the other instance from the log well within this


@pytest.fixture
async def redis_server(tmp_path: Any) -> Any:
    server = RedisServer(tmp_path)
    await server.start()
    yield server
    await server.stop()


async def instances(aiohttp_client: Any, app_factory: Any, settings: Any, server: RedisServer) -> tuple[Any, Any]:
    """Two instances on one database and `server`'s Redis; only the first runs the outbox and sweeps."""
    shared = settings.model_copy(update=dict(redis_url=server.url))
    one = await aiohttp_client(app_factory(settings=shared))
    two = await aiohttp_client(app_factory(settings=shared, workers=False))
    await until(lambda: all(c.app[RUNTIME].hub.state()["redis"] == "ok" for c in (one, two)))
    return one, two


async def until(condition: Any, timeout: float = BOUND) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.05)


async def post(client: Any, text: str, conversation: str) -> None:
    body = api_body(text, conversation=conversation)
    resp = await client.post("/webhooks/api", data=body, headers={"X-Handoff-Signature": sign(API_SECRET, body),
                                                                     "Content-Type": "application/json"})
    assert resp.status == 202


async def stream_events(ws: Any, predicate: Any, timeout: float = BOUND) -> list[dict[str, Any]]:
    """Desk stream events until one matches `predicate` (inclusive)."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            event = await ws.receive_json()
            seen.append(event)
            if predicate(event):
                return seen


async def public_seqs(after: int, upto: int) -> list[int]:
    """The seqs a desk stream must carry in (after, upto]: every logged kind but the internal ones."""
    rows = await LiveEvent.filter(id__gt=after, id__lte=upto).order_by("id").values_list("id", "kind")
    return [seq for seq, kind in rows if not kind.startswith(INTERNAL)]


def bot_replies(events: list[dict[str, Any]]) -> int:
    return sum(1 for e in events if e["kind"] == EventKind.MESSAGE_CREATED and e["message"]["author"] == "bot")


async def metric(client: Any, name: str) -> float:
    text = await (await client.get("/metrics")).text()
    found = re.search(rf"^{name} (\S+)$", text, re.M)
    assert found, name
    return float(found.group(1))


async def test_desk_streams_get_every_event_once_while_redis_is_down(
        aiohttp_client: Any, app_factory: Any, settings: Any, redis_server: RedisServer) -> None:
    one, two = await instances(aiohttp_client, app_factory, settings, redis_server)
    _, token = await create_agent("Ana", "ana@example.com")
    ws = await two.ws_connect(f"/api/v1/stream?token={token}")
    ready = await ws.receive_json()
    assert ready["kind"] == EventKind.STREAM_READY
    failures_before = await metric(one, "handoff_hub_publish_failures_total")

    await redis_server.stop()
    await until(lambda: all(c.app[RUNTIME].hub.state()["redis"] == "down" for c in (one, two)))
    health = await (await two.get("/healthz")).json()
    assert health["ok"] is True and health["hub"]["redis"] == "down"  # an instance without Redis still serves
    assert await metric(two, "handoff_hub_redis_up") == 0

    for i in range(10):
        await post(one, f"question {i}", conversation=f"outage-{i}")
    events: list[dict[str, Any]] = []
    async with asyncio.timeout(BOUND):
        while bot_replies(events) < 10:
            events.append(await ws.receive_json())
    await settle(one.app[RUNTIME])
    assert await metric(one, "handoff_hub_publish_failures_total") > failures_before

    await redis_server.start()
    await until(lambda: all(c.app[RUNTIME].hub.state()["redis"] == "ok" for c in (one, two)))
    assert await metric(two, "handoff_hub_redis_up") == 1
    assert await metric(two, "handoff_hub_events_from_log_total") >= 10  # what Redis could not bring
    health = await (await two.get("/healthz")).json()
    assert health["hub"]["redis"] == "ok"
    await post(one, "after the outage", conversation="outage-after")
    async with asyncio.timeout(BOUND):
        while bot_replies(events) < 11:
            events.append(await ws.receive_json())
    await settle(one.app[RUNTIME])
    await asyncio.sleep(0.3)  # anything still on its way
    while True:
        try:
            events.append(await asyncio.wait_for(ws.receive_json(), 0.3))
        except TimeoutError:
            break

    seqs = [e["seq"] for e in events if "seq" in e]
    assert seqs == await public_seqs(ready["seq"], two.app[RUNTIME].hub.last)  # all of them, once, in order
    texts = [e["message"]["text"] for e in events if e["kind"] == EventKind.MESSAGE_CREATED]
    assert sorted(t for t in texts if t.startswith("question")) == sorted(f"question {i}" for i in range(10))
    await ws.close()


async def test_a_desk_stream_resumes_after_its_last_seq(
        aiohttp_client: Any, app_factory: Any, settings: Any, redis_server: RedisServer) -> None:
    one, two = await instances(aiohttp_client, app_factory, settings, redis_server)
    _, token = await create_agent("Ben", "ben@example.com")
    ws = await two.ws_connect(f"/api/v1/stream?token={token}")
    await ws.receive_json()
    await post(one, "before", conversation="resume-1")
    seen = await stream_events(ws, lambda e: bot_replies([e]) == 1)
    last = max(e["seq"] for e in seen if "seq" in e)
    await ws.close()

    await redis_server.stop()  # missed while disconnected, and Redis down too
    for i in range(3):
        await post(one, f"missed {i}", conversation=f"resume-{i + 2}")
    await settle(one.app[RUNTIME])
    await redis_server.start()
    await until(lambda: two.app[RUNTIME].hub.state()["redis"] == "ok")
    await until(lambda: two.app[RUNTIME].hub.last >= one.app[RUNTIME].hub.last)

    ws = await two.ws_connect(f"/api/v1/stream?token={token}&after={last}")
    ready = await ws.receive_json()
    assert ready["kind"] == EventKind.STREAM_READY
    missed = await public_seqs(last, ready["seq"])
    assert len(missed) >= 9  # three messages, three answers, their deliveries
    replayed = [await ws.receive_json() for _ in missed]
    assert [e["seq"] for e in replayed] == missed  # exactly the missed events, in order
    await post(one, "live again", conversation="resume-9")
    live = await stream_events(ws, lambda e: bot_replies([e]) == 1)
    assert all(e["seq"] > ready["seq"] for e in live if "seq" in e)  # nothing twice
    await ws.close()
    await settle(one.app[RUNTIME])

    ahead = await two.ws_connect(f"/api/v1/stream?token={token}&after={two.app[RUNTIME].hub.last + 50}")
    ready = await ahead.receive_json()
    assert await ahead.receive_json() == {"kind": EventKind.STREAM_RESYNC, "seq": ready["seq"]}  # cannot replay
    await ahead.close()
    assert (await two.get("/api/v1/stream?after=abc", headers={"Authorization": f"Bearer {token}"})).status == 400


async def test_widget_replies_reach_a_tab_on_the_other_instance_and_are_delivered_on_ack(
        aiohttp_client: Any, app_factory: Any, settings: Any, redis_server: RedisServer) -> None:
    one, two = await instances(aiohttp_client, app_factory, settings, redis_server)
    _, token = await create_agent("Cleo", "cleo@example.com")
    headers = {"Authorization": f"Bearer {token}"}
    session = await new_session(two)
    tab = await open_ws(two, session["token"])
    await frames_until(tab, lambda f: f["type"] == "ready")
    await tab.send_json({"type": "message", "client_id": "outage-0001", "text": "hello"})
    await frames_until(tab, lambda f: f["type"] == "message" and f["message"]["author"] == "bot")
    await settle(one.app[RUNTIME])
    conversation = await Conversation.get(external_key=session["visitor_id"])
    assert (await one.post(f"/api/v1/conversations/{conversation.id}/takeover", headers=headers)).status == 201
    ticket = await Ticket.get(conversation_id=conversation.id)
    desk = await one.ws_connect(f"/api/v1/stream?token={token}")
    await desk.receive_json()

    await redis_server.stop()
    await until(lambda: all(c.app[RUNTIME].hub.state()["redis"] == "down" for c in (one, two)))
    for i in range(3):
        resp = await one.post(f"/api/v1/tickets/{ticket.id}/messages", json={"text": f"reply {i}"}, headers=headers)
        assert resp.status == 201, await resp.text()
    frames = await frames_until(tab, lambda f: f["type"] == "message" and f["message"]["text"] == "reply 2", BOUND)
    shown = [f["message"] for f in frames if f["type"] == "message" and f["message"]["author"] == "agent"]
    assert [m["text"] for m in shown] == ["reply 0", "reply 1", "reply 2"]  # each once, in order
    await settle(one.app[RUNTIME])
    rows = await Message.filter(conversation_id=conversation.id, author_kind="agent").order_by("id")
    assert [r.delivery_status for r in rows] == ["sent"] * 3  # pushed, not acknowledged yet

    await tab.send_json({"type": "delivered", "ids": [shown[0]["id"], shown[1]["id"], 999999]})
    await until_db(lambda: Message.filter(id__in=[shown[0]["id"], shown[1]["id"]], delivery_status="delivered").count(),
                   2)
    assert (await Message.get(id=shown[2]["id"])).delivery_status == "sent"
    live = await stream_events(desk, lambda e: e["kind"] == EventKind.MESSAGE_UPDATED
                               and e.get("message_id") == shown[1]["id"] and e["delivery_status"] == "delivered")
    assert live  # the desk sees the real status, live (from the log while Redis is down)

    # Redis back, the tab reconnects after the first reply: the replay is acknowledged too.
    await redis_server.start()
    await tab.close()
    tab = await open_ws(two, session["token"], since=shown[1]["id"])
    replay = await frames_until(tab, lambda f: f["type"] == "ready")
    assert [f["message"]["id"] for f in replay if f["type"] == "message"] == [shown[2]["id"]]
    await tab.send_json({"type": "delivered", "ids": [shown[2]["id"]]})
    await until_db(lambda: Message.filter(id=shown[2]["id"], delivery_status="delivered").count(), 1)
    await tab.close()
    await desk.close()
    await settle(one.app[RUNTIME])


async def until_db(query: Any, expected: int, timeout: float = BOUND) -> None:
    async with asyncio.timeout(timeout):
        while await query() != expected:
            await asyncio.sleep(0.05)
async def test_signin_limits_are_shared_and_fall_back_to_the_process_while_redis_is_down(
        aiohttp_client: Any, app_factory: Any, settings: Any, redis_server: RedisServer) -> None:
    one, two = await instances(aiohttp_client, app_factory, settings, redis_server)
    await create_agent("Dan", "dan@example.com")

    async def login(client: Any) -> int:
        resp = await client.post("/desk/login", json={"email": "dan@example.com", "password": "wrong"},
                                 headers={"Origin": own_origin(client)})
        return resp.status

    amount = auth.SIGNIN_FAILURES.amount
    statuses = [await login(one if i % 2 else two) for i in range(amount)]
    assert statuses == [401] * amount
    assert await login(one) == 429 and await login(two) == 429  # one limit across the instances

    await redis_server.stop()  # fail open to per-process limits: nobody is locked out by the outage
    assert await login(one) == 401
    statuses = [await login(one) for _ in range(amount)]
    assert statuses[-1] == 429  # still limited, per process
