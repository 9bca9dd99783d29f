"""Instagram: fixture parsing, handshake and signature checks, settings, and the Send API,
typing and contact names against the local fake Graph API."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request

from handoff.channels.base import BadPayload, ChannelConfigError, DeliveryError, InvalidSignature
from handoff.channels.instagram import InstagramChannel
from handoff.config import Settings
from handoff import metrics
from handoff.schema import (
    Address,
    Attachment,
    DeliveryUpdate,
    InboundMessage,
    MessageDeletion,
    MessageEdit,
    OutboundMessage,
    OutsideReply,
)
from handoff.models import Conversation, Message
from tests.channels import full_cycle, nothing_stored, replayed_four_times
from tests.conftest import settle
from tests.fakes.graph_api import FakeGraph

FIXTURES = Path(__file__).parents[2] / "webhooks" / "instagram"
SECRET = "test-app-secret"
VERIFY = "test-verify-token"
TOKEN = "test-ig-token"
IGSID = "1284756390182736"
IGSID2 = "2290183746501928"
MID = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwMTIzNDU2Nzg5OjM0MDI4MjM2Njg0MTcxMDMwMTI0NDI1OTk3MjE1MDY4MDk4"
IMAGE = "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=1790&signature=abc"
CDN = "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id="
MENTION = CDN + "17952000111222333&signature=mention"
POST = CDN + "18139400011122233&signature=post"
REEL = CDN + "18023344556677889&signature=reel"


def make_channel(graph_base: str = "http://127.0.0.1:9/v21.0") -> InstagramChannel:
    return InstagramChannel(app_secret=SECRET, verify_token=VERIFY, token=TOKEN, graph_base=graph_base)


def msg(mid: str, text: str, ts: int, sender: str = IGSID, **kw: object) -> InboundMessage:
    return InboundMessage(channel="instagram", provider_id=mid, contact_id=sender, text=text, sent_at=ts / 1000, **kw)  # type: ignore[arg-type]


def read(mid: str) -> DeliveryUpdate:
    return DeliveryUpdate(channel="instagram", provider_id=mid, state="read")


EXPECTED = {
    "message__text": [msg(MID, "hi! do you ship to Lisbon?", 1717430399870)],
    "message__image": [
        msg("aWdfZAG1faXRlbTox_image0001", f"[image] {IMAGE}", 1717430410000,
            attachments=(Attachment("image/*", url=IMAGE),))
    ],
    "message__story_reply": [msg("aWdfZAG1faXRlbTox_story0001", "Is this still available?", 1717430420000)],
    "message__quick_reply": [msg("aWdfZAG1faXRlbTox_qr0001", "Order status", 1717430425000)],
    # Instagram echoes carry no app id: which are ours is told from the stored messages (tests/test_changes.py).
    "message__echo": [OutsideReply(channel="instagram", provider_id="aWdfZAG1faXRlbTox_echo0001", contact_id=IGSID,
                                   text="Yes, we ship to Portugal.", sent_at=1717430430.0)],
    "message__echo_instagram_app": [OutsideReply(
        channel="instagram", provider_id="aWdfZAG1faXRlbTox_igapp0001", contact_id=IGSID, sent_at=1717430790.0,
        text="Hi! Marta here, yes we ship to Lisbon in 2-3 days.")],
    "message__deleted": [MessageDeletion(channel="instagram", provider_id="aWdfZAG1faXRlbTox_del0001")],
    "message_edit__text": [MessageEdit(channel="instagram", provider_id=MID, text="hi! do you ship to Porto?")],
    "message__story_mention": [msg("aWdfZAG1faXRlbTox_mention0001", f"[story mention] {MENTION}", 1717430760000,
                                   attachments=(Attachment("text/uri-list", url=MENTION, filename="Story mention"),))],
    # a post share comes as `share` and `ig_post` (with the caption) for one post: one link
    "message__share": [msg("aWdfZAG1faXRlbTox_share0001", f"[shared post] {POST}", 1717430770000,
                           attachments=(Attachment("text/uri-list", url=POST, filename="New autumn collection is in!"),))],
    "message__ig_reel": [msg("aWdfZAG1faXRlbTox_reel0001", f"[reel] {REEL}", 1717430780000,
                             attachments=(Attachment("text/uri-list", url=REEL, filename="How we pack your orders"),))],
    "message__batched_unknown_sender": [  # the event without a sender is skipped, the others kept
        msg("aWdf_unknown0001", "hello, are you open today?", 1717430600001),
        msg("aWdf_unknown0003", "do you have gift cards?", 1717430600003, sender=IGSID2),
    ],
    "message__unsupported": [],
    "message__batched": [
        msg("aWdf_batch0001", "one", 1717430499001),
        msg("aWdf_batch0002", "two", 1717430499002, sender=IGSID2),
        read("m_fake000001"),
        msg("aWdf_batch0003", "three", 1717430499004),
    ],
    "postback__icebreaker": [msg("aWdfZAG1faXRlbTox_pb0001", "What are your opening hours?", 1717430440000)],
    "messaging_seen__read": [read("m_fake000001")],
    "reaction__love": [],
    "comments__unsupported": [],
}


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def test_every_fixture_has_an_expected_result() -> None:
    assert {p.stem for p in FIXTURES.glob("*.json")} == set(EXPECTED)
    assert (FIXTURES / "README.md").exists()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_parses_to_normalized_items(name: str) -> None:
    assert make_channel().parse(fixture(name), "application/json") == EXPECTED[name]


@pytest.mark.parametrize("body", [b"", b"\xff\xfe", b'{"object": "instagram", "entry": {}}', b'{"object": "instagram"}'])
def test_bodies_that_are_not_meta_webhooks_are_bad_payloads(body: bytes) -> None:
    with pytest.raises(BadPayload):
        make_channel().parse(body, "application/json")


def skipped(reason: str) -> float:
    return metrics.REGISTRY.get_sample_value("handoff_webhook_items_skipped_total",
                                             {"channel": "instagram", "reason": reason}) or 0.0


def test_an_entry_with_a_bad_messaging_list_is_skipped_and_counted() -> None:
    before = skipped("malformed_entry")
    body = b'{"object": "instagram", "entry": [{"messaging": {}}, ' + fixture("message__text").split(b'"entry": [', 1)[1]
    assert make_channel().parse(body, "application/json") == EXPECTED["message__text"]
    assert skipped("malformed_entry") == before + 1


def test_page_webhooks_are_not_instagram_messages() -> None:
    messenger_body = (Path(__file__).parents[2] / "webhooks" / "messenger" / "message__text.json").read_bytes()
    assert make_channel().parse(messenger_body, "application/json") == []


async def test_handshake() -> None:
    ok = make_mocked_request("GET", f"/webhooks/instagram?hub.mode=subscribe&hub.verify_token={VERIFY}&hub.challenge=abc123")
    bad = make_mocked_request("GET", "/webhooks/instagram?hub.mode=subscribe&hub.verify_token=nope&hub.challenge=abc123")
    assert (await make_channel().handshake(ok)).text == "abc123"
    assert (await make_channel().handshake(bad)).status == 403


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_signed_fixture_verifies(name: str) -> None:
    channel = make_channel()
    body = fixture(name)
    await channel.verify(make_mocked_request("POST", "/webhooks/instagram", headers=channel.sign(body)), body)


async def test_forged_missing_and_stale_signatures_are_rejected() -> None:
    channel = make_channel()
    body = fixture("message__text")
    other = InstagramChannel(app_secret="x", verify_token=VERIFY, token=TOKEN, graph_base="")
    for headers, payload in [
        ({}, body),
        (other.sign(body), body),
        (channel.sign(body), body.replace(b"Lisbon", b"Porto")),
        ({"X-Hub-Signature-256": channel.sign(body)["X-Hub-Signature-256"].upper()}, body),
    ]:
        with pytest.raises(InvalidSignature):
            await channel.verify(make_mocked_request("POST", "/webhooks/instagram", headers=headers), payload)


def test_from_settings() -> None:
    assert InstagramChannel.from_settings(Settings()) is None
    assert InstagramChannel.from_settings(
        Settings(meta_app_secret=SECRET, meta_verify_token=VERIFY, messenger_page_token="page")
    ) is None
    with pytest.raises(ChannelConfigError, match="META_APP_SECRET"):
        InstagramChannel.from_settings(Settings(instagram_access_token=TOKEN, meta_verify_token=VERIFY))
    channel = InstagramChannel.from_settings(
        Settings(meta_app_secret=SECRET, meta_verify_token=VERIFY, instagram_access_token=TOKEN)
    )
    assert isinstance(channel, InstagramChannel) and channel.graph.token == TOKEN


# -- Send API -----------------------------------------------------------------------------------

ADDRESS = Address(channel="instagram", contact_id=IGSID, conversation_key=IGSID)


def outbound(text: str = "Yes, we ship to Portugal.", *, kind: str = "bot", age: float | None = 60) -> OutboundMessage:
    last = None if age is None else time.time() - age
    return OutboundMessage(id=1, kind=kind, text=text, conversation_id=1, last_customer_message_at=last)  # type: ignore[arg-type]


@pytest.fixture
async def fake():
    async with FakeGraph(token=TOKEN, profiles={IGSID: {"name": "", "username": "ana.souza"}}) as server:
        yield server


@pytest.fixture
async def channel(fake: FakeGraph):
    ch = make_channel(fake.url + "/v21.0")
    yield ch
    await ch.close()


async def test_send_and_human_agent_tag(fake: FakeGraph, channel: InstagramChannel) -> None:
    assert await channel.send(ADDRESS, outbound()) == "m_fake000001"
    await channel.send(ADDRESS, outbound("An agent here.", kind="agent", age=50 * 3600))
    first, second = fake.sent
    assert first.json == {"recipient": {"id": IGSID}, "messaging_type": "RESPONSE", "message": {"text": "Yes, we ship to Portugal."}}
    assert second.json["messaging_type"] == "MESSAGE_TAG" and second.json["tag"] == "HUMAN_AGENT"
    assert second.query["access_token"] == TOKEN


async def test_text_is_split_to_1000(fake: FakeGraph, channel: InstagramChannel) -> None:
    await channel.send(ADDRESS, outbound("palavra " * 300))
    assert len(fake.sent) == 3 and all(len(r.json["message"]["text"]) <= 1000 for r in fake.sent)


async def test_errors(fake: FakeGraph, channel: InstagramChannel) -> None:
    fake.rate_limited(retry_after=3).server_error().window_closed()
    errors = []
    for _ in range(3):
        with pytest.raises(DeliveryError) as err:
            await channel.send(ADDRESS, outbound(age=None))
        errors.append(err.value)
    assert [(e.retryable, e.retry_after) for e in errors[:2]] == [(True, 3.0), (True, None)]
    assert not errors[2].retryable and errors[2].code == "10/2018278"
    with pytest.raises(DeliveryError, match="7-day"):
        await channel.send(ADDRESS, outbound(kind="agent", age=8 * 24 * 3600))


async def test_typing_and_username_as_name(fake: FakeGraph, channel: InstagramChannel) -> None:
    await channel.typing(ADDRESS, True)
    assert fake.actions == ["typing_on"]
    [message] = channel.parse(fixture("message__text"), "application/json")
    assert await channel.contact_name(message.contact_id) == "ana.souza"
    [lookup] = [r for r in fake.requests if r.method == "GET"]
    assert lookup.query["fields"] == "name,username"


def test_text_is_split_by_utf8_bytes() -> None:
    channel = make_channel()
    text = "こんにちは、ご注文の件です。" * 100
    chunks = channel.chunks(text)
    assert all(len(c.encode()) <= 1000 for c in chunks)
    assert "".join(chunks) == text


# -- through the app (/webhooks/instagram), on SQLite and PostgreSQL -----------------------------


@pytest.fixture
def settings(settings: Settings, fake: FakeGraph) -> Settings:
    """The conftest settings with the instagram channel on, pointed at the fake Graph API."""
    return settings.model_copy(update=dict(meta_app_secret=SECRET, meta_verify_token=VERIFY,
                               instagram_access_token=TOKEN, meta_graph_base=fake.url + "/v21.0"))


@pytest.fixture
def post(client):
    """Posts a JSON body to /webhooks/instagram signed as Meta would."""
    async def send(body: bytes, headers: dict[str, str] | None = None):
        return await client.post("/webhooks/instagram", data=body, headers=headers if headers is not None else make_channel().sign(body))

    return send


async def test_full_cycle(client, rt, make_agent, post, fake: FakeGraph) -> None:
    first = fixture("message__text")
    second = first.replace(b"Lisbon", b"Porto").replace(MID.encode(), b"m_second0001")
    await full_cycle(client, rt, make_agent, "instagram", post, first, second, "hi! do you ship to Lisbon?", "hi! do you ship to Porto?",
                     lambda: [r.json["message"].get("text") for r in fake.sent])
    assert all(r.json["recipient"] == {"id": IGSID} for r in fake.sent)
    [contact_conversation] = await Conversation.filter(channel="instagram").prefetch_related("contact")
    assert contact_conversation.contact_external_id == IGSID


async def test_handshake_through_the_app(client) -> None:
    ok = await client.get("/webhooks/instagram", params={"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "31337"})
    assert ok.status == 200 and await ok.text() == "31337"
    bad = await client.get("/webhooks/instagram", params={"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"})
    assert bad.status == 403


@pytest.mark.parametrize("name", ["message__text", "postback__icebreaker", "message__image"])
async def test_replay_stores_one_message(client, rt, post, name: str) -> None:
    [item] = make_channel().parse(fixture(name), "application/json")
    await replayed_four_times(rt, "instagram", post, fixture(name), item.provider_id)


async def test_batched_entries_are_stored_in_order(client, rt, post) -> None:
    assert (await post(fixture("message__batched"))).status == 200
    await settle(rt)
    stored = await Message.filter(channel="instagram", author_kind="customer").order_by("id")
    assert [m.provider_id for m in stored] == [i.provider_id for i in make_channel().parse(fixture("message__batched")) if isinstance(i, InboundMessage)]


async def test_bad_requests_are_rejected_and_store_nothing(client, post) -> None:
    body = fixture("message__text")
    other = InstagramChannel(app_secret="forged", verify_token=VERIFY, token=TOKEN, graph_base="")
    assert (await post(body, {})).status == 401
    assert (await post(body, other.sign(body))).status == 401
    assert (await post(body.replace(b"Lisbon", b"Porto"), make_channel().sign(body))).status == 401
    assert (await post(b"{not json")).status == 400
    assert (await post(b'{"object": "instagram", "entry": "x"}')).status == 400
    assert (await post(fixture("message__echo"))).status == 200
    assert await nothing_stored()


async def test_a_batch_with_an_event_without_sender_stores_the_other_messages(client, rt, post, fake: FakeGraph) -> None:
    before = skipped("unknown_sender")
    response = await post(fixture("message__batched_unknown_sender"))
    assert response.status == 200
    await settle(rt)
    stored = await Message.filter(channel="instagram", author_kind="customer").order_by("id")
    assert [m.provider_id for m in stored] == ["aWdf_unknown0001", "aWdf_unknown0003"]
    assert skipped("unknown_sender") == before + 1
