"""WhatsApp (Twilio): fixture parsing, signature checks, settings, and sending through the real
twilio client against the local fake Twilio API."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest
from aiohttp.test_utils import make_mocked_request

from handoff.channels.base import BadPayload, ChannelConfigError, DeliveryError, InvalidSignature, truncate_for
from handoff.channels.whatsapp import WhatsAppChannel
from handoff.config import Settings
from handoff.schema import Address, Attachment, DeliveryUpdate, InboundMessage, OutboundMessage
from handoff.models import Message
from tests.channels import full_cycle, long_reply_resumed, nothing_stored, part_recorder, replayed_four_times
from tests.conftest import settle
from tests.fakes.twilio_api import FakeTwilio, Reply

FIXTURES = Path(__file__).parents[2] / "webhooks" / "whatsapp"
AC = "AC" + "0" * 32
TOKEN = "test-auth-token"
PUBLIC = "https://help.example.com"
URL = PUBLIC + "/webhooks/whatsapp"
MEDIA = f"https://api.twilio.com/2010-04-01/Accounts/{AC}/Messages/MM3b7d2c1e0f9a8b7c6d5e4f3a2b1c0d9e/Media/"


def make_channel(**overrides: str) -> WhatsAppChannel:
    values = dict(
        account_sid=AC, auth_token=TOKEN, number="whatsapp:+14155238886", public_url=PUBLIC
    )
    values.update(overrides)
    return WhatsAppChannel(**values)


def inbound(sid: str, text: str, **kw: object) -> InboundMessage:
    kw.setdefault("contact_id", "+5511987654321")
    kw.setdefault("contact_name", "Ana Souza")
    return InboundMessage(channel="whatsapp", provider_id=sid, text=text, **kw)  # type: ignore[arg-type]


def status(state: str, code: str | None = None, error: str | None = None, sid: str = "SM9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d") -> DeliveryUpdate:
    return DeliveryUpdate(channel="whatsapp", provider_id=sid, state=state, error_code=code, error=error)  # type: ignore[arg-type]


EXPECTED = {
    "message__text": [inbound("SM1f0e8ae6d5a1b2c3d4e5f60718293a4b", "Hi, my order #4521 has not arrived yet")],
    "message__unicode": [
        inbound("SM2a9c81b0f1e2d3c4b5a6978877665544", "¿Dónde está mi pedido? 📦 Gracias",
                contact_id="+34600111222", contact_name="José Núñez")
    ],
    "message__media": [
        inbound(
            "MM3b7d2c1e0f9a8b7c6d5e4f3a2b1c0d9e", "Here is the damaged box",
            attachments=(
                Attachment(content_type="image/jpeg", url=MEDIA + "ME11111111111111111111111111111111"),
                Attachment(content_type="application/pdf", url=MEDIA + "ME22222222222222222222222222222222"),
            ),
        )
    ],
    "message__location": [
        inbound("SM4c6e3d2f1a0b9c8d7e6f5a4b3c2d1e0f",
                "Location: -23.5614, -46.6559 (MASP, Av. Paulista, 1578 - Bela Vista, São Paulo)")
    ],
    "message__button_reply": [inbound("SM5d5f4e3a2b1c0d9e8f7a6b5c4d3e2f1a", "Talk to a person")],
    "status__sent": [status("sent")],
    "status__delivered": [status("delivered")],
    "status__read": [status("read")],
    "status__undelivered_63016": [
        status("undelivered", "63016", "outside the 24-hour WhatsApp window: only an approved template can be sent",
               sid="SM8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e")
    ],
    "status__failed_63024": [
        status("failed", "63024", "Invalid message recipient", sid="SM7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f")
    ],
}


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.txt").read_bytes()


def request(body: bytes, headers: dict[str, str], path: str = "/webhooks/whatsapp"):
    return make_mocked_request("POST", path, headers=headers)


def test_every_fixture_has_an_expected_result() -> None:
    assert {p.stem for p in FIXTURES.glob("*.txt")} == set(EXPECTED)
    assert (FIXTURES / "README.md").exists()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_parses_to_normalized_items(name: str) -> None:
    assert make_channel().parse(fixture(name), "application/x-www-form-urlencoded") == EXPECTED[name]


@pytest.mark.parametrize("body", [b"", b"not a form", b"Body=hi&From=whatsapp%3A%2B1", b"\xff\xfe=1"])
def test_malformed_bodies_are_bad_payloads(body: bytes) -> None:
    with pytest.raises(BadPayload):
        make_channel().parse(body, "application/x-www-form-urlencoded")


@pytest.mark.parametrize("count", [b"abc", b"", b"99", b"1"])
def test_media_are_read_from_their_fields_whatever_num_media_says(count: bytes) -> None:
    body = fixture("message__media").replace(b"NumMedia=2", b"NumMedia=" + count)
    assert body != fixture("message__media")
    assert make_channel().parse(body, "application/x-www-form-urlencoded") == EXPECTED["message__media"]


def test_ack_is_empty_twiml() -> None:
    response = make_channel().ack()
    assert response.status == 200
    assert response.content_type == "text/xml"
    assert response.text.endswith("<Response/>")


# -- signatures ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_signed_fixture_verifies(name: str) -> None:
    channel = make_channel()
    body = fixture(name)
    await channel.verify(request(body, channel.sign(body, URL)), body)


async def test_signature_behind_a_proxy_uses_forwarded_host_and_proto() -> None:
    channel = make_channel(public_url="http://localhost:8080")
    body = fixture("message__text")
    headers = channel.sign(body, "https://chat.example.org/webhooks/whatsapp?x=1")
    headers |= {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "chat.example.org"}
    await channel.verify(request(body, headers, "/webhooks/whatsapp?x=1"), body)


async def test_missing_signature_is_rejected() -> None:
    body = fixture("message__text")
    with pytest.raises(InvalidSignature, match="missing"):
        await make_channel().verify(request(body, {}), body)


async def test_forged_signature_is_rejected() -> None:
    body = fixture("message__text")
    forged = WhatsAppChannel(account_sid=AC, auth_token="not-the-token", number="+1", public_url=PUBLIC)
    with pytest.raises(InvalidSignature):
        await make_channel().verify(request(body, forged.sign(body, URL)), body)


async def test_signature_of_another_body_or_url_is_rejected() -> None:
    channel = make_channel()
    stale = fixture("message__text")
    tampered = stale.replace(b"arrived", b"shipped")
    with pytest.raises(InvalidSignature):
        await channel.verify(request(tampered, channel.sign(stale, URL)), tampered)
    with pytest.raises(InvalidSignature):
        await channel.verify(request(stale, channel.sign(stale, PUBLIC + "/webhooks/other")), stale)


# -- settings -----------------------------------------------------------------------------------


def test_from_settings() -> None:
    assert WhatsAppChannel.from_settings(Settings()) is None
    with pytest.raises(ChannelConfigError, match="TWILIO_AUTH_TOKEN, TWILIO_WHATSAPP_NUMBER"):
        WhatsAppChannel.from_settings(Settings(twilio_account_sid=AC))
    channel = WhatsAppChannel.from_settings(
        Settings(twilio_account_sid=AC, twilio_auth_token=TOKEN, twilio_whatsapp_number="+14155238886",
                 public_url=PUBLIC + "/", twilio_template_sid="HX123")
    )
    assert isinstance(channel, WhatsAppChannel)
    assert channel.number == "+14155238886" and channel.public_url == PUBLIC and channel.template_sid == "HX123"


# -- sending ------------------------------------------------------------------------------------

ADDRESS = Address(channel="whatsapp", contact_id="+5511987654321", conversation_key="+5511987654321")


def outbound(text: str = "Your order ships today.", *, kind: str = "bot", age: float | None = 60, **kw: object) -> OutboundMessage:
    last = None if age is None else time.time() - age
    return OutboundMessage(id=1, kind=kind, text=text, conversation_id=1, last_customer_message_at=last, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def fake():
    async with FakeTwilio(AC, TOKEN) as server:
        yield server


@pytest.fixture
async def channel(fake: FakeTwilio):
    ch = make_channel(api_base=fake.url)
    yield ch
    await ch.close()


async def test_send_goes_through_the_twilio_client(fake: FakeTwilio, channel: WhatsAppChannel) -> None:
    sid = await channel.send(ADDRESS, outbound(attachments=(Attachment("image/png", url="https://cdn.example.com/a.png"),)))
    assert sid.startswith("SM")
    [sent] = fake.sent
    assert sent.auth == (AC, TOKEN)
    assert sent.path == f"/2010-04-01/Accounts/{AC}/Messages.json"
    assert sent.get("To") == "whatsapp:+5511987654321"
    assert sent.get("From") == "whatsapp:+14155238886"
    assert sent.get("Body") == "Your order ships today."
    assert sent.form["MediaUrl"] == ["https://cdn.example.com/a.png"]
    assert sent.get("StatusCallback") == URL


async def test_long_text_is_split_to_1600(fake: FakeTwilio, channel: WhatsAppChannel) -> None:
    await channel.send(ADDRESS, outbound("word " * 700))
    assert len(fake.sent) == 3
    assert all(len(r.get("Body") or "") <= 1600 for r in fake.sent)


async def test_a_failed_part_is_reported_and_the_resend_skips_accepted_parts(fake: FakeTwilio, channel: WhatsAppChannel) -> None:
    progress, on_part_sent = part_recorder()
    media = "https://cdn.example.com/a.png"
    message = outbound("word " * 700, attachments=(Attachment("image/png", url=media),), on_part_sent=on_part_sent)
    fake.then(Reply()).server_error(503)
    with pytest.raises(DeliveryError) as err:
        await channel.send(ADDRESS, message)
    assert err.value.retryable and err.value.parts_sent == 1
    [(first_sid, _)] = fake.accepted
    assert progress == [(1, first_sid)]
    assert await channel.send(ADDRESS, dataclasses.replace(message, parts_sent=1)) == fake.accepted[1][0]
    assert [r.get("Body") for _, r in fake.accepted] == truncate_for(channel.capabilities, message.text)
    assert [r.form.get("MediaUrl") for _, r in fake.accepted] == [None, None, [media]]


async def test_window_error_after_a_sent_part_does_not_resend_it_as_a_template(fake: FakeTwilio) -> None:
    channel = make_channel(api_base=fake.url, template_sid="HX" + "a" * 32)
    fake.then(Reply()).window_closed()
    with pytest.raises(DeliveryError) as err:
        await channel.send(ADDRESS, outbound("word " * 700, kind="agent", age=None))
    assert not err.value.retryable and err.value.code == "63016" and err.value.parts_sent == 1
    fake.window_closed()
    with pytest.raises(DeliveryError):  # resumed past the window: free text fails, no template repeats part 1
        await channel.send(ADDRESS, outbound("word " * 700, kind="agent", age=30 * 3600, parts_sent=1))
    await channel.close()
    assert all(r.get("ContentSid") is None for r in fake.sent)


async def test_rate_limit_is_retryable_with_retry_after(fake: FakeTwilio, channel: WhatsAppChannel) -> None:
    fake.rate_limited(retry_after=7)
    with pytest.raises(DeliveryError) as err:
        await channel.send(ADDRESS, outbound())
    assert err.value.retryable and err.value.retry_after == 7.0 and err.value.code == "20429"
    assert (await channel.send(ADDRESS, outbound())).startswith("SM")


async def test_server_error_is_retryable(fake: FakeTwilio, channel: WhatsAppChannel) -> None:
    fake.server_error(503)
    with pytest.raises(DeliveryError) as err:
        await channel.send(ADDRESS, outbound())
    assert err.value.retryable and err.value.retry_after is None


async def test_slow_provider_times_out_retryable(fake: FakeTwilio, channel: WhatsAppChannel) -> None:
    channel.send_timeout = 0.2
    fake.slow(0.6)
    with pytest.raises(DeliveryError) as err:
        await channel.send(ADDRESS, outbound())
    assert err.value.retryable and err.value.code == "timeout"


async def test_invalid_number_is_final(fake: FakeTwilio, channel: WhatsAppChannel) -> None:
    fake.invalid_number()
    with pytest.raises(DeliveryError) as err:
        await channel.send(ADDRESS, outbound())
    assert not err.value.retryable and err.value.code == "21211"
    assert "not valid" in str(err.value)


async def test_window_error_without_template_fails_visibly(fake: FakeTwilio, channel: WhatsAppChannel) -> None:
    fake.window_closed()
    with pytest.raises(DeliveryError) as err:
        await channel.send(ADDRESS, outbound(kind="agent"))
    assert not err.value.retryable and err.value.code == "63016"
    assert "24-hour" in str(err.value) and "TWILIO_TEMPLATE_SID" in str(err.value)


async def test_window_error_falls_back_to_the_template(fake: FakeTwilio) -> None:
    channel = make_channel(api_base=fake.url, template_sid="HX" + "a" * 32)
    fake.window_closed()
    sid = await channel.send(ADDRESS, outbound("An agent answered your question.", kind="agent", age=None))
    await channel.close()
    assert sid.startswith("SM")
    free, template = fake.sent
    assert free.get("Body") == "An agent answered your question."
    assert template.get("ContentSid") == "HX" + "a" * 32
    assert template.get("ContentVariables") == '{"1": "An agent answered your question."}'
    assert template.get("Body") is None


async def test_known_stale_window_goes_straight_to_the_template(fake: FakeTwilio) -> None:
    channel = make_channel(api_base=fake.url, template_sid="HXtemplate")
    await channel.send(ADDRESS, outbound("We are back.", kind="notice", age=30 * 3600))
    await channel.close()
    [sent] = fake.sent
    assert sent.get("ContentSid") == "HXtemplate" and sent.get("Body") is None


async def test_known_stale_window_without_template_sends_nothing(fake: FakeTwilio, channel: WhatsAppChannel) -> None:
    with pytest.raises(DeliveryError) as err:
        await channel.send(ADDRESS, outbound(kind="agent", age=30 * 3600))
    assert not err.value.retryable and err.value.code == "63016"
    assert fake.sent == []


# -- through the app (/webhooks/whatsapp), on SQLite and PostgreSQL -----------------------------


@pytest.fixture
def settings(settings: Settings, fake: FakeTwilio) -> Settings:
    """The conftest settings with the WhatsApp channel on, pointed at the fake Twilio API."""
    return settings.model_copy(update=dict(twilio_account_sid=AC, twilio_auth_token=TOKEN,
        twilio_whatsapp_number="+14155238886", twilio_api_base=fake.url,
    ))


@pytest.fixture
def post(client, settings: Settings):
    """Posts a form body to /webhooks/whatsapp signed as Twilio would."""
    signer = WhatsAppChannel.from_settings(settings)

    async def send(body: bytes, headers: dict[str, str] | None = None):
        url = settings.public_url + "/webhooks/whatsapp"
        return await client.post("/webhooks/whatsapp", data=body, headers=headers or signer.sign(body, url))

    return send


async def test_full_cycle(client, rt, make_agent, post, fake: FakeTwilio) -> None:
    first = fixture("message__text")
    second = first.replace(b"SM1f0e8ae6d5a1b2c3d4e5f60718293a4b", b"SM1f0e8ae6d5a1b2c3d4e5f60718293a4c").replace(b"arrived+yet", b"arrived+today")
    await full_cycle(client, rt, make_agent, "whatsapp", post, first, second,
                     "Hi, my order #4521 has not arrived yet", "Hi, my order #4521 has not arrived today",
                     lambda: [r.get("Body") or r.get("ContentSid") for r in fake.sent])
    assert all(r.get("To") == "whatsapp:+5511987654321" for r in fake.sent)


async def test_ack_is_twiml_and_status_callback_updates_delivery(client, rt, post, fake: FakeTwilio) -> None:
    response = await post(fixture("message__text"))
    assert response.status == 200 and response.content_type == "text/xml"
    await settle(rt)
    bot = await Message.get(channel="whatsapp", author_kind="bot")
    assert bot.provider_id and bot.provider_id.startswith("SM")
    status_body = fixture("status__read").replace(b"SM9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", bot.provider_id.encode())
    assert (await post(status_body)).status == 200
    assert (await Message.get(id=bot.id)).delivery_status == "read"


LONG = "word " * 350 + "end"


@pytest.mark.parametrize("failure", [Reply(503, 20500, "Service Unavailable"),
                                     Reply(429, 20429, "Too Many Requests", {"Retry-After": "0.05"})], ids=["5xx", "429"])
async def test_a_retry_resumes_after_the_parts_twilio_accepted(client, rt, post, fake: FakeTwilio, failure: Reply) -> None:
    form = dict(parse_qsl(fixture("message__text").decode()))
    fake.then(Reply()).then(failure)
    parts = truncate_for(WhatsAppChannel.capabilities, f"echo: {LONG}")
    reply = await long_reply_resumed(rt, post, urlencode({**form, "Body": LONG}).encode(), parts,
                                     lambda: [r.get("Body") or "" for _, r in fake.accepted])
    first_sid = fake.accepted[0][0]
    assert reply.provider_id == first_sid  # status callbacks name the first part
    receipt = fixture("status__delivered").replace(b"SM9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d", first_sid.encode())
    assert (await post(receipt)).status == 200
    assert (await Message.get(id=reply.id)).delivery_status == "delivered"


@pytest.mark.parametrize("name", ["message__text", "message__media", "message__location"])
async def test_replay_stores_one_message(client, rt, post, name: str) -> None:
    sid = dict(parse_qsl(fixture(name).decode()))["MessageSid"]
    await replayed_four_times(rt, "whatsapp", post, fixture(name), sid)


async def test_bad_requests_are_rejected_and_store_nothing(client, rt, post, settings: Settings) -> None:
    body = fixture("message__text")
    forged = WhatsAppChannel(account_sid=AC, auth_token="forged", number="+1", public_url=settings.public_url)
    url = settings.public_url + "/webhooks/whatsapp"
    assert (await post(body, {"Content-Type": "application/x-www-form-urlencoded"})).status == 401
    assert (await post(body, forged.sign(body, url))).status == 401
    assert (await post(body.replace(b"arrived", b"shipped"), WhatsAppChannel.from_settings(settings).sign(body, url))).status == 401
    assert (await post(b"garbage")).status == 400
    assert (await post(b"Body=no+sid")).status == 400
    assert await nothing_stored()
