"""Bodies framed the way the network delivers them: split writes, chunked, slow senders, large.

Every signed endpoint verifies the signature over the whole body, so it must read the whole
body however it arrives; past the size limit it answers a JSON 413.
"""

from __future__ import annotations

import json
import uuid

import pytest

from handoff.channels.api import sign
from handoff.models import Message
from tests.conftest import API_SECRET, api_body
from tests.fakes.raw_http import post_in_pieces, split


@pytest.fixture
async def server(aiohttp_server, app_factory):
    return await aiohttp_server(app_factory())


def _url(server) -> str:
    return str(server.make_url("/")).rstrip("/")


def _signed(body: bytes) -> dict[str, str]:
    return {"X-Handoff-Signature": sign(API_SECRET, body), "Content-Type": "application/json"}


@pytest.mark.parametrize(("pieces", "chunked_encoding"), [(2, False), (7, False), (3, True), (40, True)])
async def test_api_webhook_body_in_several_writes_is_stored(server, pieces, chunked_encoding):
    body = api_body("where is my parcel? " * 30, conversation=f"split-{pieces}")
    assert len(body) > 600
    answer = await post_in_pieces(_url(server), "/webhooks/api", split(body, pieces), _signed(body),
                                  chunked_encoding=chunked_encoding, pause=0.05)
    assert answer.status == 202, answer.body
    stored = await Message.filter(direction="incoming").values_list("text", flat=True)
    assert stored == [json.loads(body)["text"]]


async def test_one_mebibyte_signed_body_passes(server):
    # Integrators send their own data along (unknown fields are ignored): the signature covers it all.
    message = json.loads(api_body("does the big crate fit?", conversation="big"))
    message["metadata"] = {"order_lines": "x" * (1024 * 1024 - 300)}
    body = json.dumps(message).encode()
    assert 1024 * 1024 - 512 < len(body) <= 1024 * 1024
    answer = await post_in_pieces(_url(server), "/webhooks/api", split(body, 3), _signed(body), pause=0.02)
    assert answer.status == 202, answer.body[:200]
    assert await Message.filter(direction="incoming", text="does the big crate fit?").count() == 1


@pytest.mark.parametrize("chunked_encoding", [False, True])
async def test_body_over_the_limit_is_a_json_413_and_stores_nothing(server, chunked_encoding):
    body = json.dumps({"id": uuid.uuid4().hex, "conversation": "huge", "contact": {"id": "u"},
                       "text": "y" * (1024 * 1024 + 10)}).encode()
    answer = await post_in_pieces(_url(server), "/webhooks/api", split(body, 16), _signed(body),
                                  chunked_encoding=chunked_encoding, pause=0)
    assert answer.status == 413
    assert "too large" in answer.json()["error"]
    assert await Message.all().count() == 0
