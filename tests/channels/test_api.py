"""The api channel's recorded webhooks (webhooks/api/): each parses to the message it stands for,
and its signature is checked."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request

from handoff.channels.api import ApiChannel
from handoff.channels.base import InvalidSignature
from handoff.schema import InboundMessage
from tests.conftest import API_SECRET

FIXTURES = Path(__file__).parents[2] / "webhooks" / "api"
CHANNEL = ApiChannel(API_SECRET)
EXPECTED = {
    "message__text": InboundMessage(channel="api", provider_id="api-msg-0001", contact_id="customer-42",
                                    conversation_key="order-4711", contact_name="Dana",
                                    text="Hi! Where is my order 4711?"),
    "message__spanish": InboundMessage(channel="api", provider_id="api-msg-0002", contact_id="cliente-7",
                                       conversation_key="pedido-815", contact_name="Lucía",
                                       text="Hola, ¿cuándo llega mi pedido a Madrid?"),
}


def test_every_fixture_is_covered() -> None:
    assert sorted(p.stem for p in FIXTURES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_parses_to_its_message(name: str) -> None:
    assert CHANNEL.parse((FIXTURES / f"{name}.json").read_bytes()) == [EXPECTED[name]]


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_fixture_signed_by_replay_verifies_and_a_changed_body_does_not(name: str) -> None:
    body = (FIXTURES / f"{name}.json").read_bytes()
    headers = CHANNEL.sign(body, "", "application/json")
    await CHANNEL.verify(make_mocked_request("POST", "/webhooks/api", headers=headers), body)
    with pytest.raises(InvalidSignature):
        await CHANNEL.verify(make_mocked_request("POST", "/webhooks/api", headers=headers), body + b" ")


async def test_a_signature_in_upper_case_hex_verifies() -> None:
    # Hex is case-insensitive; some HMAC tools print upper case.
    body = (FIXTURES / "message__text.json").read_bytes()
    signature = CHANNEL.sign(body, "", "application/json")["X-Handoff-Signature"]
    upper = "sha256=" + signature.removeprefix("sha256=").upper()
    assert upper != signature
    await CHANNEL.verify(make_mocked_request("POST", "/webhooks/api", headers={"X-Handoff-Signature": upper}), body)


_BASE = '"id": "m1", "conversation": "c1", "contact": {"id": "u1"}'


@pytest.mark.parametrize(("body", "error"), [
    ('{"id": true, "conversation": "c1", "contact": {"id": "u1"}, "text": "hi"}', "id must be a non-empty string"),
    ('{"id": " ", "conversation": "c1", "contact": {"id": "u1"}, "text": "hi"}', "id must be a non-empty string"),
    ('{"id": "m1", "conversation": "' + "c" * 256 + '", "contact": {"id": "u1"}, "text": "hi"}',
     "conversation is longer than 255 characters"),
    ('{"id": "m1", "conversation": "c1", "contact": "u1", "text": "hi"}', "contact must be an object with an id"),
    ('{"id": "m1", "conversation": "c1", "contact": {}, "text": "hi"}', "contact.id must be a non-empty string"),
    ('{"id": "m1", "conversation": "c1", "contact": {"id": "u1", "name": 7}, "text": "hi"}',
     "contact.name must be a string"),
    ("{" + _BASE + ', "text": "' + "x" * 10_001 + '"}', "text is longer than 10000 characters"),
    ("{" + _BASE + ', "text": null, "attachments": [{"url": "https://x.example/a"}]}',
     "text must be a non-empty string (or empty with attachments)"),
    ("{" + _BASE + ', "attachments": [{"url": "https://x.example/' + "a" * 2048 + '"}]}',
     "attachments[0].url must be an http(s) URL of at most 2048 characters"),
    ("{" + _BASE + ', "attachments": [{"url": "https://x.example/a"}, {"url": "https://x.example/b", "filename": 1}]}',
     "attachments[1].filename must be a string"),
    ("{" + _BASE + ', "attachments": [{"url": "https://x.example/a", "content_type": []}]}',
     "attachments[0].content_type must be a string"),
    ("{" + _BASE + ', "attachments": [{"url": "https://x.example/a", "size": true}]}',
     "attachments[0].size must be a whole number of bytes"),
    ("{" + _BASE + ', "attachments": "https://x.example/a"}', "attachments must be a list of at most 10 objects"),
])
def test_bad_fields_get_the_documented_error_text(body: str, error: str) -> None:
    from handoff.channels.base import BadPayload

    with pytest.raises(BadPayload) as raised:
        ApiChannel(API_SECRET).parse(body.encode())
    assert str(raised.value) == error


def test_numeric_ids_are_taken_as_text_and_files_default_their_type() -> None:
    body = b'{"id": 42, "conversation": 7, "contact": {"id": 9, "name": "Ann"}, "text": "", "attachments": [{"url": "https://x.example/a", "size": 3}]}'
    [message] = ApiChannel(API_SECRET).parse(body)
    assert (message.provider_id, message.conversation_key, message.contact_id) == ("42", "7", "9")
    assert message.text == "" and message.contact_name == "Ann"
    [attachment] = message.attachments
    assert (attachment.url, attachment.content_type, attachment.size) == ("https://x.example/a", "application/octet-stream", 3)
