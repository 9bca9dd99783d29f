"""The gateway end to end through the api channel: storage, dedupe, routing, bad input."""

from __future__ import annotations

import asyncio
import contextvars
import json
from datetime import datetime, timedelta, timezone

import pytest

from handoff import gateway
from handoff import transitions as ops
from handoff.gateway import decide
from handoff.models import Conversation, Message
from tests.conftest import API_SECRET, api_body, settle


@pytest.mark.parametrize(
    ("state", "assignee", "route"),
    [("bot", None, "bot"), ("human", 7, "agent"), ("human", None, "queue")],
)
def test_decide_routes_by_state(state, assignee, route):
    assert decide(state, assignee) == route


def test_decide_refuses_ended_conversations():
    with pytest.raises(ValueError):
        decide("ended", None)


async def test_customer_message_is_answered_by_the_bot(client, rt, say, callback):
    response = await say("where is my order?", conversation="order-1")
    assert response.status == 202
    await settle(rt)
    replies = callback.for_conversation("order-1")
    assert [(m["kind"], m["text"]) for m in replies] == [("bot", "echo: where is my order?")]
    conversation = await Conversation.get(external_key="order-1")
    assert conversation.state == "bot"
    messages = await Message.filter(conversation_id=conversation.id).order_by("id")
    assert [(m.author_kind, m.delivery_status) for m in messages] == [("customer", "none"), ("bot", "sent")]


async def test_replayed_webhook_stores_one_message(client, rt, say, callback):
    body = api_body("hello", message_id="m-1")
    headers = {"X-Handoff-Signature": __import__("handoff.channels.api", fromlist=["sign"]).sign(API_SECRET, body)}
    for _ in range(4):
        response = await client.post("/webhooks/api", data=body, headers=headers)
        assert response.status == 202
    responses = await asyncio.gather(*(client.post("/webhooks/api", data=body, headers=headers) for _ in range(4)))
    assert {r.status for r in responses} == {202}
    await settle(rt)
    assert await Message.filter(provider_id="m-1").count() == 1
    assert len(callback.received) == 1


async def test_concurrent_distinct_messages_of_a_new_contact_share_one_conversation(client, rt, say):
    responses = await asyncio.gather(*(say(f"message {i}", conversation="burst") for i in range(8)))
    assert {r.status for r in responses} == {202}
    await settle(rt)
    assert await Conversation.filter(external_key="burst").count() == 1
    assert await Message.filter(direction="incoming").count() == 8


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"conversation": "c", "contact": {"id": "u"}, "text": "hi"}', "id must be"),
        (b'{"id": "1", "contact": {"id": "u"}, "text": "hi"}', "conversation must be"),
        (b'{"id": "1", "conversation": "c", "text": "hi"}', "contact must be"),
        (b'{"id": "1", "conversation": "c", "contact": {"id": "u"}, "text": ""}', "text must be"),
        (b'{"id": "1", "conversation": "c", "contact": {"id": "u"}, "text": 5}', "text must be"),
        (b'{"id": "1", "conversation": "c", "contact": {"id": "u"}, "text": "", "attachments": []}', "text must be"),
        (b'{"id": "1", "conversation": "c", "contact": {"id": "u"}, "text": "", "attachments": {}}', "attachments must be"),
        (b'{"id": "1", "conversation": "c", "contact": {"id": "u"}, "attachments": [{"url": "file:///etc/passwd"}]}',
         "attachments[0].url must be"),
        (b'{"id": "1", "conversation": "c", "contact": {"id": "u"}, "attachments": ["https://x.example/a"]}',
         "attachments[0] must be an object"),
        (b'{"id": "1", "conversation": "c", "contact": {"id": "u"}, "attachments": [{"url": "https://x.example/a",'
         b' "size": -1}]}', "attachments[0].size must be"),
        (b'{"id": "1", "conversation": "c", "contact": {"id": "u"}, "attachments": ['
         + b", ".join([b'{"url": "https://x.example/a"}'] * 11) + b"]}", "at most 10"),
    ],
)
async def test_malformed_bodies_are_rejected_and_change_nothing(client, body, error):
    from handoff.channels.api import sign

    response = await client.post("/webhooks/api", data=body, headers={"X-Handoff-Signature": sign(API_SECRET, body)})
    assert response.status == 400
    assert error in (await response.json())["error"]
    assert await Message.all().count() == 0


@pytest.mark.parametrize("signature", [None, "sha256=" + "0" * 64, "sha256=bad", "md5=abc"])
async def test_bad_signatures_are_rejected(client, signature):
    body = api_body("hi")
    headers = {"X-Handoff-Signature": signature} if signature else {}
    response = await client.post("/webhooks/api", data=body, headers=headers)
    assert response.status == 401
    assert "error" in await response.json()
    assert await Message.all().count() == 0


async def test_signature_of_another_body_is_rejected(client):
    from handoff.channels.api import sign

    response = await client.post("/webhooks/api", data=api_body("evil"),
                                 headers={"X-Handoff-Signature": sign(API_SECRET, api_body("nice"))})
    assert response.status == 401


async def test_oversized_body_is_rejected(client):
    body = api_body("x" * (2 * 1024 * 1024))
    response = await client.post("/webhooks/api", data=body, headers={"X-Handoff-Signature": "sha256=00"})
    assert response.status == 413
    assert await Message.all().count() == 0


async def test_unknown_channel_is_404(client):
    response = await client.post("/webhooks/nope", data=b"{}")
    assert response.status == 404


async def test_api_customers_can_send_files_by_url(client, rt):
    from handoff.channels.api import sign

    body = json.dumps({"id": "f1", "conversation": "files", "contact": {"id": "u9"}, "text": "",
                       "attachments": [{"url": "https://cdn.example.com/receipt.pdf", "content_type": "application/pdf",
                                        "filename": "receipt.pdf", "size": 5120}]}).encode()
    response = await client.post("/webhooks/api", data=body, headers={"X-Handoff-Signature": sign(API_SECRET, body)})
    assert response.status == 202
    await settle(rt)
    stored = await Message.get(provider_id="f1")
    assert stored.text == ""
    assert stored.attachments == [{"url": "https://cdn.example.com/receipt.pdf", "filename": "receipt.pdf",
                                   "content_type": "application/pdf", "size": 5120}]


async def test_a_message_racing_a_takeover_is_routed_by_the_state_at_commit(client, rt, say, make_agent, monkeypatch,
                                                                             db_url):
    if db_url.startswith("sqlite"):
        pytest.skip("SQLite runs one transaction at a time: nothing can commit between the read and the write")
    agent, _ = await make_agent()
    await say("hello", conversation="racing")
    await settle(rt)
    outside = contextvars.copy_context()  # no transaction: the takeover commits on its own connection
    language = gateway._language
    tickets = []

    async def takeover_meanwhile(conversation, text):
        if not tickets:  # between the gateway's read of the conversation and its write
            tickets.append(await asyncio.create_task(ops.takeover(rt, conversation.id, agent), context=outside))
        return await language(conversation, text)

    monkeypatch.setattr(gateway, "_language", takeover_meanwhile)
    async with rt.hub.subscribe() as events:
        assert (await say("are you there?", conversation="racing")).status == 202
        await settle(rt)
        states = []
        while not events.queue.empty():
            event = events.queue.get_nowait()
            if event["kind"] == "conversation.updated":
                states.append(event["state"])
    message = await Message.get(text="are you there?")
    assert message.ticket_id == tickets[0].id
    assert states == ["human", "human"]  # the takeover's, then this message's: never "bot"
    assert await Message.filter(conversation_id=message.conversation_id, author_kind="bot").count() == 1


async def test_a_customer_message_is_newer_than_every_one_committed_before_it(client, rt, say, callback):
    """A message stored after another is newer for the bot turn even when its instance's clock reads
    earlier (clock skew between instances, or a clock read before waiting for the conversation's row)."""
    assert (await say("first", conversation="skew")).status == 202
    await settle(rt)
    ahead = datetime.now(timezone.utc) + timedelta(minutes=5)
    await Conversation.filter(external_key="skew").update(last_customer_message_at=ahead)  # another instance's reading
    assert (await say("second", conversation="skew")).status == 202
    await settle(rt)
    conversation = await Conversation.get(external_key="skew")
    assert conversation.customer_messages == 2  # counted in commit order, not by any clock
    assert [m["text"] for m in callback.for_conversation("skew")] == ["echo: first", "echo: second"]


async def test_an_integrators_signal_listeners_run_on_the_messages_handoff_stores(client, rt, say, callback):
    from tortoise.signals import Signals, post_save

    saved: list[tuple[str, str, bool]] = []

    async def listener(sender, instance, created, using_db, update_fields) -> None:
        saved.append((instance.direction, instance.text, created))

    post_save(Message)(listener)
    try:
        assert (await say("is anyone there?", conversation="signals")).status == 202
        await settle(rt)
    finally:
        Message._listeners[Signals.post_save][Message].remove(listener)
    assert ("incoming", "is anyone there?", True) in saved
    assert ("outgoing", "echo: is anyone there?", True) in saved


async def test_the_running_conversation_is_found_by_its_index_whatever_the_ended_ones(client, db_url):
    """Ended conversations keep a NULL open key. Once SQLite's ANALYZE has counted them, its
    planner took the open key for a useless index and scanned every conversation per message."""
    from tortoise import connections

    from handoff import sql
    from handoff.models import Contact

    await Contact.bulk_create([Contact(name=f"customer {i}") for i in range(300)])
    await Conversation.bulk_create([
        Conversation(contact=contact, channel="api", external_key=f"old-{contact.id}", contact_external_id="h",
                     state="ended", open_key=None, last_activity_at=datetime.now(timezone.utc))
        for contact in await Contact.all()])
    conn = connections.get("default")
    await conn.execute_script("ANALYZE")  # every conversation ended: all open keys NULL
    contact = await Contact.create(name="history")
    running = await Conversation.create(contact=contact, channel="api", external_key="now", contact_external_id="h",
                                        open_key="api:now")
    rows = await sql.fetch(gateway._running(), "api:now")
    assert [row["id"] for row in rows] == [running.id] and rows[0]["contact__name"] == "history"
    if db_url.startswith("sqlite"):  # PostgreSQL keeps NULLs out of its statistics' values
        _, plan = await conn.execute_query("EXPLAIN QUERY PLAN " + gateway._running().text("sqlite"), ["api:now"])
        steps = [row["detail"] for row in plan]
        assert not any(step.startswith("SCAN") for step in steps), steps
