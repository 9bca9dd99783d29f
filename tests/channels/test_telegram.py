"""Telegram: every fixture parsed, the secret-token header, settings, the Bot API send methods,
typing and file proxy against the local fake Bot API, and the takeover cycle through the app."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request

from handoff import cli, metrics
from handoff.channels.base import BadPayload, ChannelConfigError, DeliveryError, InvalidSignature
from handoff.channels.telegram import TelegramChannel, TelegramSettings
from handoff.config import Settings
from handoff.models import Message, Outbox
from handoff.runtime import RUNTIME
from handoff.schema import Address, Attachment, InboundMessage, MessageEdit, OutboundMessage
from handoff.timeline import utcnow
from tests.channels import full_cycle, replayed_four_times
from tests.conftest import settle
from tests.fakes.telegram_api import FakeTelegram

FIXTURES = Path(__file__).parents[2] / "webhooks" / "telegram"
TOKEN = "123456:test-bot-token"
SECRET = "test-webhook-secret"
PUBLIC = "https://help.example.com"
LENA = "700100200"
ADDRESS = Address(channel="telegram", contact_id=LENA, conversation_key=LENA)
PHOTO_ID = "AgACAgQAAxkBAAMqZ1aLarge00000000000000000000000000000000000000000000000"
PDF_ID = "BQACAgQAAxkBAAMrZ1aInvoice000000000000000000000000000000000000000000"
ENV = {"TELEGRAM_BOT_TOKEN": TOKEN, "TELEGRAM_WEBHOOK_SECRET": SECRET}


def make_channel(api_base: str = "http://127.0.0.1:9") -> TelegramChannel:
    return TelegramChannel(TelegramSettings(bot_token=TOKEN, webhook_secret=SECRET, api_base=api_base), PUBLIC)


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def lena(provider_id: str, text: str, sent_at: float, attachments: tuple[Attachment, ...] = ()) -> InboundMessage:
    return InboundMessage(channel="telegram", provider_id=provider_id, contact_id=LENA, conversation_key=LENA,
                          contact_name="Lena Fischer", text=text, attachments=attachments, sent_at=sent_at)


CHANNEL = make_channel()
EXPECTED = {
    "message__text": [lena(f"{LENA}:41", "Hello, is the store open on Sunday?", 1764540000)],
    "message__photo": [lena(f"{LENA}:42", "The parcel arrived like this", 1764540060, (
        Attachment("image/jpeg", url=CHANNEL.file_url(PHOTO_ID), filename="photo.jpg", size=48217),))],
    "message__document": [lena(f"{LENA}:43", "", 1764540120, (
        Attachment("application/pdf", url=CHANNEL.file_url(PDF_ID), filename="invoice-2291.pdf", size=20480),))],
    "message__location": [lena(f"{LENA}:44", "Location: 52.520008, 13.404954", 1764540180)],
    "edited_message__text": [MessageEdit(channel="telegram", provider_id=f"{LENA}:41",
                                         text="Hello, is the store open on Saturday?")],
    "message__sticker__unsupported": [],
    "my_chat_member__unsupported": [],
}


def test_every_fixture_is_covered() -> None:
    assert sorted(p.stem for p in FIXTURES.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_parses_to_its_items(name: str) -> None:
    assert CHANNEL.parse(fixture(name)) == EXPECTED[name]


def test_unsupported_updates_are_skipped_and_counted() -> None:
    counter = metrics.WEBHOOK_ITEMS_SKIPPED.labels("telegram", "unhandled_update")
    before = counter._value.get()
    assert CHANNEL.parse(fixture("my_chat_member__unsupported")) == []
    assert counter._value.get() == before + 1


def test_file_urls_carry_no_token_and_a_signature_of_the_file_id() -> None:
    url = CHANNEL.file_url(PHOTO_ID)
    assert url.startswith(f"{PUBLIC}/telegram/files/{PHOTO_ID}?sig=") and TOKEN not in url
    assert make_channel().file_url(PHOTO_ID) == url
    other = TelegramChannel(TelegramSettings(bot_token=TOKEN, webhook_secret="another"), PUBLIC)
    assert other.file_url(PHOTO_ID) != url


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"message": {}}', b'{"update_id": "1"}'])
def test_a_body_that_is_no_update_is_refused(body: bytes) -> None:
    with pytest.raises(BadPayload):
        CHANNEL.parse(body)


async def test_the_secret_token_header_is_required() -> None:
    body = fixture("message__text")
    await CHANNEL.verify(make_mocked_request("POST", "/webhooks/telegram", headers=CHANNEL.sign(body)), body)
    for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}, {"X-Telegram-Bot-Api-Secret-Token": ""}):
        with pytest.raises(InvalidSignature):
            await CHANNEL.verify(make_mocked_request("POST", "/webhooks/telegram", headers=headers), body)


def test_settings_are_read_from_the_channels_own_variables() -> None:
    assert TelegramChannel.from_settings(Settings.from_env({})) is None
    channel = TelegramChannel.from_settings(Settings.from_env({**ENV, "TELEGRAM_API_BASE": "http://fake:1",
                                                               "HANDOFF_PUBLIC_URL": PUBLIC}))
    assert channel is not None and channel.api.base == "http://fake:1" and channel.secret == SECRET
    assert channel.file_url("x").startswith(PUBLIC)
    assert TelegramChannel.from_settings(Settings.from_env(ENV)).api.base == "https://api.telegram.org"  # type: ignore[union-attr]
    with pytest.raises(ChannelConfigError, match="TELEGRAM_WEBHOOK_SECRET"):
        TelegramChannel.from_settings(Settings.from_env({"TELEGRAM_BOT_TOKEN": TOKEN}))
    with pytest.raises(ChannelConfigError, match="TELEGRAM_BOT_TOKEN"):
        TelegramChannel.from_settings(Settings.from_env({"TELEGRAM_WEBHOOK_SECRET": SECRET}))


# -- the Bot API, against the fake ----------------------------------------------------------------


@pytest.fixture
async def fake():
    async with FakeTelegram(token=TOKEN) as server:
        yield server


@pytest.fixture
async def channel(fake: FakeTelegram):
    ch = make_channel(fake.url)
    yield ch
    await ch.close()


def outbound(text: str, *attachments: Attachment) -> OutboundMessage:
    return OutboundMessage(id=1, kind="agent", text=text, conversation_id=1, attachments=attachments)


async def test_send_text(fake: FakeTelegram, channel: TelegramChannel) -> None:
    provider_id = await channel.send(ADDRESS, outbound("Hi Lena, Ana here."))
    [call] = fake.sent()
    assert (call.method, call.body) == ("sendMessage", {"chat_id": LENA, "text": "Hi Lena, Ana here."})
    assert provider_id == f"{LENA}:500"


async def test_a_long_text_goes_in_4096_character_parts(fake: FakeTelegram, channel: TelegramChannel) -> None:
    await channel.send(ADDRESS, outbound("word " * 1500))
    texts = [c.body["text"] for c in fake.sent()]
    assert len(texts) == 2 and all(len(t) <= 4096 for t in texts) and " ".join(texts).split() == ["word"] * 1500


async def test_send_photo_and_document_by_url(fake: FakeTelegram, channel: TelegramChannel) -> None:
    photo = Attachment("image/png", url=f"{PUBLIC}/media/a/label.png", filename="label.png")
    pdf = Attachment("application/pdf", url=f"{PUBLIC}/media/b/invoice.pdf", filename="invoice.pdf")
    await channel.send(ADDRESS, outbound("Here you go", photo, pdf))
    assert [(c.method, c.body) for c in fake.sent()] == [
        ("sendMessage", {"chat_id": LENA, "text": "Here you go"}),
        ("sendPhoto", {"chat_id": LENA, "photo": photo.url}),
        ("sendDocument", {"chat_id": LENA, "document": pdf.url}),
    ]


async def test_429_is_retryable_after_retry_after(fake: FakeTelegram, channel: TelegramChannel) -> None:
    fake.fail(429, "Too Many Requests: retry after 7", retry_after=7)
    with pytest.raises(DeliveryError) as caught:
        await channel.send(ADDRESS, outbound("hi"))
    assert (caught.value.retryable, caught.value.retry_after, caught.value.code) == (True, 7.0, "429")


@pytest.mark.parametrize(("code", "retryable"), [(400, False), (403, False), (502, True)])
async def test_other_errors(fake: FakeTelegram, channel: TelegramChannel, code: int, retryable: bool) -> None:
    fake.fail(code, "Forbidden: bot was blocked by the user" if code == 403 else "")
    with pytest.raises(DeliveryError) as caught:
        await channel.send(ADDRESS, outbound("hi"))
    assert (caught.value.retryable, caught.value.code) == (retryable, str(code))


async def test_a_wrong_token_is_final_and_never_named(fake: FakeTelegram) -> None:
    channel = TelegramChannel(TelegramSettings(bot_token="999:wrong", webhook_secret=SECRET, api_base=fake.url), PUBLIC)
    with pytest.raises(DeliveryError) as caught:
        await channel.send(ADDRESS, outbound("hi"))
    await channel.close()
    assert not caught.value.retryable and "999:wrong" not in str(caught.value)


async def test_typing_sends_a_chat_action_and_never_raises(fake: FakeTelegram, channel: TelegramChannel) -> None:
    await channel.typing(ADDRESS, True, "Ana")
    await channel.typing(ADDRESS, False)  # Telegram clears it by itself: nothing to send
    assert [(c.method, c.body) for c in fake.calls] == [("sendChatAction", {"chat_id": LENA, "action": "typing"})]
    fake.fail(429, retry_after=3)
    await channel.typing(ADDRESS, True)


# -- through the app (/webhooks/telegram), on SQLite and PostgreSQL ---------------------------------


@pytest.fixture
def settings(settings: Settings, fake: FakeTelegram) -> Settings:
    """The conftest settings with the telegram channel on, pointed at the fake Bot API."""
    return settings.model_copy(update=dict(extra={**ENV, "TELEGRAM_API_BASE": fake.url}))


@pytest.fixture
def post(client):
    """Posts an update to /webhooks/telegram with the secret-token header."""
    async def send(body: bytes, headers: dict[str, str] | None = None):
        return await client.post("/webhooks/telegram", data=body,
                                 headers=headers if headers is not None else CHANNEL.sign(body))

    return send


async def test_full_cycle(client, rt, make_agent, post, fake: FakeTelegram) -> None:
    first = fixture("message__text")
    second = first.replace(b'"message_id": 41', b'"message_id": 46').replace(b"Sunday", b"Monday")
    await full_cycle(client, rt, make_agent, "telegram", post, first, second, "Hello, is the store open on Sunday?",
                     "Hello, is the store open on Monday?", lambda: [c.body["text"] for c in fake.sent()])
    assert {c.body["chat_id"] for c in fake.calls} == {LENA}
    assert fake.sent("sendChatAction"), "the bot's typing reaches Telegram"


async def test_a_redelivered_update_is_stored_once(rt, post) -> None:
    await replayed_four_times(rt, "telegram", post, fixture("message__text"), f"{LENA}:41")


async def test_a_wrong_secret_is_refused_and_stores_nothing(post) -> None:
    response = await post(fixture("message__text"), {"X-Telegram-Bot-Api-Secret-Token": "guess"})
    assert response.status == 401
    assert await Message.all().count() == 0


async def test_an_edit_replaces_the_stored_text(rt, post) -> None:
    assert (await post(fixture("message__text"))).status == 202
    assert (await post(fixture("edited_message__text"))).status == 202
    await settle(rt)
    message = await Message.get(channel="telegram", provider_id=f"{LENA}:41")
    assert message.text == "Hello, is the store open on Saturday?"
    assert [r["text"] for r in message.revisions] == ["Hello, is the store open on Sunday?"]


async def test_the_outbox_waits_the_retry_after_of_a_429(aiohttp_client, app_factory, fake: FakeTelegram) -> None:
    fake.fail(429, "Too Many Requests: retry after 3600", retry_after=3600, method="sendMessage")
    client = await aiohttp_client(app_factory(workers=False))  # outbox rounds are run by hand below
    rt = client.app[RUNTIME]
    body = fixture("message__text")
    assert (await client.post("/webhooks/telegram", data=body, headers=CHANNEL.sign(body))).status == 202
    await rt.drain()
    await rt.outbox.run_once()
    row = await Outbox.get()
    assert row.status == "pending" and not fake.sent()
    assert timedelta(seconds=3590) < row.next_attempt_at - utcnow() <= timedelta(seconds=3600)
    await Outbox.all().update(next_attempt_at=utcnow())  # the hour has passed
    await settle(rt)
    assert [c.body["text"] for c in fake.sent()] == ["echo: Hello, is the store open on Sunday?"]


async def test_a_photo_is_served_through_our_url_without_the_token(client, rt, post, fake: FakeTelegram) -> None:
    fake.files[PHOTO_ID] = ("photos/file_7.jpg", b"\xff\xd8\xff\xe0 a jpeg")
    assert (await post(fixture("message__photo"))).status == 202
    await settle(rt)
    message = await Message.get(channel="telegram", provider_id=f"{LENA}:42")
    [attachment] = message.attachments
    assert TOKEN not in json.dumps(message.attachments)
    path = attachment["url"].removeprefix("http://testserver")
    response = await client.get(path)
    assert response.status == 200 and await response.read() == b"\xff\xd8\xff\xe0 a jpeg"
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert fake.downloads == ["photos/file_7.jpg"]
    forged = path.split("?sig=")[0] + "?sig=" + "0" * 32
    assert (await client.get(forged)).status == 404
    missing = rt.channels["telegram"].file_url("unknown-file").removeprefix("http://testserver")
    assert (await client.get(missing)).status == 502


async def test_replay_posts_a_fixture_with_the_secret_header(client, rt, settings, capsys) -> None:
    base = str(client.make_url("/")).rstrip("/")
    assert await cli._replay(settings, FIXTURES / "message__location.json", base) == 0
    await settle(rt)
    assert capsys.readouterr().out.startswith("202")
    assert (await Message.get(provider_id=f"{LENA}:44")).text == "Location: 52.520008, 13.404954"


async def test_an_agents_typing_reaches_telegram(client, rt, make_agent, post, fake: FakeTelegram) -> None:
    _, headers = await make_agent("Ana")
    assert (await post(fixture("message__text"))).status == 202
    await settle(rt)
    conversation = (await Message.get(provider_id=f"{LENA}:41").prefetch_related("conversation")).conversation
    assert (await client.post(f"/api/v1/conversations/{conversation.id}/takeover", headers=headers)).status == 201
    await settle(rt)
    before = len(fake.sent("sendChatAction"))
    response = await client.post(f"/api/v1/conversations/{conversation.id}/typing", json={"typing": True}, headers=headers)
    assert response.status == 200
    await settle(rt)
    assert [c.body for c in fake.sent("sendChatAction")[before:]] == [{"chat_id": LENA, "action": "typing"}]
