"""Every endpoint that reads a body reads all of it, however it is framed, up to 1 MiB.

Each endpoint gets a valid (signed where it is signed) body written over a raw socket in many
pieces, then chunk-framed, then padded to just under 1 MiB (the signature covers the padding
too), and then one byte past the limit, which is a JSON 413 that stores nothing. A provider's
payload sent twice is stored once. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

import pytest

from handoff.models import Conversation, Message
from tests.conftest import settle
from tests.fakes.raw_http import RawResponse
from tests.http.conftest import Edge, Signed, fixture_bytes

LIMIT = 1024 * 1024


def padded_json(raw: bytes, size: int) -> bytes:
    """A JSON object body with an ignored `padding` field bringing it to `size` bytes."""
    data = json.loads(raw)
    data["padding"] = ""
    body = json.dumps(data).encode()
    data["padding"] = "p" * max(0, size - len(body))
    return json.dumps(data).encode()


def padded_form(raw: bytes, size: int) -> bytes:
    """A form body with an ignored `Padding` field bringing it to `size` bytes."""
    pairs = parse_qsl(raw.decode().strip(), keep_blank_values=True)
    body = urlencode([*pairs, ("Padding", "")]).encode()
    return urlencode([*pairs, ("Padding", "p" * max(0, size - len(body)))]).encode()


def padded_payload_form(raw: bytes, size: int) -> bytes:
    """Slack's interactivity form (`payload=<JSON>`) with the JSON padded so the form is `size` bytes."""
    data = json.loads(raw)
    data["padding"] = ""
    body = urlencode({"payload": json.dumps(data)}).encode()
    data["padding"] = "p" * max(0, size - len(body))  # "p" is one byte encoded too
    return urlencode({"payload": json.dumps(data)}).encode()


@dataclass
class Endpoint:
    """How to make a valid request of `size` bytes to one endpoint, and what it must answer."""

    name: str
    build: Callable[[Edge, int], Awaitable[Signed]]
    status: int
    check: Callable[[RawResponse], Awaitable[None]]


async def _stored_once(text_part: str) -> None:
    texts = await Message.filter(direction="incoming").values_list("text", flat=True)
    assert len(texts) == 1 and text_part in texts[0], texts


def _webhook(channel: str, fixture: str, text_part: str, status: int, signer: str) -> Endpoint:
    pad = padded_form if fixture.endswith(".txt") else padded_json

    async def build(edge: Edge, size: int) -> Signed:
        return getattr(edge, signer)(pad(fixture_bytes(channel, fixture), size))

    async def check(answer: RawResponse) -> None:
        await _stored_once(text_part)

    return Endpoint(channel, build, status, check)


async def _no_storage(answer: RawResponse) -> None:
    assert await Message.all().count() == 0


def _slack(name: str, fixture: str, pad: Callable[[bytes, int], bytes],
           check: Callable[[RawResponse], Awaitable[None]]) -> Endpoint:
    async def build(edge: Edge, size: int) -> Signed:
        return getattr(edge, name)(pad(fixture_bytes("slack", fixture), size))

    return Endpoint(name, build, 200, check)


async def _challenge(answer: RawResponse) -> None:
    assert answer.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


async def _help(answer: RawResponse) -> None:
    assert "/handoff" in answer.json()["text"]


async def _typing(edge: Edge, size: int) -> Signed:
    if not await Conversation.exists():
        assert (await edge.send(edge.api(fixture_bytes("api", "message__text.json")))).status == 202
    conversation = await Conversation.first()
    headers = {"Content-Type": "application/json", **await edge.agent_headers()}
    body = padded_json(b'{"typing": true}', size)
    return Signed(f"/api/v1/conversations/{conversation.id}/typing", body, headers)  # type: ignore[union-attr]


async def _ok(answer: RawResponse) -> None:
    assert answer.json() == {"ok": True}


async def _widget(edge: Edge, size: int) -> Signed:
    return edge.widget_session(padded_json(b'{"name": "Dana"}', size))


async def _session(answer: RawResponse) -> None:
    data = answer.json()
    assert len(data["token"]) == 43 and data["visitor_id"].startswith("v_") and data["verified"] is False


async def _login(edge: Edge, size: int) -> Signed:
    token = (await edge.agent_headers())["Authorization"].removeprefix("Bearer ")
    return edge.desk_login(padded_json(json.dumps({"token": token}).encode(), size))


async def _signed_in(answer: RawResponse) -> None:
    assert answer.json()["agent"]["name"] == "Ana" and "handoff_session=" in answer.headers.get("set-cookie", "")


ENDPOINTS = [
    _webhook("api", "message__text.json", "", 202, "api"),
    _webhook("messenger", "message__text.json", "store open on Sunday", 200, "messenger"),
    _webhook("instagram", "message__text.json", "", 200, "instagram"),
    _webhook("whatsapp", "message__text.txt", "order #4521 has not arrived", 200, "twilio"),
    _slack("slack_events", "events__url_verification.json", padded_json, _challenge),
    _slack("slack_interactions", "block_actions__take_over.json", padded_payload_form, _no_storage),
    _slack("slack_commands", "slash_command__help.txt", padded_form, _help),
    Endpoint("desk_api_typing", _typing, 200, _ok),
    Endpoint("widget_session", _widget, 200, _session),
    Endpoint("desk_login", _login, 200, _signed_in),
]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
async def test_body_in_many_writes_chunked_and_at_one_mebibyte(edge: Edge, endpoint: Endpoint) -> None:
    for pieces, chunked_encoding, size in [(9, False, 3000), (6, True, 3000), (4, False, LIMIT - 64)]:
        signed = await endpoint.build(edge, size)
        assert LIMIT - 1024 < len(signed.body) <= LIMIT or size < LIMIT - 64
        answer = await edge.send(signed, pieces=pieces, chunked_encoding=chunked_encoding)
        assert answer.status == endpoint.status, (pieces, chunked_encoding, len(signed.body), answer.body[:300])
        await endpoint.check(answer)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
async def test_one_byte_past_the_limit_is_a_json_413_that_stores_nothing(edge: Edge, endpoint: Endpoint) -> None:
    requests = [await endpoint.build(edge, LIMIT + 1) for _ in range(2)]
    await settle(edge.runtime)  # a builder's own set-up message may still be getting its bot reply
    before = await Message.all().count()
    for chunked_encoding, signed in zip((False, True), requests):
        assert len(signed.body) == LIMIT + 1
        answer = await edge.send(signed, pieces=8, chunked_encoding=chunked_encoding, pause=0)
        assert answer.status == 413, (chunked_encoding, answer.body[:300])
        assert answer.json() == {"error": f"body too large (limit {LIMIT} bytes)"}
    assert await Message.all().count() == before
