"""Messenger: fixture parsing, handshake and signature checks, settings, and the Send API,
typing and contact names against the local fake Graph API."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path

import pytest
from aiohttp.test_utils import make_mocked_request

from handoff.channels.base import BadPayload, ChannelConfigError, DeliveryError, InvalidSignature
from handoff.channels.messenger import MessengerChannel
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
from handoff.models import Contact, Conversation, Message, utcnow
from handoff.models import Outbox
from handoff.runtime import RUNTIME
from tests.channels import full_cycle, long_reply_resumed, nothing_stored, part_recorder, replayed_four_times
from tests.conftest import settle
from tests.fakes.graph_api import FakeGraph, Hold, Reply

FIXTURES = Path(__file__).parents[2] / "webhooks" / "messenger"
SECRET = "test-app-secret"
VERIFY = "test-verify-token"
TOKEN = "test-page-token"
APP_ID = "1517776481860111"  # our app: the id webhooks/messenger/message__echo.json carries
PSID = "6845720194837261"
PSID2 = "7012938475610293"


def make_channel(graph_base: str = "http://127.0.0.1:9/v21.0") -> MessengerChannel:
    return MessengerChannel(app_secret=SECRET, verify_token=VERIFY, token=TOKEN, graph_base=graph_base, app_id=APP_ID)


def msg(mid: str, text: str, ts: int, sender: str = PSID, **kw: object) -> InboundMessage:
    return InboundMessage(channel="messenger", provider_id=mid, contact_id=sender, text=text, sent_at=ts / 1000, **kw)  # type: ignore[arg-type]


def delivered(mid: str) -> DeliveryUpdate:
    return DeliveryUpdate(channel="messenger", provider_id=mid, state="delivered")


def share(url: str, name: str) -> Attachment:
    return Attachment("text/uri-list", url=url, filename=name)


MID = "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P"
IMAGE = "https://scontent.xx.fbcdn.net/v/t1.15752-9/photo_damaged_box.jpg"
REEL = "https://www.facebook.com/reel/918273645501928"
LINK = "https://shop.example.com/products/trail-runner"
JACKET = "https://scontent.xx.fbcdn.net/v/t45.5328-4/jacket_blue.jpg"
EXPECTED = {
    "message__text": [msg(MID, "Hello, is the store open on Sunday?", 1717430399870)],
    "message__quick_reply": [msg("m_quickreply0001", "Talk to a person", 1717430412001)],
    "message__reply_to": [msg("m_reply0001", "Yes, that one", 1717430415321)],
    "message__image": [
        msg("m_image0001", f"[image] {IMAGE}", 1717430420555, attachments=(Attachment("image/*", url=IMAGE),))
    ],
    "message__echo": [],  # ours: it carries our app id
    "message__echo_other_app": [OutsideReply(
        channel="messenger", provider_id="m_inbox0001", contact_id=PSID, app_id="263902037430900", sent_at=1717430750.0,
        text="Hi Ana, this is Marta from the shop. Your order left our warehouse today.")],
    "message__deleted": [MessageDeletion(channel="messenger", provider_id=MID)],
    "message_edit__text": [MessageEdit(channel="messenger", provider_id=MID, text="Hello, is the store open on Saturday?")],
    "message__reel": [msg("m_reel0001", f"[reel] {REEL}", 1717430720000, attachments=(share(REEL, "Reel"),))],
    "message__fallback_link": [msg("m_fallback0001", f"[shared link] {LINK}", 1717430730000,
                                   attachments=(share(LINK, "Trail running shoes – Example Outdoor"),))],
    "message__template_product": [msg("m_template0001", f"[shared item] {JACKET}", 1717430740000,
                                      attachments=(share(JACKET, "Blue rain jacket"),))],
    "message__batched_user_ref": [  # the postback from a checkbox-plugin user_ref is skipped
        msg("m_userref0001", "Do you deliver on Saturdays?", 1717430600001),
        msg("m_userref0003", "Is the blue jacket back in stock?", 1717430600003, sender=PSID2),
    ],
    "message__batched": [
        msg("m_batch0001", "first", 1717430499001),
        msg("m_batch0002", "second, another customer", 1717430499002, sender=PSID2),
        msg("m_batch0003", "third", 1717430499003),
        delivered("m_fake000001"),
    ],
    "postback__button": [msg("m_postback0001", "Track my order", 1717430440000)],
    "postback__get_started": [msg(f"postback:{PSID2}:1717430441000", "Get Started", 1717430441000, sender=PSID2)],
    "delivery__mids": [delivered("m_fake000001"), delivered("m_fake000002")],
    "read__watermark": [],
    "reaction__love": [],
}


def fixture(name: str) -> bytes:
    return (FIXTURES / f"{name}.json").read_bytes()


def test_every_fixture_has_an_expected_result() -> None:
    assert {p.stem for p in FIXTURES.glob("*.json")} == set(EXPECTED)
    assert (FIXTURES / "README.md").exists()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_parses_to_normalized_items(name: str) -> None:
    assert make_channel().parse(fixture(name), "application/json") == EXPECTED[name]


@pytest.mark.parametrize("body", [b"", b"{not json", b"[]", b'{"object": "page"}', b'{"object": "page", "entry": {}}'])
def test_bodies_that_are_not_meta_webhooks_are_bad_payloads(body: bytes) -> None:
    with pytest.raises(BadPayload):
        make_channel().parse(body, "application/json")


def skipped(reason: str) -> float:
    return metrics.REGISTRY.get_sample_value("handoff_webhook_items_skipped_total",
                                             {"channel": "messenger", "reason": reason}) or 0.0


GOOD = {"sender": {"id": PSID}, "recipient": {"id": "106295248973120"}, "timestamp": 1717430600009,
        "message": {"mid": "m_good0001", "text": "still here"}}


@pytest.mark.parametrize(("event", "reason"), [
    (1, "malformed_event"),
    ({"message": {"text": "no sender", "mid": "m_x1"}}, "unknown_sender"),
    ({"sender": {"user_ref": "ref-77"}, "message": {"mid": "m_x2", "text": "hi"}}, "unknown_sender"),
    ({"sender": {"id": PSID}, "message": {"text": "no mid"}}, "malformed_message"),
    ({"sender": {"id": PSID}, "message": {"mid": "m_x3", "text": 42}}, "malformed_message"),
    ({"sender": {"id": PSID}, "message": {"mid": "m_x4", "attachments": "x"}}, "empty_message"),
    ({"sender": {"id": PSID}, "message": {"mid": "m_x8", "attachments": [{"payload": {"url": IMAGE}}]}}, "empty_message"),
    ({"sender": {"id": PSID}, "message": "text"}, "malformed_message"),
    ({"sender": {"id": PSID}, "postback": {"title": ["x"]}}, "malformed_postback"),
    ({"sender": {"id": PSID}, "message_edit": {"mid": "m_x5"}}, "malformed_message_edit"),
    ({"sender": {"id": PSID}, "delivery": {"mids": "m_x6"}}, "malformed_delivery"),
    ({"sender": {"id": PSID}, "reaction": {"mid": "m_x7", "reaction": "love"}}, "unhandled_event"),
])
def test_an_unusable_event_is_skipped_and_counted_and_the_rest_kept(event: object, reason: str) -> None:
    before = skipped(reason)
    body = json.dumps({"object": "page", "entry": [{"id": "1", "messaging": [event, GOOD]}, 7]}).encode()
    [item] = make_channel().parse(body, "application/json")
    assert item.provider_id == "m_good0001"
    assert skipped(reason) == before + 1
    assert skipped("malformed_entry") >= 1  # the entry `7`


def test_other_objects_are_ignored() -> None:
    body = fixture("message__text").replace(b'"object": "page"', b'"object": "instagram"')
    assert make_channel().parse(body, "application/json") == []


# -- handshake and signatures -------------------------------------------------------------------


async def test_handshake_echoes_the_challenge() -> None:
    req = make_mocked_request("GET", f"/webhooks/messenger?hub.mode=subscribe&hub.verify_token={VERIFY}&hub.challenge=1158201444")
    response = await make_channel().handshake(req)
    assert response.status == 200 and response.text == "1158201444"


@pytest.mark.parametrize(
    "query",
    ["hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1", "hub.mode=unsubscribe&hub.verify_token=" + VERIFY + "&hub.challenge=1",
     "hub.challenge=1", ""],
)
async def test_handshake_with_a_wrong_token_is_forbidden(query: str) -> None:
    response = await make_channel().handshake(make_mocked_request("GET", "/webhooks/messenger?" + query))
    assert response.status == 403


@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_signed_fixture_verifies(name: str) -> None:
    channel = make_channel()
    body = fixture(name)
    await channel.verify(make_mocked_request("POST", "/webhooks/messenger", headers=channel.sign(body)), body)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-Hub-Signature-256": ""},
        {"X-Hub-Signature-256": "sha256=" + "0" * 64},
        {"X-Hub-Signature": "sha1=whatever"},
        MessengerChannel(app_secret="other", verify_token=VERIFY, token=TOKEN, graph_base="").sign(b"x"),
    ],
    ids=["missing", "empty", "forged", "sha1-only", "other-secret"],
)
async def test_bad_signatures_are_rejected(headers: dict[str, str]) -> None:
    body = fixture("message__text")
    with pytest.raises(InvalidSignature):
        await make_channel().verify(make_mocked_request("POST", "/webhooks/messenger", headers=headers), body)


async def test_signature_of_an_earlier_body_is_rejected() -> None:
    channel = make_channel()
    stale = fixture("message__text")
    tampered = stale.replace(b"Sunday", b"Monday")
    with pytest.raises(InvalidSignature):
        await channel.verify(make_mocked_request("POST", "/", headers=channel.sign(stale)), tampered)


# -- settings -----------------------------------------------------------------------------------


def test_from_settings() -> None:
    assert MessengerChannel.from_settings(Settings()) is None
    # Only Instagram configured: Messenger is simply off.
    assert MessengerChannel.from_settings(
        Settings(meta_app_secret=SECRET, meta_verify_token=VERIFY, instagram_access_token="ig")
    ) is None
    with pytest.raises(ChannelConfigError, match="META_APP_SECRET, META_VERIFY_TOKEN"):
        MessengerChannel.from_settings(Settings(messenger_page_token=TOKEN))
    with pytest.raises(ChannelConfigError, match="META_VERIFY_TOKEN"):
        MessengerChannel.from_settings(Settings(messenger_page_token=TOKEN, meta_app_secret=SECRET))
    with pytest.raises(ChannelConfigError, match="MESSENGER_PAGE_TOKEN"):
        MessengerChannel.from_settings(Settings(meta_app_secret=SECRET, meta_verify_token=VERIFY))
    channel = MessengerChannel.from_settings(
        Settings(meta_app_secret=SECRET, meta_verify_token=VERIFY, messenger_page_token=TOKEN, meta_graph_base="http://x/v21.0/")
    )
    assert isinstance(channel, MessengerChannel) and channel.graph.base == "http://x/v21.0"


# -- Send API -----------------------------------------------------------------------------------

ADDRESS = Address(channel="messenger", contact_id=PSID, conversation_key=PSID)
HOUR = 3600


def outbound(text: str = "We open at 10.", *, kind: str = "bot", age: float | None = 60, **kw: object) -> OutboundMessage:
    last = None if age is None else time.time() - age
    return OutboundMessage(id=1, kind=kind, text=text, conversation_id=1, last_customer_message_at=last, **kw)  # type: ignore[arg-type]


@pytest.fixture
async def fake():
    async with FakeGraph(token=TOKEN, profiles={PSID: {"name": "Ana Souza", "first_name": "Ana"}}) as server:
        yield server


@pytest.fixture
async def channel(fake: FakeGraph):
    ch = make_channel(fake.url + "/v21.0")
    yield ch
    await ch.close()


async def test_reply_inside_the_window_is_a_response(fake: FakeGraph, channel: MessengerChannel) -> None:
    mid = await channel.send(ADDRESS, outbound())
    assert mid == "m_fake000001"
    [sent] = fake.sent
    assert sent.path == "/v21.0/me/messages" and sent.query["access_token"] == TOKEN
    assert sent.json == {"recipient": {"id": PSID}, "messaging_type": "RESPONSE", "message": {"text": "We open at 10."}}


async def test_attachments_and_long_text(fake: FakeGraph, channel: MessengerChannel) -> None:
    await channel.send(ADDRESS, outbound("word " * 500, attachments=(Attachment("image/png", url="https://cdn.example.com/a.png"),)))
    texts = [r.json["message"].get("text") for r in fake.sent if "text" in r.json["message"]]
    assert len(texts) == 2 and all(len(t) <= 2000 for t in texts)
    assert fake.sent[-1].json["message"] == {"attachment": {"type": "image", "payload": {"url": "https://cdn.example.com/a.png"}}}


async def test_a_failed_part_reports_progress_and_the_resend_skips_accepted_parts(fake: FakeGraph, channel: MessengerChannel) -> None:
    progress, on_part_sent = part_recorder()
    image = "https://cdn.example.com/a.png"
    message = outbound("word " * 500, attachments=(Attachment("image/png", url=image),), on_part_sent=on_part_sent)
    fake.messages_then(Reply(), Reply(status=500, code=2))
    with pytest.raises(DeliveryError) as err:
        await channel.send(ADDRESS, message)
    assert err.value.retryable and err.value.parts_sent == 1
    assert progress == [(1, "m_fake000001")]
    assert await channel.send(ADDRESS, dataclasses.replace(message, parts_sent=1)) == "m_fake000002"
    assert progress == [(1, "m_fake000001"), (2, "m_fake000002")]  # the last part is the caller's to record
    received = [m.get("text") or m["attachment"]["payload"]["url"] for _, m in fake.accepted]
    assert received == [*channel.chunks(message.text), image]


async def test_agent_reply_after_24h_uses_the_human_agent_tag(fake: FakeGraph, channel: MessengerChannel) -> None:
    await channel.send(ADDRESS, outbound("Sorry for the wait!", kind="agent", age=3 * 24 * HOUR))
    [sent] = fake.sent
    assert sent.json["messaging_type"] == "MESSAGE_TAG" and sent.json["tag"] == "HUMAN_AGENT"


@pytest.mark.parametrize(("kind", "age"), [("agent", 8 * 24 * HOUR), ("bot", 25 * HOUR), ("notice", 30 * HOUR)])
async def test_outside_the_allowed_window_nothing_is_sent(fake: FakeGraph, channel: MessengerChannel, kind: str, age: float) -> None:
    with pytest.raises(DeliveryError) as err:
        await channel.send(ADDRESS, outbound(kind=kind, age=age))
    assert not err.value.retryable and "window" in str(err.value)
    assert fake.sent == []


async def test_rate_limit_is_retryable_with_retry_after(fake: FakeGraph, channel: MessengerChannel) -> None:
    fake.rate_limited(retry_after=12)
    with pytest.raises(DeliveryError) as err:
        await channel.send(ADDRESS, outbound())
    assert err.value.retryable and err.value.retry_after == 12.0


async def test_server_error_is_retryable(fake: FakeGraph, channel: MessengerChannel) -> None:
    fake.server_error(502)
    with pytest.raises(DeliveryError) as err:
        await channel.send(ADDRESS, outbound())
    assert err.value.retryable


async def test_slow_graph_times_out_retryable(fake: FakeGraph, channel: MessengerChannel) -> None:
    channel.graph.timeout = 0.2
    fake.slow(0.6)
    with pytest.raises(DeliveryError) as err:
        await channel.send(ADDRESS, outbound())
    assert err.value.retryable and err.value.code == "network"


async def test_window_error_from_meta_is_final(fake: FakeGraph, channel: MessengerChannel) -> None:
    fake.window_closed()
    with pytest.raises(DeliveryError) as err:
        await channel.send(ADDRESS, outbound(age=None))
    assert not err.value.retryable and err.value.code == "10/2018278"
    assert "window" in str(err.value)


async def test_bad_token_is_final(fake: FakeGraph) -> None:
    channel = MessengerChannel(app_secret=SECRET, verify_token=VERIFY, token="wrong", graph_base=fake.url + "/v21.0")
    with pytest.raises(DeliveryError) as err:
        await channel.send(ADDRESS, outbound())
    await channel.close()
    assert not err.value.retryable and err.value.code == "190"


async def test_typing_sends_sender_actions(fake: FakeGraph, channel: MessengerChannel) -> None:
    await channel.typing(ADDRESS, True)
    await channel.typing(ADDRESS, False)
    assert fake.actions == ["typing_on", "typing_off"]
    fake.server_error()
    await channel.typing(ADDRESS, True)  # best effort: no exception


async def test_contact_name_is_fetched_once_and_cached(fake: FakeGraph, channel: MessengerChannel) -> None:
    assert channel.cached_name(PSID) == (False, None)
    assert await channel.contact_name(PSID) == "Ana Souza"
    assert await channel.contact_name(PSID) == "Ana Souza"
    assert channel.cached_name(PSID) == (True, "Ana Souza")
    lookups = [r for r in fake.requests if r.method == "GET"]
    assert len(lookups) == 1 and lookups[0].path == f"/v21.0/{PSID}" and lookups[0].query["fields"] == "name"


async def test_contact_name_failures(fake: FakeGraph, channel: MessengerChannel) -> None:
    assert await channel.contact_name(PSID2) is None  # no such profile: remembered as unavailable
    assert channel.cached_name(PSID2) == (True, None)
    fake.profile_script.append(Reply(status=503))
    assert await channel.contact_name(PSID) is None
    assert channel.cached_name(PSID) == (False, None)  # transient failure: not cached
    assert await channel.contact_name(PSID) == "Ana Souza"


def test_name_cache_is_bounded() -> None:
    channel = make_channel()
    channel.names.maxsize = 3
    for i in range(10):
        channel.names.put(str(i), f"n{i}")
    assert len(channel.names) == 3 and channel.names.get("9") == (True, "n9") and channel.names.get("0") == (False, None)


def test_fixtures_are_valid_json_in_the_documented_envelope() -> None:
    for path in FIXTURES.glob("*.json"):
        data = json.loads(path.read_bytes())
        assert data["object"] == "page" and isinstance(data["entry"], list)


# -- through the app (/webhooks/messenger), on SQLite and PostgreSQL -----------------------------


@pytest.fixture
def settings(settings: Settings, fake: FakeGraph) -> Settings:
    """The conftest settings with the messenger channel on, pointed at the fake Graph API."""
    return settings.model_copy(update=dict(meta_app_secret=SECRET, meta_verify_token=VERIFY, meta_app_id=APP_ID,
                               messenger_page_token=TOKEN, meta_graph_base=fake.url + "/v21.0"))


@pytest.fixture
def post(client):
    """Posts a JSON body to /webhooks/messenger signed as Meta would."""
    async def send(body: bytes, headers: dict[str, str] | None = None):
        return await client.post("/webhooks/messenger", data=body, headers=headers if headers is not None else make_channel().sign(body))

    return send


async def test_full_cycle(client, rt, make_agent, post, fake: FakeGraph) -> None:
    first = fixture("message__text")
    second = first.replace(b"Sunday", b"Monday").replace("m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P".encode(), b"m_second0001")
    await full_cycle(client, rt, make_agent, "messenger", post, first, second, "Hello, is the store open on Sunday?", "Hello, is the store open on Monday?",
                     lambda: [r.json["message"].get("text") for r in fake.sent])
    assert all(r.json["recipient"] == {"id": PSID} for r in fake.sent)
    [contact_conversation] = await Conversation.filter(channel="messenger").prefetch_related("contact")
    assert contact_conversation.contact_external_id == PSID


LONG = "word " * 450 + "end"


def long_message(text: str = LONG) -> bytes:
    return fixture("message__text").replace(b"Hello, is the store open on Sunday?", text.encode())


def accepted_texts(fake: FakeGraph) -> list[str]:
    return [m["text"] for _, m in fake.accepted]


@pytest.mark.parametrize("failure", [Reply(status=503, code=2), Reply(429, 613, None, "rate limit", {"Retry-After": "0.05"})],
                         ids=["5xx", "429"])
async def test_a_retry_resumes_after_the_parts_meta_accepted(client, rt, post, fake: FakeGraph, failure: Reply) -> None:
    fake.messages_then(Reply(), failure)
    parts = rt.channels["messenger"].chunks(f"echo: {LONG}")
    reply = await long_reply_resumed(rt, post, long_message(), parts, lambda: accepted_texts(fake))
    assert " ".join(parts).split() == f"echo: {LONG}".split()
    first_mid = fake.accepted[0][0]
    assert reply.provider_id == first_mid  # receipts name the first part
    receipt = fixture("delivery__mids").replace(b"m_fake000001", first_mid.encode()).replace(b"m_fake000002", b"m_other")
    assert (await post(receipt)).status == 200
    assert (await Message.get(id=reply.id)).delivery_status == "delivered"


async def test_a_restart_resumes_after_the_parts_meta_accepted(aiohttp_client, app_factory, fake: FakeGraph) -> None:
    fake.messages_then(Reply(), Reply(429, 613, None, "rate limit", {"Retry-After": "3600"}))
    first = await aiohttp_client(app_factory(workers=False))
    body = long_message()
    assert (await first.post("/webhooks/messenger", data=body, headers=make_channel().sign(body))).status == 200
    await first.app[RUNTIME].drain()
    await first.app[RUNTIME].outbox.run_once()
    parts = first.app[RUNTIME].channels["messenger"].chunks(f"echo: {LONG}")
    assert accepted_texts(fake) == parts[:1]
    await first.close()

    second = await aiohttp_client(app_factory(workers=False))
    await Outbox.all().update(next_attempt_at=utcnow())  # the hour of Retry-After has passed
    await settle(second.app[RUNTIME])
    assert accepted_texts(fake) == parts
    reply = await Message.get(author_kind="bot")
    assert reply.delivery_status == "sent" and reply.provider_id == fake.accepted[0][0]


async def stored_contact() -> Contact:
    [message] = await Message.filter(channel="messenger", author_kind="customer")
    conversation = await Conversation.get(id=message.conversation_id).prefetch_related("contact")
    return conversation.contact


async def test_the_webhook_is_acknowledged_before_the_profile_answers(client, rt, post, fake: FakeGraph) -> None:
    hold = Hold()
    fake.profile_script.append(Reply(hold=hold))
    rt.channels["messenger"].name_timeout = 3600  # an ack that waited for the lookup would never come
    async with rt.hub.subscribe() as events:
        try:
            acked = await asyncio.wait_for(post(fixture("message__text")), 60)  # a deadlock guard, not a speed limit
            assert acked.status == 200  # answered while the profile answer is held back
            await asyncio.wait_for(hold.reached.wait(), 60)
            assert (await stored_contact()).name is None
        finally:
            hold.release()
        await settle(rt)
        assert (await stored_contact()).name == "Ana Souza"
        updates = [e for e in _drain(events) if e["kind"] == "conversation.updated" and "contact" in e]
    assert all(isinstance(update.pop("seq"), int) for update in updates)  # logged: a desk resumes after it
    assert len([r for r in fake.requests if r.method == "GET"]) == 1
    contact = await stored_contact()
    assert updates == [{"kind": "conversation.updated", "conversation_id": (await Conversation.get()).id,
                        "contact": {"id": contact.id, "name": "Ana Souza"}}]


def _drain(events) -> list[dict]:
    out = []
    while not events.queue.empty():
        out.append(events.queue.get_nowait())
    return out


@pytest.mark.parametrize("profile", [Reply(status=503, code=2), Reply(status=400, code=100, subcode=33)], ids=["5xx", "no-profile"])
async def test_a_failed_profile_lookup_keeps_the_message_and_no_name(client, rt, post, fake: FakeGraph, profile: Reply) -> None:
    fake.profile_script.append(profile)
    assert (await post(fixture("message__text"))).status == 200
    await settle(rt)
    assert (await stored_contact()).name is None
    assert [r.json["message"]["text"] for r in fake.sent] == ["echo: Hello, is the store open on Sunday?"]


async def test_a_known_name_is_reused_and_never_replaced(aiohttp_client, app_factory, client, rt, post, fake: FakeGraph) -> None:
    assert (await post(fixture("message__text"))).status == 200
    await settle(rt)
    second = fixture("message__text").replace(b"m_AG5Hz2Uq7t", b"m_second0001")
    assert (await post(second)).status == 200  # cached: stored with the name, no second lookup
    await settle(rt)
    assert len([r for r in fake.requests if r.method == "GET"]) == 1
    await Contact.all().update(name="Ana (VIP)")  # as an agent would rename her

    restarted = await aiohttp_client(app_factory())  # an empty name cache
    third = fixture("message__text").replace(b"m_AG5Hz2Uq7t", b"m_third00001")
    assert (await restarted.post("/webhooks/messenger", data=third, headers=make_channel().sign(third))).status == 200
    await settle(restarted.app[RUNTIME])
    assert [c.name for c in await Contact.all()] == ["Ana (VIP)"]
    assert len([r for r in fake.requests if r.method == "GET"]) == 1  # a named contact is not looked up again


async def test_handshake_through_the_app(client) -> None:
    ok = await client.get("/webhooks/messenger", params={"hub.mode": "subscribe", "hub.verify_token": VERIFY, "hub.challenge": "31337"})
    assert ok.status == 200 and await ok.text() == "31337"
    bad = await client.get("/webhooks/messenger", params={"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"})
    assert bad.status == 403


@pytest.mark.parametrize("name", ["message__text", "postback__button", "message__image"])
async def test_replay_stores_one_message(client, rt, post, name: str) -> None:
    [item] = make_channel().parse(fixture(name), "application/json")
    await replayed_four_times(rt, "messenger", post, fixture(name), item.provider_id)


async def test_batched_entries_are_stored_in_order(client, rt, post) -> None:
    assert (await post(fixture("message__batched"))).status == 200
    await settle(rt)
    stored = await Message.filter(channel="messenger", author_kind="customer").order_by("id")
    assert [m.provider_id for m in stored] == [i.provider_id for i in make_channel().parse(fixture("message__batched")) if isinstance(i, InboundMessage)]


async def test_bad_requests_are_rejected_and_store_nothing(client, post) -> None:
    body = fixture("message__text")
    other = MessengerChannel(app_secret="forged", verify_token=VERIFY, token=TOKEN, graph_base="")
    assert (await post(body, {})).status == 401
    assert (await post(body, other.sign(body))).status == 401
    assert (await post(body.replace(b"Sunday", b"Monday"), make_channel().sign(body))).status == 401
    assert (await post(b"{not json")).status == 400
    assert (await post(b'{"object": "page", "entry": "x"}')).status == 400
    assert (await post(fixture("message__echo"))).status == 200
    assert await nothing_stored()


async def test_a_batch_with_an_unusable_postback_stores_the_other_messages(client, rt, post, fake: FakeGraph) -> None:
    before = skipped("unknown_sender")
    response = await post(fixture("message__batched_user_ref"))
    assert response.status == 200 and await response.json() == {"ok": True}
    await settle(rt)
    stored = await Message.filter(channel="messenger", author_kind="customer").order_by("id")
    assert [(m.provider_id, m.text) for m in stored] == [("m_userref0001", "Do you deliver on Saturdays?"),
                                                        ("m_userref0003", "Is the blue jacket back in stock?")]
    assert skipped("unknown_sender") == before + 1
    assert sorted(r.json["message"]["text"] for r in fake.sent) == ["echo: Do you deliver on Saturdays?",
                                                                    "echo: Is the blue jacket back in stock?"]
    assert (await post(fixture("message__batched_user_ref"))).status == 200  # Meta's retry: a no-op
    assert await Message.filter(channel="messenger", author_kind="customer").count() == 2
    assert skipped("unknown_sender") == before + 2


def test_echoes_without_content_give_nothing_and_unsent_echoes_are_deletions() -> None:
    def echo(**message: object) -> bytes:
        event = {"sender": {"id": "106295248973120"}, "recipient": {"id": PSID}, "timestamp": 1717430750000,
                 "message": {"is_echo": True, "app_id": 263902037430900, "mid": "m_echo0009", **message}}
        return json.dumps({"object": "page", "entry": [{"id": "106295248973120", "messaging": [event]}]}).encode()

    assert make_channel().parse(echo(), "application/json") == []
    assert make_channel().parse(echo(is_deleted=True), "application/json") == [
        MessageDeletion(channel="messenger", provider_id="m_echo0009")]
    [reply] = make_channel().parse(echo(attachments=[{"type": "image", "payload": {"url": IMAGE}}]), "application/json")
    assert isinstance(reply, OutsideReply) and reply.attachments == (Attachment("image/*", url=IMAGE),)


def test_an_attachment_of_an_unknown_shape_never_costs_the_words_with_it() -> None:
    event = {"sender": {"id": PSID}, "timestamp": 1717430600009, "message": {
        "mid": "m_words0001", "text": "here is the photo", "attachments": [7, {"type": "image", "payload": "x"},
                                                                          {"type": "image", "payload": {"url": IMAGE}}]}}
    body = json.dumps({"object": "page", "entry": [{"id": "1", "messaging": [event]}]}).encode()
    assert make_channel().parse(body, "application/json") == [
        msg("m_words0001", "here is the photo", 1717430600009, attachments=(Attachment("image/*", url=IMAGE),))]
