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
