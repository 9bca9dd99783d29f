"""The widget channel: identity HMAC vectors, origins, rate limits and tokens, then through the app:
sessions, isolation, replay, dedupe, uploads, and pushes across instances."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest
import redis.asyncio as redis
from aiohttp import FormData
from limits import RateLimitItemPerSecond

from handoff.channels.widget import WidgetChannel
from handoff.channels.widget.limits import MESSAGES, WidgetLimits
from handoff.channels.widget.session import (
    SESSION_SCOPE,
    OriginPolicy,
    identity_hash,
    origin_of,
    verify_identity,
)
from handoff.channels.widget.socket import outbound_json
from handoff.channels.widget.texts import texts_frame
from handoff.config import Settings
from handoff.models import Conversation, KeyValue, Message
from handoff.notices import widget_texts
from handoff.outbox import address_of
from handoff.runtime import RUNTIME
from handoff.schema import OutboundMessage
from tests.conftest import settle

# RFC 4231, test case 2 (key "Jefe"), and test case 1 (20 bytes of 0x0b, data "Hi There").
RFC4231_2 = ("Jefe", "what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
RFC4231_1 = ("\x0b" * 20, "Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")


@pytest.mark.parametrize(("secret", "user_id", "expected"), [RFC4231_1, RFC4231_2])
def test_identity_hash_matches_known_vectors(secret: str, user_id: str, expected: str) -> None:
    assert identity_hash(secret, user_id) == expected
    assert verify_identity(secret, user_id, expected)
    assert verify_identity(secret, user_id, expected.upper())


def test_identity_verification_fails_closed() -> None:
    secret, user_id, good = RFC4231_2
    assert not verify_identity(secret, user_id, good[:-1] + ("0" if good[-1] != "0" else "1"))
    assert not verify_identity(secret, "someone else", good)
    assert not verify_identity("", user_id, identity_hash("", user_id))  # no site secret: nobody is verified
    assert not verify_identity(secret, user_id, "")
    assert not verify_identity(secret, user_id, None)  # type: ignore[arg-type]


def test_origin_normalization() -> None:
    assert origin_of("https://Shop.Example.com:443/path?q") == "https://shop.example.com"
    assert origin_of("http://localhost:8080/") == "http://localhost:8080"
    assert origin_of("not a url") == ""


def test_origin_allow_list() -> None:
    policy = OriginPolicy("https://shop.example.com, https://www.example.org:8443", "https://help.example.com")
    assert policy.allows("https://shop.example.com")
    assert policy.allows("https://www.example.org:8443")
    assert policy.allows("https://help.example.com")  # the server's public origin
    assert policy.allows("http://127.0.0.1:5555", own_origin="http://127.0.0.1:5555")  # same-origin
    assert not policy.allows("https://evil.example.net")
    assert not policy.allows("https://shop.example.com.evil.net")
    assert not policy.allows("http://shop.example.com")  # scheme matters
    assert not policy.allows(None)
    assert not policy.allows("null")
    assert OriginPolicy("*", "").allows("https://anything.example")


REDIS = "redis://127.0.0.1:6379/0"
THREE_A_SECOND = RateLimitItemPerSecond(3, 1, namespace="test")


def unique_prefix() -> str:
    return f"handoff-test:{uuid.uuid4().hex}"


async def test_limits_without_redis_are_per_process() -> None:
    here, there = WidgetLimits(), WidgetLimits()
    assert not here.shared
    assert [await here.allow(THREE_A_SECOND, "v1") for _ in range(4)] == [True, True, True, False]
    assert await here.allow(THREE_A_SECOND, "v2")  # windows are per key
    assert await there.allow(THREE_A_SECOND, "v1")  # another process keeps its own windows
    await asyncio.sleep(1.05)
    assert await here.allow(THREE_A_SECOND, "v1")


async def test_limits_with_redis_are_one_limit_across_instances() -> None:
    prefix = unique_prefix()
    here, there = WidgetLimits(REDIS, key_prefix=prefix), WidgetLimits(REDIS, key_prefix=prefix)
    client = redis.from_url(REDIS)
    try:
        assert here.shared and there.shared
        assert [await here.allow(THREE_A_SECOND, "v1") for _ in range(2)] == [True, True]
        assert [await there.allow(THREE_A_SECOND, "v1") for _ in range(2)] == [True, False]
        assert not await here.allow(THREE_A_SECOND, "v1")
        assert await there.allow(THREE_A_SECOND, "v2")
        keys = sorted([key.decode() async for key in client.scan_iter(match=prefix + "*")])
        assert keys == [f"{prefix}:test/v1/3/1/second", f"{prefix}:test/v2/3/1/second"]
        assert all(0 < ttl <= 1000 for ttl in [await client.pttl(key) for key in keys])  # they expire with the window
        await asyncio.sleep(1.05)
        assert await there.allow(THREE_A_SECOND, "v1")
    finally:
        await here.close()
        await there.close()
        await client.aclose()


async def test_check_counts_nothing_here_or_in_redis() -> None:
    """`check` (the desk's sign-in asks it before counting a failure) tells without spending a hit."""
    prefix = unique_prefix()
    for limits, other in [(WidgetLimits(), None),
                          (WidgetLimits(REDIS, key_prefix=prefix), WidgetLimits(REDIS, key_prefix=prefix))]:
        assert [await limits.check(THREE_A_SECOND, "v1") for _ in range(5)] == [True] * 5
        assert [await limits.allow(THREE_A_SECOND, "v1") for _ in range(3)] == [True] * 3
        assert not await limits.check(THREE_A_SECOND, "v1") and await limits.check(THREE_A_SECOND, "v2")
        if other is not None:  # the full window is seen by every instance
            assert not await other.check(THREE_A_SECOND, "v1")
            await other.close()
        await limits.close()


async def test_limits_fall_back_to_the_process_when_redis_is_unreachable(caplog: Any) -> None:
    limits = WidgetLimits("redis://127.0.0.1:1/0", key_prefix=unique_prefix())  # nothing listens on port 1
    try:
        assert [await limits.allow(THREE_A_SECOND, "v1") for _ in range(4)] == [True, True, True, False]
        warnings = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
        assert len(warnings) == 1  # once until Redis answers again
    finally:
        await limits.close()


def test_outbound_json_marks_notices_and_agents() -> None:
    notice = outbound_json(OutboundMessage(id=7, kind="notice", text="Waiting", conversation_id=1, notice="waiting"))
    assert notice["kind"] == "notice" and notice["notice"] == "waiting" and notice["author"] == "system"
    agent = outbound_json(OutboundMessage(id=8, kind="agent", text="Hi", conversation_id=1, author_name="Alice"))
    assert agent["kind"] == "message" and agent["author"] == "agent" and agent["author_name"] == "Alice"


# -- through the app: sessions, origins, isolation, replay, dedupe ------------------------


async def finish(client: Any, *sockets: Any) -> None:
    """Close the sockets and let the bot and the outbox finish before the app stops."""
    for ws in sockets:
        await ws.close()
    await settle(client.app[RUNTIME])


def own_origin(client: Any) -> str:
    return f"http://{client.host}:{client.port}"


async def new_session(client: Any, **body: Any) -> dict[str, Any]:
    resp = await client.post("/widget/session", json=body, headers={"Origin": own_origin(client)})
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def open_ws(client: Any, token: str, since: int = 0) -> Any:
    ws = await client.ws_connect(f"/widget/ws?token={token}&since={since}", headers={"Origin": own_origin(client)})
    return ws


async def frames_until(ws: Any, predicate: Any, timeout: float = 5.0) -> list[dict[str, Any]]:
    """Every frame received until one matches `predicate` (inclusive)."""
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            frame = await ws.receive_json()
            seen.append(frame)
            if predicate(frame):
                return seen


async def say(ws: Any, client_id: str, text: str) -> dict[str, Any]:
    await ws.send_json({"type": "message", "client_id": client_id, "text": text})
    frames = await frames_until(ws, lambda f: f.get("client_id") == client_id and f["type"] in ("ack", "error"))
    return frames[-1]


async def test_session_tokens_are_long_random_and_stored_hashed(client: Any) -> None:
    a, b = await new_session(client), await new_session(client)
    assert len(a["token"]) >= 43 and a["token"] != b["token"]  # token_urlsafe(32): 256 bits
    assert a["visitor_id"] != b["visitor_id"]
    keys = set(await KeyValue.filter(scope=SESSION_SCOPE).values_list("key", flat=True))
    assert a["token"] not in keys and len(keys) == 2
    again = await new_session(client, token=a["token"])
    assert again["token"] == a["token"] and again["visitor_id"] == a["visitor_id"]
    fresh = await new_session(client, token="x" * 43)
    assert fresh["token"] != a["token"]


async def test_websocket_refuses_unknown_tokens_and_foreign_origins(client: Any) -> None:
    session = await new_session(client)
    resp = await client.get(f"/widget/ws?token={'y' * 43}", headers={"Origin": own_origin(client)})
    assert resp.status == 401
    resp = await client.get(f"/widget/ws?token={session['token']}", headers={"Origin": "https://evil.example"})
    assert resp.status == 403
    resp = await client.get(f"/widget/ws?token={session['token']}")
    assert resp.status == 403
    resp = await client.post("/widget/session", json={}, headers={"Origin": "https://evil.example"})
    assert resp.status == 403


async def test_identity_verification_binds_the_user(aiohttp_client: Any, app_factory: Any, settings: Any) -> None:
    secret, user_id, good = RFC4231_2
    client = await aiohttp_client(app_factory(settings=settings.model_copy(update=dict(widget_identity_secret=secret))))
    ok = await new_session(client, user_id=user_id, user_hash=good, name="Jo", email="jo@example.com")
    assert ok["verified"] is True
    twice = await new_session(client, user_id=user_id, user_hash=good)
    assert twice["visitor_id"] == ok["visitor_id"]  # the conversation follows the user
    resp = await client.post(
        "/widget/session", json={"user_id": user_id, "user_hash": "0" * 64}, headers={"Origin": own_origin(client)}
    )
    assert resp.status == 403
    anonymous = await new_session(client)
    assert anonymous["verified"] is False and anonymous["visitor_id"] != ok["visitor_id"]


async def test_resend_with_the_same_client_id_is_stored_once(client: Any) -> None:
    session = await new_session(client)
    ws = await open_ws(client, session["token"])
    await frames_until(ws, lambda f: f["type"] == "ready")
    first = await say(ws, "client-id-0001", "hello there")
    assert first["type"] == "ack" and first["id"]
    await ws.close()
    ws = await open_ws(client, session["token"], since=first["id"])  # reconnect, resend the unacked one
    await frames_until(ws, lambda f: f["type"] == "ready")
    second = await say(ws, "client-id-0001", "hello there")
    assert second["id"] == first["id"]
    rows = await Message.filter(channel="widget", provider_id=f"{session['visitor_id']}:client-id-0001")
    assert len(rows) == 1
    await finish(client, ws)


async def test_replay_since_the_last_seen_id(client: Any) -> None:
    session = await new_session(client)
    ws = await open_ws(client, session["token"])
    await frames_until(ws, lambda f: f["type"] == "ready")
    one = await say(ws, "client-id-0011", "first")
    two = await say(ws, "client-id-0012", "second")
    await ws.close()
    # Let the bot's answer be delivered first: one arriving during the reconnect would come
    # live as well as in the replay, by design (widget.py registers before replaying).
    await settle(client.app[RUNTIME])
    ws = await open_ws(client, session["token"], since=one["id"])
    frames = await frames_until(ws, lambda f: f["type"] == "ready")
    replayed = [f["message"] for f in frames if f["type"] == "message"]
    ids = [m["id"] for m in replayed]
    assert one["id"] not in ids and two["id"] in ids
    assert ids == sorted(ids) and all(i > one["id"] for i in ids)
    mine = next(m for m in replayed if m["id"] == two["id"])
    assert mine["client_id"] == "client-id-0012" and mine["author"] == "customer"
    await finish(client, ws)


async def test_the_first_frame_carries_the_labels_in_the_visitors_language(client: Any) -> None:
    session = await new_session(client)
    ws = await open_ws(client, session["token"])
    first = await ws.receive_json()
    assert first == texts_frame(None)  # nothing said yet, no browser language: the default language
    assert first["language"] == "en" and first["max_text"] == 8000
    await frames_until(ws, lambda f: f["type"] == "ready")
    await say(ws, "client-id-0101", "Hola, ¿cuándo llega mi pedido a Madrid? Lo compré la semana pasada.")
    # The message made the conversation Spanish: the widget's words switch live, no reconnect needed.
    live = await frames_until(ws, lambda f: f["type"] == "texts")
    assert live[-1] == texts_frame("es")
    await ws.close()
    await settle(client.app[RUNTIME])
    assert (await Conversation.get(external_key=session["visitor_id"])).language == "es"
    ws = await open_ws(client, session["token"])
    first = await ws.receive_json()
    assert first == texts_frame("es")
    assert first["texts"]["waiting"] != widget_texts("en")["waiting"]
    await finish(client, ws)


async def test_visitors_never_see_each_other(client: Any) -> None:
    alice, bob = await new_session(client), await new_session(client)
    ws_a = await open_ws(client, alice["token"])
    await frames_until(ws_a, lambda f: f["type"] == "ready")
    secret = await say(ws_a, "client-id-0021", "my card ends 4242")
    ws_b = await open_ws(client, bob["token"])
    frames = await frames_until(ws_b, lambda f: f["type"] == "ready")
    assert not [f for f in frames if f["type"] == "message"]
    # Bob reusing Alice's client id gets his own message, not hers.
    mine = await say(ws_b, "client-id-0021", "hello")
    assert mine["type"] == "ack" and mine["id"] != secret["id"]
    texts = [f["message"]["text"] for f in await _drain(ws_b) if f["type"] == "message"]
    assert "my card ends 4242" not in texts
    await finish(client, ws_a, ws_b)


async def _drain(ws: Any, quiet: float = 0.5) -> list[dict[str, Any]]:
    frames: list[dict[str, Any]] = []
    while True:
        try:
            frames.append(await asyncio.wait_for(ws.receive_json(), quiet))
        except (TimeoutError, TypeError):
            return frames


async def test_messages_are_rate_limited_per_visitor(client: Any) -> None:
    session = await new_session(client)
    ws = await open_ws(client, session["token"])
    await frames_until(ws, lambda f: f["type"] == "ready")
    for i in range(14):
        await ws.send_json({"type": "message", "client_id": f"burst-client-{i:04d}", "text": f"m{i}"})
    acks, limited = 0, 0
    async with asyncio.timeout(10):
        while acks + limited < 14:
            frame = await ws.receive_json()
            if frame["type"] == "ack":
                acks += 1
            elif frame.get("error") == "rate_limited":
                limited += 1
                assert frame["retry"] > 0
    assert limited >= 1 and acks <= 12
    await finish(client, ws)


async def test_uploads_are_size_limited_and_owned(
    aiohttp_client: Any, app_factory: Any, settings: Any, tmp_path: Any
) -> None:
    from handoff.media import MAX_FILE_BYTES

    client = await aiohttp_client(app_factory(settings=settings.model_copy(update=dict(media_dir=str(tmp_path / "media")))))

    alice, bob = await new_session(client), await new_session(client)
    form = FormData()
    form.add_field("file", b"\x89PNG\r\n\x1a\n" + b"0" * 100, filename="pic.png", content_type="image/png")
    resp = await client.post(
        "/widget/upload", data=form, headers={"Origin": own_origin(client), "Authorization": f"Bearer {alice['token']}"}
    )
    assert resp.status == 201, await resp.text()
    uploaded = await resp.json()
    assert uploaded["url"].startswith(settings.public_url + "/media/")
    path = "/media/" + uploaded["url"].split("/media/", 1)[1]
    for served in (path, path.replace("/media/", "/widget/files/", 1)):  # older widget URLs keep working
        got = await client.get(served)
        assert got.status == 200 and got.headers["X-Content-Type-Options"] == "nosniff"
        assert (await got.read()).startswith(b"\x89PNG")
    big = FormData()
    big.add_field("file", b"0" * (MAX_FILE_BYTES + 1), filename="big.bin")
    resp = await client.post(
        "/widget/upload", data=big, headers={"Origin": own_origin(client), "Authorization": f"Bearer {alice['token']}"}
    )
    assert resp.status == 413
    # Bob cannot attach Alice's file to his message.
    ws = await open_ws(client, bob["token"])
    await frames_until(ws, lambda f: f["type"] == "ready")
    await ws.send_json({"type": "message", "client_id": "client-id-0031", "text": "x", "attachments": [uploaded["id"]]})
    ack = (await frames_until(ws, lambda f: f.get("client_id") == "client-id-0031"))[-1]
    row = await Message.get(id=ack["id"])
    assert row.attachments in ([], None) or all(uploaded["id"] not in json.dumps(a) for a in row.attachments)
    await finish(client, ws)


async def test_typing_goes_both_ways(client: Any, make_agent: Any) -> None:
    from handoff.models import Conversation

    rt = client.app[RUNTIME]
    session = await new_session(client)
    ws = await open_ws(client, session["token"])
    await frames_until(ws, lambda f: f["type"] == "ready")
    await say(ws, "client-id-0041", "hello")
    bot_typing = await frames_until(ws, lambda f: f["type"] == "typing")  # while the bot thinks
    assert bot_typing[-1] == {"type": "typing", "typing": True, "name": None}
    await settle(rt)
    conversation = await Conversation.get(channel="widget", external_key=session["visitor_id"])
    async with rt.hub.subscribe() as events:
        await ws.send_json({"type": "typing", "typing": True})
        async with asyncio.timeout(5):
            event = await anext(e async for e in events if e["kind"] == "typing")
    assert event == {"kind": "typing", "conversation_id": conversation.id, "channel": "widget",
                     "who": "customer", "typing": True}
    agent, headers = await make_agent("Ann")
    resp = await client.post(f"/api/v1/conversations/{conversation.id}/takeover", headers=headers)
    assert resp.status == 201
    resp = await client.post(f"/api/v1/conversations/{conversation.id}/typing", json={"typing": True},
                             headers=headers)
    assert resp.status == 200
    frames = await frames_until(ws, lambda f: f["type"] == "typing")
    assert frames[-1] == {"type": "typing", "typing": True, "name": "Ann"}
    await finish(client, ws)


def shared_widget(settings: Settings, prefix: str = "") -> WidgetChannel:
    """A widget channel whose limits are in Redis under a key prefix of this test's own."""
    return WidgetChannel(settings, WidgetLimits(settings.redis_url, key_prefix=prefix or unique_prefix()))


async def test_the_widget_files_keep_their_public_urls(client: Any) -> None:
    for path, content_type in [("/widget.js", "application/javascript"), ("/static/widget.js", "application/javascript"),
                               ("/widget.css", "text/css"), ("/static/widget.css", "text/css")]:
        resp = await client.get(path)
        assert resp.status == 200, path
        assert resp.content_type == content_type and resp.headers["Access-Control-Allow-Origin"] == "*"
        body = await resp.text()
        assert ("document.currentScript" in body) if path.endswith(".js") else (".hw-" in body)


async def test_a_visitor_has_one_message_limit_across_instances(
    aiohttp_client: Any, app_factory: Any, settings: Settings
) -> None:
    """Two tabs of one visitor on two instances sharing Redis: together they send MESSAGES.amount."""
    shared, prefix = settings.model_copy(update=dict(redis_url=REDIS)), unique_prefix()
    one = await aiohttp_client(app_factory(settings=shared, channels=[shared_widget(shared, prefix)]))
    two = await aiohttp_client(app_factory(settings=shared, channels=[shared_widget(shared, prefix)], workers=False))
    session = await new_session(one)
    tabs = [await open_ws(one, session["token"]), await open_ws(two, session["token"])]
    for ws in tabs:
        await frames_until(ws, lambda f: f["type"] == "ready")
    answers = [(await say(tabs[i % 2], f"shared-limit-{i:04d}", f"m{i}"))["type"] for i in range(MESSAGES.amount + 2)]
    assert answers.count("ack") == MESSAGES.amount and answers[-2:] == ["error", "error"]
    await finish(two, tabs[1])
    await finish(one, tabs[0])


async def test_a_visitor_on_one_instance_gets_what_another_instance_delivers(
    aiohttp_client: Any, app_factory: Any, settings: Settings
) -> None:
    """Two instances share the database and Redis: the visitor's socket is on `front`, which runs no
    outbox; `worker` delivers the bot's reply and the agent's typing, and they reach the visitor."""
    shared = settings.model_copy(update=dict(redis_url=REDIS))
    worker = await aiohttp_client(app_factory(settings=shared, channels=[shared_widget(shared)]))
    front = await aiohttp_client(app_factory(settings=shared, channels=[shared_widget(shared)], workers=False))
    session = await new_session(front)
    ws = await open_ws(front, session["token"])
    await frames_until(ws, lambda f: f["type"] == "ready")
    await asyncio.sleep(0.2)  # let both instances' Redis subscriptions settle
    assert (await say(ws, "cross-0001", "hello across instances"))["type"] == "ack"
    frames = await frames_until(ws, lambda f: f["type"] == "message" and f["message"]["author"] == "bot",
                                timeout=15)
    assert frames[-1]["message"]["text"] == "echo: hello across instances"

    conversation = await Conversation.get(external_key=session["visitor_id"])
    widget = worker.app[RUNTIME].channels["widget"]
    await widget.typing(address_of(conversation), True, "Ana")
    typing = await frames_until(ws, lambda f: f["type"] == "typing")
    assert typing[-1] == {"type": "typing", "typing": True, "name": "Ana"}
    await finish(front, ws)
    await settle(worker.app[RUNTIME])


async def test_agent_typing_refuses_bad_input(client: Any, make_agent: Any) -> None:
    _, headers = await make_agent("Ann")
    cases = [("/api/v1/conversations/999/typing", {"typing": True}, 404),
             ("/api/v1/conversations/abc/typing", {"typing": True}, 404),
             ("/api/v1/conversations/1/typing", {"typing": "yes"}, 400)]
    for path, body, status in cases:
        response = await client.post(path, json=body, headers=headers)
        assert response.status == status, (path, body)
        assert "error" in await response.json()
    assert (await client.post("/api/v1/conversations/1/typing", data=b"{", headers=headers)).status == 400
    assert (await client.post("/api/v1/conversations/1/typing", json={"typing": True})).status == 401


@pytest.mark.parametrize(("frame", "answer"), [
    ({"client_id": "short", "text": "hi"}, {"error": "client_id must be 8-64 url-safe characters"}),
    ({"client_id": 12345678, "text": "hi"}, {"error": "client_id must be 8-64 url-safe characters"}),
    ({"client_id": "client-id-0201", "text": "x" * 8001},
     {"client_id": "client-id-0201", "error": "text too long", "final": True}),
    ({"client_id": "client-id-0202", "text": ["not", "text"]},
     {"client_id": "client-id-0202", "error": "text too long", "final": True}),
    ({"client_id": "client-id-0203", "text": "   "}, {"client_id": "client-id-0203", "error": "empty message", "final": True}),
])
async def test_bad_message_frames_are_answered_and_store_nothing(client: Any, frame: dict[str, Any],
                                                                answer: dict[str, Any]) -> None:
    session = await new_session(client)
    ws = await open_ws(client, session["token"])
    await frames_until(ws, lambda f: f["type"] == "ready")
    await ws.send_json({"type": "message", **frame})
    error = (await frames_until(ws, lambda f: f["type"] == "error"))[-1]
    assert error == {"type": "error", **answer}
    assert await Message.all().count() == 0
    await finish(client, ws)
