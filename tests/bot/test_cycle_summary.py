"""The second takeover's ticket is summarized from what happened since the last handback (issue 15,
item 12), through the app and the offline summarizer, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

from handoff.bot.history import load_cycle_turns
from handoff.bot.summary import OfflineSummarizer
from handoff.channels.api import sign
from handoff.models import Conversation, Ticket
from handoff.runtime import RUNTIME
from tests.conftest import API_SECRET, api_body, settle


async def customer_says(client: Any, text: str) -> None:
    body = api_body(text, conversation="order-1234", contact="ana", name="Ana Souza")
    resp = await client.post("/webhooks/api", data=body, headers={"X-Handoff-Signature": sign(API_SECRET, body)})
    assert resp.status == 202
    await settle(client.app[RUNTIME])


async def take_over(client: Any, headers: dict[str, str]) -> Ticket:
    conversation = await Conversation.get(external_key="order-1234")
    resp = await client.post(f"/api/v1/conversations/{conversation.id}/takeover", headers=headers)
    assert resp.status == 201, await resp.text()
    await settle(client.app[RUNTIME])
    return await Ticket.get(id=(await resp.json())["id"])


async def test_the_second_ticket_is_about_the_second_cycle(aiohttp_client: Any, app_factory: Any, make_agent: Any) -> None:
    client = await aiohttp_client(app_factory(summarizer=OfflineSummarizer()))
    _agent, headers = await make_agent("Ana")
    await customer_says(client, "Hello, where is my order 1234? It should have arrived on Monday.")
    first = await take_over(client, headers)
    assert first.subject == "Hello, where is my order 1234? It should have arrived on Monday."
    resp = await client.post(f"/api/v1/tickets/{first.id}/messages", json={"text": "It arrives tomorrow."}, headers=headers)
    assert resp.status in (200, 201)
    await customer_says(client, "Great, thanks! Order 1234.")
    assert (await client.post(f"/api/v1/tickets/{first.id}/allow-ai", headers=headers)).status == 200
    await customer_says(client, "Can I change the delivery address of order 1234 to my office in Berlin?")

    conversation = await Conversation.get(external_key="order-1234")
    turns = await load_cycle_turns(conversation.id, limit=40, context=20)
    assert [t.text for t in turns if t.earlier][-2:] == ["It arrives tomorrow.", "Great, thanks! Order 1234."]
    assert [t.text for t in turns if not t.earlier][0] == (
        "Can I change the delivery address of order 1234 to my office in Berlin?")

    second = await take_over(client, headers)
    assert second.id != first.id
    assert second.subject == "Can I change the delivery address of order 1234 to my office in Berlin?"
    lines = second.summary.splitlines()
    assert lines[0] == "Ana Souza asks about: Can I change the delivery address of order 1234 to my office in Berlin?"
    assert lines[1].startswith("The AI assistant answered: ")  # the echo bot's answer to it
    assert lines[-1] == "Earlier in this conversation: Hello, where is my order 1234? It should have arrived on Monday."
    assert "Great, thanks" not in second.summary


async def test_without_a_handback_every_turn_is_the_current_cycle(client: Any) -> None:
    await customer_says(client, "first question about shipping to Lisbon")
    conversation = await Conversation.get(external_key="order-1234")
    turns = await load_cycle_turns(conversation.id, limit=40, context=20)
    assert turns and not any(t.earlier for t in turns)
    assert turns[0].text == "first question about shipping to Lisbon"
