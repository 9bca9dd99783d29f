"""Delivery receipts that arrive before the provider's send call answers, through the real wire:
the fake Twilio API posts its signed status callback to /webhooks/whatsapp, and the fake Graph
API its signed Messenger delivery / Instagram read webhook, before answering the send; on SQLite
and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

import pytest

from handoff import receipts
from handoff.channels.meta import sign_headers
from handoff.channels.whatsapp import WhatsAppChannel
from handoff.config import Settings
from handoff.models import Event, Message, PendingReceipt, utcnow
from handoff.runtime import RUNTIME
from handoff.sweeper import sweep_receipts
from tests.conftest import settle
from tests.fakes.graph_api import FakeGraph
from tests.fakes.twilio_api import FakeTwilio

WEBHOOKS = Path(__file__).parents[1] / "webhooks"
AC = "AC" + "0" * 32
TWILIO_TOKEN = "test-auth-token"
META_SECRET = "test-app-secret"
GRAPH_TOKEN = "test-graph-token"
FIXTURE_SID = "SM9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"


def fixture(name: str) -> bytes:
    return (WEBHOOKS / name).read_bytes()


@pytest.fixture
async def twilio():
    async with FakeTwilio(AC, TWILIO_TOKEN) as server:
        yield server


@pytest.fixture
async def graph():
    async with FakeGraph(token=GRAPH_TOKEN) as server:
        yield server


@pytest.fixture
def settings(settings: Settings, twilio: FakeTwilio, graph: FakeGraph) -> Settings:
    """WhatsApp, Messenger and Instagram on, pointed at the fakes."""
    return settings.model_copy(update=dict(twilio_account_sid=AC, twilio_auth_token=TWILIO_TOKEN, twilio_whatsapp_number="+14155238886",
        twilio_api_base=twilio.url, meta_app_secret=META_SECRET, meta_verify_token="verify",
        messenger_page_token=GRAPH_TOKEN, instagram_access_token=GRAPH_TOKEN, meta_graph_base=graph.url + "/v21.0"))


@pytest.fixture
def whatsapp(client, settings: Settings, twilio: FakeTwilio):
    """Posts a form to /webhooks/whatsapp signed as Twilio would; status callbacks of the fake
    reach the test server (the StatusCallback URL names the public URL)."""
    twilio.callback_host = str(client.make_url("")).rstrip("/")
    signer = WhatsAppChannel.from_settings(settings)

    async def post(body: bytes):
        return await client.post("/webhooks/whatsapp", data=body,
                                 headers=signer.sign(body, settings.public_url + "/webhooks/whatsapp"))

    return post


def customer_text(sid: str = "SM1f0e8ae6d5a1b2c3d4e5f60718293a4b", number: str = "+5511987654321") -> bytes:
    form = dict(parse_qsl(fixture("whatsapp/message__text.txt").decode()))
    form.update(MessageSid=sid, SmsSid=sid, SmsMessageSid=sid, From=f"whatsapp:{number}", WaId=number[1:])
    return urlencode(form).encode()


def status(name: str, sid: str = FIXTURE_SID) -> bytes:
    """A status callback fixture, naming `sid`."""
    form = dict(parse_qsl(fixture(f"whatsapp/status__{name}.txt").decode()))
    form.update(MessageSid=sid, SmsSid=sid)
    return urlencode(form).encode()


async def bot_reply(channel: str) -> Message:
    [reply] = await Message.filter(channel=channel, author_kind="bot")
    return reply


async def applied(rt, channel: str, count: int = 1) -> list[Message]:
    """The bot replies once delivered and their kept receipts applied: the outbox applies them
    just after committing the reply's provider id, so a moment after `settle` sees it done."""
    await settle(rt)
    for _ in range(500):
        replies = await Message.filter(channel=channel, author_kind="bot").order_by("id")
        ids = [m.provider_id for m in replies]
        if None not in ids and not await PendingReceipt.filter(channel=channel, provider_id__in=ids).exists():
            break
        await asyncio.sleep(0.01)
    replies = await Message.filter(channel=channel, author_kind="bot").order_by("id")
    assert len(replies) == count
    return replies


async def timeline(client, make_agent, reply: Message) -> list[dict]:
    _, headers = await make_agent("Ana")
    response = await client.get(f"/api/v1/conversations/{reply.conversation_id}", headers=headers)
    assert response.status == 200
    return [e for e in (await response.json())["events"] if e["kind"] == "delivery_failed"]


# -- early receipts through the wire ------------------------------------------------------------


async def test_twilio_undelivered_before_the_send_answers_fails_the_reply_visibly(
        client, rt, make_agent, whatsapp, twilio: FakeTwilio) -> None:
    twilio.status_callbacks_first(status("undelivered_63016"))
    assert (await whatsapp(customer_text())).status == 200
    [reply] = await applied(rt, "whatsapp")
    assert twilio.callback_statuses == [200]  # answered (and kept) before Twilio answered the create
    assert reply.provider_id == twilio.accepted[0][0]
    assert reply.delivery_status == "undelivered"
    assert reply.delivery_error == "error 63016 outside the 24-hour WhatsApp window: only an approved template can be sent"
    [failed] = await timeline(client, make_agent, reply)
    assert failed["data"] == {"message_id": reply.id, "reason": reply.delivery_error}
    assert await PendingReceipt.all().count() == 0


async def test_meta_delivery_before_the_send_answers_marks_the_reply_delivered(client, rt, graph: FakeGraph) -> None:
    receipt = fixture("messenger/delivery__mids.json").replace(b"m_fake000002", b"m_sent_by_another_app")
    graph.webhook_first(str(client.make_url("/webhooks/messenger")), META_SECRET, receipt)
    body = fixture("messenger/message__text.json")
    assert (await client.post("/webhooks/messenger", data=body, headers=sign_headers(META_SECRET, body))).status == 200
    [reply] = await applied(rt, "messenger")
    assert graph.webhook_statuses == [200]
    assert (reply.provider_id, reply.delivery_status, reply.delivery_error) == (graph.accepted[0][0], "delivered", None)
    # the other mid is no message of ours: kept until it expires
    assert await PendingReceipt.all().values_list("provider_id", flat=True) == ["m_sent_by_another_app"]


async def test_instagram_read_before_the_send_answers_marks_the_reply_read(client, rt, graph: FakeGraph) -> None:
    graph.webhook_first(str(client.make_url("/webhooks/instagram")), META_SECRET,
                        fixture("instagram/messaging_seen__read.json"))
    body = fixture("instagram/message__text.json")
    assert (await client.post("/webhooks/instagram", data=body, headers=sign_headers(META_SECRET, body))).status == 200
    [reply] = await applied(rt, "instagram")
    assert graph.webhook_statuses == [200]
    assert (reply.provider_id, reply.delivery_status) == (graph.accepted[0][0], "read")
    assert await PendingReceipt.all().count() == 0


async def test_early_receipts_out_of_order_end_at_the_most_advanced_state(client, rt, whatsapp, twilio: FakeTwilio) -> None:
    twilio.status_callbacks_first(status("read"), status("delivered"), status("sent"))
    assert (await whatsapp(customer_text())).status == 200
    [reply] = await applied(rt, "whatsapp")
    assert twilio.callback_statuses == [200, 200, 200]
    assert reply.delivery_status == "read"
    assert await PendingReceipt.all().count() == 0
    # a late, older receipt once the id is known never moves it back
    assert (await whatsapp(status("delivered", twilio.accepted[0][0]))).status == 200
    assert (await bot_reply("whatsapp")).delivery_status == "read"


async def test_a_duplicated_early_receipt_is_applied_once(client, rt, make_agent, whatsapp, twilio: FakeTwilio) -> None:
    undelivered = status("undelivered_63016")
    twilio.status_callbacks_first(undelivered, undelivered)
    assert (await whatsapp(customer_text())).status == 200
    [reply] = await applied(rt, "whatsapp")
    assert twilio.callback_statuses == [200, 200]
    assert reply.delivery_status == "undelivered"
    # Twilio retries the callback once more after the id is known: still one failure on the timeline
    assert (await whatsapp(status("undelivered_63016", reply.provider_id))).status == 200
    assert len(await timeline(client, make_agent, reply)) == 1
    assert await PendingReceipt.all().count() == 0


async def test_receipts_racing_the_send_between_two_instances_are_never_lost(
        aiohttp_client, app_factory, client, rt, whatsapp, twilio: FakeTwilio) -> None:
    """The sending instance (`client`) and another one receiving Twilio's callbacks, posted at
    the same moment as the create's answer: every reply ends delivered, whichever commits first."""
    other = await aiohttp_client(app_factory(workers=False))
    twilio.callback_host = str(other.make_url("")).rstrip("/")
    count = 12
    for i in range(count):
        twilio.status_callbacks_first(status("delivered"), wait=False)
    for i in range(count):
        assert (await whatsapp(customer_text(f"SMc{i:031x}", f"+55119876{i:05d}"))).status == 200
    await settle(rt)
    await twilio.settle()
    replies = await applied(rt, "whatsapp", count)
    assert twilio.callback_statuses == [200] * count
    assert {m.delivery_status for m in replies} == {"delivered"}
    assert await PendingReceipt.all().count() == 0
    assert other.app[RUNTIME] is not rt


# -- kept receipts: the sweeper --------------------------------------------------------------


async def test_a_kept_receipt_for_an_id_a_message_took_without_applying_is_applied_by_the_sweeper(
        client, rt, whatsapp, twilio: FakeTwilio) -> None:
    """A crash between the outbox's commit of the id and its applying the kept receipts."""
    assert (await whatsapp(customer_text())).status == 200
    await settle(rt)
    reply = await bot_reply("whatsapp")
    await Message.filter(id=reply.id).update(provider_id="SMcrashed0000000000000000000000001")
    assert (await whatsapp(status("delivered", "SMcrashed0000000000000000000000002"))).status == 200
    await PendingReceipt.filter(provider_id="SMcrashed0000000000000000000000002").update(
        provider_id="SMcrashed0000000000000000000000001")
    assert (await bot_reply("whatsapp")).delivery_status == "sent"
    assert await sweep_receipts(rt) == (1, 0)
    assert (await bot_reply("whatsapp")).delivery_status == "delivered"
    assert await PendingReceipt.all().count() == 0


async def test_receipts_kept_longer_than_a_day_are_swept(client, rt, whatsapp) -> None:
    expired = receipts.RECEIPTS_EXPIRED.labels("whatsapp")
    before = expired._value.get()
    assert (await whatsapp(status("delivered", "SMold"))).status == 200
    assert (await whatsapp(status("read", "SMold"))).status == 200
    assert (await whatsapp(status("delivered", "SMrecent"))).status == 200
    assert await PendingReceipt.all().count() == 3
    old = utcnow() - receipts.PENDING_RECEIPT_TTL - timedelta(minutes=1)
    await PendingReceipt.filter(provider_id="SMold").update(created_at=old)
    assert await sweep_receipts(rt) == (0, 2)
    assert await PendingReceipt.all().values_list("provider_id", flat=True) == ["SMrecent"]
    assert expired._value.get() == before + 2
    assert await Message.all().count() == 0


async def test_a_retried_early_receipt_is_kept_once(client, rt, whatsapp) -> None:
    responses = await asyncio.gather(*(whatsapp(status("undelivered_63016", "SMunknown")) for _ in range(4)))
    assert [r.status for r in responses] == [200] * 4
    [kept] = await PendingReceipt.all()
    assert (kept.channel, kept.provider_id, kept.state, kept.error_code) == ("whatsapp", "SMunknown", "undelivered", "63016")
    assert await Event.all().count() == 0


async def test_the_sweep_goes_through_every_kept_receipt_a_batch_at_a_time(
        client, rt, whatsapp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(receipts, "SWEEP_BATCH", 2)
    for i in range(5):
        assert (await whatsapp(status("delivered", f"SMgone{i}"))).status == 200
    await PendingReceipt.all().update(created_at=utcnow() - receipts.PENDING_RECEIPT_TTL - timedelta(seconds=1))
    assert (await whatsapp(customer_text())).status == 200
    [reply] = await applied(rt, "whatsapp")
    assert (await whatsapp(status("read", "SMlate"))).status == 200  # kept after the five: the sixth row
    await Message.filter(id=reply.id).update(provider_id="SMlate")  # as if the outbox died before applying it
    assert await sweep_receipts(rt) == (1, 5)
    assert (await bot_reply("whatsapp")).delivery_status == "read"
    assert await PendingReceipt.all().count() == 0


async def test_an_early_receipt_for_the_first_part_of_a_split_reply_is_applied_when_the_last_is_sent(
        client, rt, whatsapp, twilio: FakeTwilio) -> None:
    twilio.status_callbacks_first(status("delivered"))  # about the first part, while the second is not sent yet
    form = dict(parse_qsl(customer_text().decode()))
    assert (await whatsapp(urlencode({**form, "Body": "word " * 400}).encode())).status == 200
    [reply] = await applied(rt, "whatsapp")
    assert len(twilio.accepted) == 2 and twilio.callback_statuses == [200]
    assert (reply.provider_id, reply.delivery_status) == (twilio.accepted[0][0], "delivered")
