"""The takeover -> reply -> transfer -> handback cycle through the REST API, as a customer
on the api channel sees it."""

from __future__ import annotations

from handoff.models import Conversation, Event, Message, Ticket
from tests.conftest import settle


async def _conversation_id(key: str) -> int:
    return (await Conversation.get(external_key=key)).id


async def test_full_cycle_with_two_tickets_and_separators(client, rt, say, callback, make_agent):
    ana, ana_auth = await make_agent("Ana")
    ben, _ = await make_agent("Ben")
    await say("hello there", conversation="k1")
    await settle(rt)
    cid = await _conversation_id("k1")

    response = await client.post(f"/api/v1/conversations/{cid}/takeover", headers=ana_auth)
    assert response.status == 201
    ticket = await response.json()
    assert ticket["status"] == "on_you" and ticket["assignee"]["name"] == "Ana"
    assert ticket["kind"] == "live_chat" and ticket["channel"] == "api"

    await say("are you a person?", conversation="k1")
    await settle(rt)
    assert [m["kind"] for m in callback.for_conversation("k1")] == ["bot", "notice"]
    assert callback.for_conversation("k1")[-1]["status"] == "waiting"

    response = await client.post(f"/api/v1/tickets/{ticket['id']}/messages", json={"text": "Yes, I'm Ana."},
                                 headers=ana_auth)
    assert response.status == 201
    await client.post(f"/api/v1/tickets/{ticket['id']}/messages", json={"text": "VIP customer", "internal": True},
                      headers=ana_auth)
    response = await client.post(f"/api/v1/tickets/{ticket['id']}/transfer",
                                 json={"agent_id": ben.id, "note": "billing question"}, headers=ana_auth)
    assert response.status == 200
    assert (await response.json())["assignee"]["name"] == "Ben"
    # The ticket is Ben's now: Ana hands it back only with a confirmation (handoff/desk/rules.py).
    response = await client.post(f"/api/v1/tickets/{ticket['id']}/allow-ai", headers=ana_auth)
    assert response.status == 409 and (await response.json())["confirm_required"] is True
    response = await client.post(f"/api/v1/tickets/{ticket['id']}/allow-ai", json={"confirm": True}, headers=ana_auth)
    assert response.status == 200
    assert (await response.json())["status"] == "closed"
    await say("thanks", conversation="k1")
    await settle(rt)

    sent = [(m["kind"], m.get("status"), m["text"]) for m in callback.for_conversation("k1")]
    assert sent == [
        ("bot", None, "echo: hello there"),
        ("notice", "waiting", "Waiting for a support agent to join…"),
        ("notice", "agent_joined", "You're now chatting with Ana."),
        ("agent", None, "Yes, I'm Ana."),
        ("notice", "transferred", "You've been transferred to Ben."),
        ("notice", "ai_resumed", "You're back with our AI assistant."),
        ("bot", None, "echo: thanks"),
    ]
    assert not any("VIP" in m["text"] or "billing" in m["text"] for m in callback.received)

    response = await client.post(f"/api/v1/conversations/{cid}/takeover", headers=ana_auth)
    assert response.status == 201
    second = await response.json()
    assert second["id"] != ticket["id"]

    detail = await (await client.get(f"/api/v1/conversations/{cid}", headers=ana_auth)).json()
    separators = [m["notice"] for m in detail["messages"] if m["direction"] == "activity"]
    assert separators == ["live_chat", "ai_resumed", "live_chat"]
    assert [t["status"] for t in detail["tickets"]] == ["closed", "on_you"]
    kinds = [e["kind"] for e in detail["events"]]
    assert kinds == ["takeover", "transferred", "ai_resumed", "takeover"]
    notes = [m for m in detail["messages"] if m["private"]]
    assert [n["text"] for n in notes] == ["VIP customer", "billing question"]


async def test_spanish_conversation_gets_spanish_notices(client, rt, say, callback, make_agent):
    _, auth = await make_agent("Lucía")
    await say("Hola, quiero saber cuándo llega mi pedido a Madrid", conversation="es1")
    await settle(rt)
    cid = await _conversation_id("es1")
    ticket = await (await client.post(f"/api/v1/conversations/{cid}/takeover", headers=auth)).json()
    assert ticket["language"] == "es"
    await client.post(f"/api/v1/tickets/{ticket['id']}/messages", json={"text": "¡Hola!"}, headers=auth)
    await client.post(f"/api/v1/tickets/{ticket['id']}/allow-ai", headers=auth)
    await settle(rt)
    notices = {m["status"]: m["text"] for m in callback.for_conversation("es1") if m["kind"] == "notice"}
    from handoff.notices import render

    assert notices == {
        "waiting": render("waiting", "es"),
        "agent_joined": render("agent_joined", "es", agent="Lucía"),
        "ai_resumed": render("ai_resumed", "es"),
    }
    assert notices["waiting"] != render("waiting", "en")


async def test_bot_escalation_opens_an_unassigned_ticket_that_one_agent_claims(client, rt, say, callback, make_agent):
    ana, ana_auth = await make_agent("Ana")
    _, ben_auth = await make_agent("Ben")
    await say("please escalate", conversation="q1")
    await settle(rt)
    conversation = await Conversation.get(external_key="q1")
    assert conversation.state == "human"
    queue = await (await client.get("/api/v1/tickets?assignee=none", headers=ana_auth)).json()
    assert len(queue["tickets"]) == 1 and queue["tickets"][0]["status"] == "open"
    tid = queue["tickets"][0]["id"]
    assert [m.get("status") for m in callback.for_conversation("q1")] == ["waiting"]

    # the customer's next message goes to the queue, not the bot
    await say("hello?", conversation="q1")
    await settle(rt)
    assert len(callback.for_conversation("q1")) == 1

    first = await client.post(f"/api/v1/tickets/{tid}/claim", headers=ana_auth)
    second = await client.post(f"/api/v1/tickets/{tid}/claim", headers=ben_auth)
    assert first.status == 200 and (await first.json())["status"] == "on_you"
    assert second.status == 409
    assert (await second.json())["assignee"]["name"] == "Ana"
    mine = await (await client.get("/api/v1/tickets?assignee=me&status=on_you", headers=ana_auth)).json()
    assert [t["id"] for t in mine["tickets"]] == [tid]


async def test_close_ends_the_conversation_and_the_next_message_starts_a_new_one(client, rt, say, callback, make_agent):
    _, auth = await make_agent()
    await say("hi", conversation="z1")
    await settle(rt)
    first = await Conversation.get(external_key="z1")
    ticket = await (await client.post(f"/api/v1/conversations/{first.id}/takeover", headers=auth)).json()
    response = await client.post(f"/api/v1/tickets/{ticket['id']}/close", headers=auth)
    assert response.status == 200
    await first.refresh_from_db()
    assert first.state == "ended"
    await say("hi again", conversation="z1")
    await settle(rt)
    conversations = await Conversation.filter(external_key="z1").order_by("id")
    assert [c.state for c in conversations] == ["ended", "bot"]
    # the new conversation's answer; the old one's "closed" notice may be delivered before or after it
    assert "echo: hi again" in [m["text"] for m in callback.for_conversation("z1")]


async def test_agent_reply_status_flow(client, rt, say, make_agent):
    _, auth = await make_agent()
    await say("hi", conversation="s1")
    await settle(rt)
    cid = await _conversation_id("s1")
    ticket = await (await client.post(f"/api/v1/conversations/{cid}/takeover", headers=auth)).json()
    await client.post(f"/api/v1/tickets/{ticket['id']}/messages", json={"text": "hello"}, headers=auth)
    assert (await Ticket.get(id=ticket["id"])).status == "on_customer"
    await say("thanks!", conversation="s1")
    await settle(rt)
    assert (await Ticket.get(id=ticket["id"])).status == "on_you"
    assert await Message.filter(ticket_id=ticket["id"], direction="incoming").count() == 1
    assert await Event.filter(ticket_id=ticket["id"], kind="takeover").count() == 1
