"""Edits, unsends, shared content and replies sent from the provider's own app, end to end through
signed `POST /webhooks/messenger|instagram` against the fake Graph API, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from handoff.bot.offline import OfflineBot
from handoff.bot.summary import OfflineSummarizer
from handoff.channels.instagram import InstagramChannel
from handoff.channels.messenger import MessengerChannel
from handoff.config import Settings
from handoff.models import Conversation, Event, Message, Ticket
from tests.conftest import settle
from tests.fakes.graph_api import FakeGraph, Hold, Reply

WEBHOOKS = Path(__file__).parents[1] / "webhooks"
SECRET = "test-app-secret"
VERIFY = "test-verify-token"
TOKEN = "test-token"
APP_ID = "1517776481860111"  # ours: the id webhooks/messenger/message__echo.json carries
PSID = "6845720194837261"
IGSID = "1284756390182736"
MESSENGER_MID = "m_AG5Hz2Uq7tuwNEhXfYYKj8mJEM_QPpz5jdCK48PnKAjSdjfipqxqMvK8ma6AC8fplwlqLP_5cgXIbu7I3rBN0P"
IG_MID = "aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDAwMTIzNDU2Nzg5OjM0MDI4MjM2Njg0MTcxMDMwMTI0NDI1OTk3MjE1MDY4MDk4"
CHANNELS = {"messenger": MessengerChannel, "instagram": InstagramChannel}


def fixture(channel: str, name: str, *replacements: tuple[str, str]) -> bytes:
    body = (WEBHOOKS / channel / f"{name}.json").read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in body
        body = body.replace(old, new)
    return body.encode()


@pytest.fixture
async def fake():
    async with FakeGraph(token=TOKEN) as server:
        yield server


@pytest.fixture
def settings(settings: Settings, fake: FakeGraph) -> Settings:
    """Both Meta channels on, our app id known, the Graph API faked."""
    return settings.model_copy(update=dict(meta_app_secret=SECRET, meta_verify_token=VERIFY, meta_app_id=APP_ID,
                               messenger_page_token=TOKEN, instagram_access_token=TOKEN,
                               meta_graph_base=fake.url + "/v21.0"))


@pytest.fixture
def post(client):
    """post(channel, body): a webhook signed as Meta signs it; asserts Meta's 200 OK."""
    async def send(channel: str, body: bytes) -> None:
        signer = CHANNELS[channel](app_secret=SECRET, verify_token=VERIFY, token=TOKEN, graph_base="")
        response = await client.post(f"/webhooks/{channel}", data=body, headers=signer.sign(body))
        assert response.status == 200, await response.text()

    return send


async def conversation_json(client, make_agent, conversation_id: int) -> dict[str, Any]:
    _, headers = await make_agent("Ana")
    response = await client.get(f"/api/v1/conversations/{conversation_id}", headers=headers)
    assert response.status == 200
    return await response.json()


def drain(events) -> list[dict]:
    out = []
    while not events.queue.empty():
        out.append(events.queue.get_nowait())
    return out


def sent_texts(fake: FakeGraph) -> list[str]:
    return [m.get("text", "") for _, m in fake.accepted]


# -- edits -----------------------------------------------------------------------------------------

EDITS = {
    "messenger": (MESSENGER_MID, "Hello, is the store open on Sunday?", "Hello, is the store open on Saturday?"),
    "instagram": (IG_MID, "hi! do you ship to Lisbon?", "hi! do you ship to Porto?"),
}


@pytest.mark.parametrize("channel", sorted(EDITS))
async def test_an_edit_replaces_the_text_and_keeps_the_original(client, rt, post, make_agent, channel: str) -> None:
    mid, original, edited = EDITS[channel]
    await post(channel, fixture(channel, "message__text"))
    await settle(rt)
    async with rt.hub.subscribe() as events:
        await post(channel, fixture(channel, "message_edit__text"))
        await asyncio.sleep(0)
        live = drain(events)
    message = await Message.get(channel=channel, provider_id=mid)
    assert message.text == edited and message.edited_at is not None
    [revision] = message.revisions
    assert revision["text"] == original
    assert datetime.fromisoformat(revision["replaced_at"]) == message.edited_at
    [event] = await Event.filter(kind="message.edited")
    assert event.data == {"message_id": message.id}
    assert {"kind": "message.updated", "conversation_id": message.conversation_id, "message_id": message.id,
            "edited_at": revision["replaced_at"]} in [{k: v for k, v in e.items() if k != "seq"} for e in live]
    assert any(e["kind"] == "timeline.event" and e["event"]["kind"] == "message.edited" for e in live)

    for _ in range(2):  # Meta's retries change nothing
        await post(channel, fixture(channel, "message_edit__text"))
    await post(channel, fixture(channel, "message_edit__text", (edited, "third version"), ('"num_edit": 1', '"num_edit": 2')))
    await post(channel, fixture(channel, "message_edit__text"))  # a late retry of the first edit
    message = await Message.get(id=message.id)
    assert message.text == "third version"
    assert [r["text"] for r in message.revisions] == [original, edited]
    assert await Event.filter(kind="message.edited").count() == 2

    detail = await conversation_json(client, make_agent, message.conversation_id)
    [shown] = [m for m in detail["messages"] if m["id"] == message.id]
    assert shown["text"] == "third version" and shown["deleted"] is False and shown["edited_at"]
    assert [r["text"] for r in shown["revisions"]] == [original, edited]


# -- unsend ----------------------------------------------------------------------------------------


async def test_an_unsent_message_is_erased_and_left_out_of_the_bot_and_the_summary(
        client, rt, post, make_agent, bot, fake: FakeGraph) -> None:
    await post("messenger", fixture("messenger", "message__text"))
    await settle(rt)
    async with rt.hub.subscribe() as events:
        await post("messenger", fixture("messenger", "message__deleted"))
        await asyncio.sleep(0)
        live = drain(events)
    message = await Message.get(provider_id=MESSENGER_MID)
    assert (message.text, message.attachments, message.revisions) == ("", [], None)
    assert message.deleted_at is not None
    assert any(e["kind"] == "message.updated" and e.get("deleted") for e in live)
    await post("messenger", fixture("messenger", "message__deleted"))  # retry: a no-op
    [event] = await Event.filter(kind="message.deleted")
    assert event.data == {"message_id": message.id}

    later = fixture("messenger", "message__text", (MESSENGER_MID, "m_later0001"),
                    ("Hello, is the store open on Sunday?", "How do I return a damaged jacket?"))
    await post("messenger", later)
    await settle(rt)
    assert [t.text for t in bot.calls[-1] if t.author == "customer"] == ["How do I return a damaged jacket?"]

    rt.summarizer = OfflineSummarizer()
    _, headers = await make_agent("Bea")
    response = await client.post(f"/api/v1/conversations/{message.conversation_id}/takeover", headers=headers)
    assert response.status == 201
    await settle(rt)
    ticket = await Ticket.get(conversation_id=message.conversation_id)
    assert "damaged jacket" in ticket.summary and "Sunday" not in ticket.summary

    detail = await conversation_json(client, make_agent, message.conversation_id)
    [shown] = [m for m in detail["messages"] if m["id"] == message.id]
    assert (shown["deleted"], shown["text"], shown["attachments"], shown["revisions"]) == (True, "", [], [])


async def test_an_unsent_instagram_image_loses_its_attachment(client, rt, post) -> None:
    mid = "aWdfZAG1faXRlbTox_del0001"
    await post("instagram", fixture("instagram", "message__image", ("aWdfZAG1faXRlbTox_image0001", mid)))
    await settle(rt)
    assert (await Message.get(provider_id=mid)).attachments
    await post("instagram", fixture("instagram", "message__deleted"))
    message = await Message.get(provider_id=mid)
    assert (message.text, message.attachments) == ("", []) and message.deleted_at is not None


async def test_changes_to_an_unknown_message_change_nothing(client, rt, post) -> None:
    await post("messenger", fixture("messenger", "message_edit__text"))
    await post("messenger", fixture("messenger", "message__deleted"))
    await post("instagram", fixture("instagram", "message_edit__text"))
    assert await Message.all().count() == 0
    assert await Event.all().count() == 0


# -- shared content --------------------------------------------------------------------------------


async def test_a_shared_reel_is_stored_as_a_link_and_the_bot_stays_quiet(client, rt, post, bot, fake: FakeGraph) -> None:
    await post("messenger", fixture("messenger", "message__reel"))
    await settle(rt)
    message = await Message.get(provider_id="m_reel0001")
    assert message.text == "[reel] https://www.facebook.com/reel/918273645501928"
    assert message.attachments == [{"content_type": "text/uri-list", "url": "https://www.facebook.com/reel/918273645501928",
                                    "filename": "Reel", "size": None}]
    assert bot.calls == [] and fake.accepted == []

    await post("messenger", fixture("messenger", "message__text"))  # words: the bot answers them
    await settle(rt)
    assert sent_texts(fake) == ["echo: Hello, is the store open on Sunday?"]


async def test_story_mentions_and_shares_are_not_misunderstandings(client, rt, post, fake: FakeGraph) -> None:
    bot = rt.bot = OfflineBot.default()
    gibberish = fixture("instagram", "message__text", ("hi! do you ship to Lisbon?", "blorptastic zibbering quaxes"),
                        (IG_MID, "aWdf_gibberish0001"))
    await post("instagram", gibberish)
    await settle(rt)
    [fallback] = sent_texts(fake)
    assert bot.is_fallback(fallback)

    for name in ("message__story_mention", "message__share", "message__ig_reel"):
        await post("instagram", fixture("instagram", name))
    await settle(rt)
    assert sent_texts(fake) == [fallback]  # no "could you rephrase?" for a mention, a post or a reel
    conversation = await Conversation.get(channel="instagram")
    assert conversation.state == "bot" and not await Ticket.exists()
    mention = await Message.get(provider_id="aWdfZAG1faXRlbTox_mention0001")
    assert mention.attachments[0]["content_type"] == "text/uri-list"
    assert mention.attachments[0]["filename"] == "Story mention"

    await post("instagram", fixture("instagram", "message__text"))  # a real question is answered
    await settle(rt)
    assert len(sent_texts(fake)) == 2 and not bot.is_fallback(sent_texts(fake)[-1])


# -- replies sent from outside handoff -------------------------------------------------------------


async def test_a_reply_from_another_app_is_stored_and_hands_the_conversation_to_people(
        client, rt, post, make_agent, bot, fake: FakeGraph) -> None:
    await post("messenger", fixture("messenger", "message__text"))
    await settle(rt)
    await post("messenger", fixture("messenger", "message__echo"))  # our own app: ignored
    conversation = await Conversation.get(channel="messenger")
    assert conversation.state == "bot"
    assert await Message.filter(direction="outgoing").count() == 1

    for _ in range(2):  # the second is Meta's retry
        await post("messenger", fixture("messenger", "message__echo_other_app"))
    await settle(rt)
    [reply] = await Message.filter(provider_id="m_inbox0001")
    assert (reply.direction, reply.author_kind, reply.agent_id, reply.origin, reply.delivery_status) == (
        "outgoing", "agent", None, "messenger_app", "sent")
    assert reply.text == "Hi Ana, this is Marta from the shop. Your order left our warehouse today."
    conversation = await Conversation.get(id=conversation.id)
    assert conversation.state == "human" and conversation.last_responder == "agent"
    assert (conversation.responded_by, conversation.responded_by_agent_id) == ("agent", None)  # a person, not one of ours
    [ticket] = await Ticket.filter(conversation_id=conversation.id)
    assert ticket.open_key == conversation.id and ticket.status == "open" and "replied from" in ticket.reason  # queued
    assert reply.ticket_id == ticket.id
    [event] = await Event.filter(kind="outside_reply")
    assert event.data == {"message_id": reply.id, "app_id": "263902037430900"}
    # A person has already answered: the customer is not told to wait for one.
    assert await Message.filter(conversation_id=conversation.id, notice="waiting").count() == 0

    calls = len(bot.calls)
    await post("messenger", fixture("messenger", "message__text", (MESSENGER_MID, "m_after0001"), ("Sunday", "Monday")))
    await settle(rt)
    assert len(bot.calls) == calls  # the bot no longer answers
    _, headers = await make_agent("Caro")
    assert (await client.post(f"/api/v1/tickets/{ticket.id}/claim", headers=headers)).status == 200
    await post("messenger", fixture("messenger", "message__echo_other_app", ("m_inbox0001", "m_inbox0002")))
    assert (await Ticket.get(id=ticket.id)).status == "on_customer"  # the customer's turn, as after a desk reply

    detail = await conversation_json(client, make_agent, conversation.id)
    [shown] = [m for m in detail["messages"] if m["id"] == reply.id]
    assert (shown["author"], shown["agent"], shown["origin"]) == ("agent", None, "messenger_app")


async def test_instagram_echoes_of_our_sends_are_ours_and_others_escalate(client, rt, post, fake: FakeGraph) -> None:
    hold = Hold()
    fake.messages_then(Reply(hold=hold))
    await post("instagram", fixture("instagram", "message__text"))
    await asyncio.wait_for(hold.reached.wait(), 60)
    # Meta posts the echo before the send call that returns its id has finished.
    early = fixture("instagram", "message__echo", ("Yes, we ship to Portugal.", "echo: hi! do you ship to Lisbon?"),
                    ("aWdfZAG1faXRlbTox_echo0001", "aWdf_early0001"))
    await post("instagram", early)
    hold.release()
    await settle(rt)
    [sent] = await Message.filter(author_kind="bot")
    assert sent.provider_id == "m_fake000001"
    await post("instagram", fixture("instagram", "message__echo", ("Yes, we ship to Portugal.", sent.text),
                                    ("aWdfZAG1faXRlbTox_echo0001", sent.provider_id)))
    conversation = await Conversation.get(channel="instagram")
    assert conversation.state == "bot" and await Message.filter(direction="outgoing").count() == 1

    await post("instagram", fixture("instagram", "message__echo_instagram_app"))
    await settle(rt)
    conversation = await Conversation.get(id=conversation.id)
    assert conversation.state == "human"
    reply = await Message.get(provider_id="aWdfZAG1faXRlbTox_igapp0001")
    assert (reply.author_kind, reply.origin) == ("agent", "instagram_app")
    assert (await Ticket.get(conversation_id=conversation.id)).reason == "a person replied from the Instagram app"


async def test_a_shared_reel_does_not_become_the_ticket_subject(client, rt, post) -> None:
    rt.summarizer = OfflineSummarizer()
    await post("messenger", fixture("messenger", "message__reel"))
    question = "escalate: in blue?"  # the test bot escalates on "escalate"
    await post("messenger", fixture("messenger", "message__text", (MESSENGER_MID, "m_question0001"),
                                    ("Hello, is the store open on Sunday?", question)))
    await settle(rt)
    ticket = await Ticket.get()
    assert ticket.subject == question


async def test_an_unsend_after_takeover_leaves_no_quote_in_the_ticket(client, rt, post, make_agent) -> None:
    await post("messenger", fixture("messenger", "message__text"))
    later = fixture("messenger", "message__text", (MESSENGER_MID, "m_later0002"),
                    ("Hello, is the store open on Sunday?", "And do you sell gift cards?"))
    await post("messenger", later)
    await settle(rt)
    _, headers = await make_agent("Bea")
    conversation = await Conversation.get(channel="messenger")
    assert (await client.post(f"/api/v1/conversations/{conversation.id}/takeover", headers=headers)).status == 201
    await settle(rt)
    ticket = await Ticket.get(conversation_id=conversation.id)
    assert "Sunday" in ticket.subject and "Sunday" in ticket.summary  # FixedSummarizer quotes the customer

    await post("messenger", fixture("messenger", "message__deleted"))
    await settle(rt)
    ticket = await Ticket.get(id=ticket.id)
    assert "Sunday" not in ticket.subject and "Sunday" not in ticket.summary
    assert "gift cards" in ticket.subject and ticket.summary == "And do you sell gift cards?"
