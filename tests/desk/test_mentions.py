"""@mentions in internal notes through the desk API (issue 16, item 2), on SQLite and PostgreSQL:
the note keeps the agents it names, each of them but its author gets a notification (their own
list, read one, read all) and a `mention` event on their stream only; a note never reaches the
customer, and an unknown or ambiguous mention is left as text."""

from __future__ import annotations

import json
from typing import Any

from handoff.desk.live import wants
from handoff.events import EventKind
from handoff.models import Message, Notification
from tests.conftest import settle
from tests.desk.test_openapi import _check, _document
from tests.stream_marks import events_until, mark


async def _taken(client: Any, rt: Any, say: Any, auth: dict[str, str], key: str) -> dict[str, Any]:
    await say("hello, my parcel is late", conversation=key, contact=key, name="Olga Ivanova")
    await settle(rt)
    conversations = await (await client.get("/api/v1/conversations", headers=auth)).json()
    [conversation] = [c for c in conversations["conversations"] if c["contact"]["external_id"] == key]
    response = await client.post(f"/api/v1/conversations/{conversation['id']}/takeover", headers=auth)
    assert response.status == 201
    return await response.json()


async def _note(client: Any, ticket: dict[str, Any], auth: dict[str, str], text: str) -> dict[str, Any]:
    response = await client.post(f"/api/v1/tickets/{ticket['id']}/messages", json={"text": text, "internal": True},
                                 headers=auth)
    assert response.status == 201, await response.text()
    return await response.json()


async def _notifications(client: Any, auth: dict[str, str], query: str = "") -> dict[str, Any]:
    response = await client.get("/api/v1/notifications" + query, headers=auth)
    assert response.status == 200, await response.text()
    return await response.json()


async def test_a_note_notifies_the_agents_it_mentions_and_never_the_customer(client, rt, say, make_agent, callback):
    ana, ana_auth = await make_agent("Ana María")
    bob, bob_auth = await make_agent("Bob Stone")
    _, carl_auth = await make_agent("Carl")
    ticket = await _taken(client, rt, say, ana_auth, "m1")

    note = await _note(client, ticket, ana_auth, f"@Bob Stone can you check the refund? cc @{ana.email} @nobody")
    assert note["private"] is True
    assert note["mentions"] == [{"id": bob.id, "name": "Bob Stone"}, {"id": ana.id, "name": "Ana María"}]
    assert note["text"] == f"@Bob Stone can you check the refund? cc @{ana.email} @nobody"  # left as written
    await settle(rt)
    sent = callback.for_conversation("m1")
    assert sent and not [m for m in sent if "refund" in m["text"]]  # a note is never sent to the customer

    bobs = await _notifications(client, bob_auth)
    assert bobs["unread"] == 1
    [mention] = bobs["notifications"]
    assert mention["kind"] == "mention" and mention["ticket_id"] == ticket["id"]
    assert mention["message_id"] == note["id"] and mention["conversation_id"] == ticket["conversation_id"]
    assert mention["actor"]["name"] == "Ana María" and mention["contact_name"] == "Olga Ivanova"
    assert mention["text"].startswith("@Bob Stone can you check") and mention["read_at"] is None
    # Mentioning yourself notifies nobody; Carl was not mentioned.
    assert await _notifications(client, ana_auth) == {"notifications": [], "next_before": None, "unread": 0}
    assert (await _notifications(client, carl_auth))["notifications"] == []

    # The timeline shows the note's mentions to everyone.
    detail = await (await client.get(f"/api/v1/tickets/{ticket['id']}", headers=carl_auth)).json()
    [shown] = [m for m in detail["conversation"]["messages"] if m["id"] == note["id"]]
    assert shown["mentions"] == note["mentions"]
    customer = [m for m in detail["conversation"]["messages"] if m["direction"] == "incoming"]
    assert customer and all(m["mentions"] == [] for m in customer)


async def test_ambiguous_unknown_and_reply_mentions_notify_nobody(client, rt, say, make_agent):
    _, ana_auth = await make_agent("Ana")
    await make_agent("Carl Lee")
    await make_agent("Carl Lee")
    retired, _ = await make_agent("Dora")
    retired.is_active = False
    await retired.save()
    ticket = await _taken(client, rt, say, ana_auth, "m2")

    note = await _note(client, ticket, ana_auth, "@Carl Lee @Carl @Dora @Zed please look")
    assert note["mentions"] == []
    response = await client.post(f"/api/v1/tickets/{ticket['id']}/messages", json={"text": "@Carl Lee hi"},
                                 headers=ana_auth)
    assert response.status == 201 and (await response.json())["mentions"] == []  # a reply mentions nobody
    assert await Notification.all().count() == 0


async def test_only_the_mentioned_agents_stream_carries_the_mention(client, rt, say, make_agent):
    _, ana_auth = await make_agent("Ana")
    bob, bob_auth = await make_agent("Bob")
    ticket = await _taken(client, rt, say, ana_auth, "m3")
    async with client.ws_connect("/api/v1/stream", headers=ana_auth) as ana_ws, \
            client.ws_connect("/api/v1/stream", headers=bob_auth) as bob_ws:
        for ws in (ana_ws, bob_ws):
            assert (await ws.receive_json(timeout=5))["kind"] == EventKind.STREAM_READY
        note = await _note(client, ticket, ana_auth, "@bob over to you @ana")
        token = await mark(rt)  # everything committed so far reaches each stream before it
        ana_events, bob_events = await events_until(ana_ws, token), await events_until(bob_ws, token)
    [to_bob] = [e for e in bob_events if e["kind"] == EventKind.MENTION]
    assert to_bob["agent_id"] == bob.id
    assert to_bob["notification"]["message_id"] == note["id"] and to_bob["notification"]["actor"]["name"] == "Ana"
    assert not [e for e in ana_events if e["kind"] == EventKind.MENTION]
    assert [e for e in ana_events if e["kind"] == EventKind.MESSAGE_CREATED]  # the note itself reaches everyone


async def test_notifications_page_newest_first_and_are_read_by_their_agent_only(client, rt, say, make_agent):
    _, ana_auth = await make_agent("Ana")
    _, bob_auth = await make_agent("Bob")
    ticket = await _taken(client, rt, say, ana_auth, "m4")
    notes = [await _note(client, ticket, ana_auth, f"@Bob note {i}") for i in range(5)]
    document = await _document(client)

    first = await _notifications(client, bob_auth, "?limit=2")
    _check(document, "/api/v1/notifications", "get", 200, json.dumps(first))
    assert [n["message_id"] for n in first["notifications"]] == [notes[4]["id"], notes[3]["id"]]
    assert first["unread"] == 5 and first["next_before"]
    rest = await _notifications(client, bob_auth, f"?limit=3&before={first['next_before']}")
    assert [n["message_id"] for n in rest["notifications"]] == [n["id"] for n in reversed(notes[:3])]
    assert rest["next_before"] is None
    for bad in ("?limit=0", "?limit=201", "?limit=x", "?before=nope"):
        response = await client.get("/api/v1/notifications" + bad, headers=bob_auth)
        assert response.status == 400 and "error" in await response.json()

    # Another agent cannot read Bob's: 404, and nothing changes.
    target = first["notifications"][0]["id"]
    for path in (f"/api/v1/notifications/{target}/read", "/api/v1/notifications/999999/read",
                 "/api/v1/notifications/abc/read", "/api/v1/notifications/99999999999/read"):
        response = await client.post(path, headers=ana_auth)
        assert response.status == 404 and "error" in await response.json()
    assert (await _notifications(client, bob_auth))["unread"] == 5

    response = await client.post(f"/api/v1/notifications/{target}/read", headers=bob_auth)
    assert response.status == 200
    text = await response.text()
    _check(document, "/api/v1/notifications/{id}/read", "post", 200, text)
    read_at = json.loads(text)["read_at"]
    assert read_at
    again = await (await client.post(f"/api/v1/notifications/{target}/read", headers=bob_auth)).json()
    assert again["read_at"] == read_at  # the first read is the one kept
    assert (await _notifications(client, bob_auth))["unread"] == 4

    response = await client.post("/api/v1/notifications/read-all", headers=bob_auth)
    text = await response.text()
    _check(document, "/api/v1/notifications/read-all", "post", 200, text)
    assert json.loads(text) == {"marked": 4}
    listing = await _notifications(client, bob_auth)
    assert listing["unread"] == 0 and all(n["read_at"] for n in listing["notifications"])
    assert (await client.get("/api/v1/notifications")).status == 401


async def test_a_transfer_note_mentions_too_and_deleting_the_note_removes_its_notification(
        client, rt, say, make_agent):
    _, ana_auth = await make_agent("Ana")
    bob, _ = await make_agent("Bob")
    carl, carl_auth = await make_agent("Carl")
    ticket = await _taken(client, rt, say, ana_auth, "m5")
    response = await client.post(f"/api/v1/tickets/{ticket['id']}/transfer",
                                 json={"agent_id": bob.id, "note": "Bob takes it; @Carl knows the carrier"},
                                 headers=ana_auth)
    assert response.status == 200
    [mention] = (await _notifications(client, carl_auth))["notifications"]
    note = await Message.get(id=mention["message_id"])
    assert note.private and note.mentions == [{"id": carl.id, "name": "Carl"}]
    await note.delete()
    assert (await _notifications(client, carl_auth))["notifications"] == []


def test_the_stream_filter_sends_a_mention_to_its_agent_only():
    event = {"kind": EventKind.MENTION, "agent_id": 3, "notification": {"id": 1}}
    assert wants(event, 3)
    assert not wants(event, 4)
