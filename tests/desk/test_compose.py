"""AI compose (`POST /api/v1/tickets/{id}/compose`) through the real `openai` client against the
local fake OpenAI server, on SQLite and PostgreSQL: what the model is given (the conversation,
never internal notes; the customer's language), that nothing is sent, who may, and the answers
to bad input, a closed ticket, a failing model and a slow one."""

from __future__ import annotations

import time
from typing import Any

import pytest

from handoff.config import Settings
from handoff.models import Conversation, Message
from tests.conftest import settle
from tests.desk.test_openapi import _check, _document
from tests.fakes.openai_server import (
    FakeOpenAI,
    last_system_prompt,
    refusal,
    server_error,
    slow,
    text,
)

NOTE = "internal: card flagged by fraud team, code ZEBRA-77"


@pytest.fixture
async def fake() -> Any:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
def settings(settings: Settings, fake: FakeOpenAI) -> Settings:
    """The test app with a model configured (the fake), answering compose within 3 s (room for a loaded machine)."""
    return settings.model_copy(update={"openai_api_key": "sk-test-compose", "openai_base_url": fake.base_url,
                                           "bot_model": "fake-model", "compose_timeout": 3.0})


async def _ticket(client: Any, rt: Any, say: Any, auth: dict[str, str], *first: str, key: str = "c1") -> dict[str, Any]:
    """The api conversation `key` (the customer wrote `first`), taken over by the `auth` agent."""
    for words in first:
        await say(words, conversation=key, name="Dana Pérez")
    await settle(rt)
    conversation = await Conversation.get(external_key=key)
    response = await client.post(f"/api/v1/conversations/{conversation.id}/takeover", headers=auth)
    assert response.status == 201
    await settle(rt)
    return await response.json()


async def _compose(client: Any, ticket_id: int, auth: dict[str, str], **body: Any) -> tuple[int, Any]:
    response = await client.post(f"/api/v1/tickets/{ticket_id}/compose", json=body, headers=auth)
    return response.status, await response.json()


def _user_content(request: dict[str, Any]) -> str:
    return next(m["content"] for m in request["messages"] if m["role"] == "user")


async def test_a_draft_is_written_from_the_conversation_without_notes_and_sends_nothing(
        client, rt, say, make_agent, fake, callback) -> None:
    _, auth = await make_agent("Ann")
    ticket = await _ticket(client, rt, say, auth, "Where is my parcel 1042? It was due Monday.")
    await client.post(f"/api/v1/tickets/{ticket['id']}/messages", json={"text": NOTE, "internal": True}, headers=auth)
    await client.post(f"/api/v1/tickets/{ticket['id']}/messages", json={"text": "Let me check that for you."},
                      headers=auth)
    await settle(rt)
    messages = await Message.filter(conversation_id=ticket["conversation_id"]).count()
    delivered = len(callback.for_conversation("c1"))
    fake.queue(text("  Hi Dana, parcel 1042 is on its way: it should arrive [delivery date].  "))

    status, body = await _compose(client, ticket["id"], auth, mode="draft")

    assert (status, body) == (200, {"text": "Hi Dana, parcel 1042 is on its way: it should arrive [delivery date]."})
    [request] = fake.requests
    assert request["model"] == "fake-model"
    assert "Draft the agent's next reply" in last_system_prompt(request)
    content = _user_content(request)
    assert "Customer: Dana Pérez" in content and "Agent: Ann" in content
    assert "Customer: Where is my parcel 1042? It was due Monday." in content
    assert "Agent: Let me check that for you." in content
    assert "ZEBRA-77" not in str(request["messages"])  # a note never reaches the model
    await settle(rt)
    assert await Message.filter(conversation_id=ticket["conversation_id"]).count() == messages
    assert len(callback.for_conversation("c1")) == delivered


async def test_polish_keeps_the_agents_language_and_translate_uses_the_customers(client, rt, say, make_agent, fake):
    _, auth = await make_agent("Ann")
    ticket = await _ticket(client, rt, say, auth, "Hola, ¿dónde está mi pedido? Lo pedí hace una semana y no llega.")
    conversation = await Conversation.get(id=ticket["conversation_id"])
    assert conversation.language == "es"
    fake.queue(text("Your order left our warehouse today."), text("Su pedido salió hoy de nuestro almacén."))

    status, polished = await _compose(client, ticket["id"], auth, mode="polish", text="ur order left warehouse 2day")
    assert (status, polished) == (200, {"text": "Your order left our warehouse today."})
    status, translated = await _compose(client, ticket["id"], auth, mode="translate", text=polished["text"])
    assert (status, translated) == (200, {"text": "Su pedido salió hoy de nuestro almacén."})

    polish, translate = fake.requests
    assert "Polish the agent's text" in last_system_prompt(polish) and "Spanish" not in last_system_prompt(polish)
    assert _user_content(polish).endswith("The agent's text:\nur order left warehouse 2day")
    assert 'into Spanish (language code "es")' in last_system_prompt(translate)
    assert _user_content(translate).endswith("The agent's text:\nYour order left our warehouse today.")


async def test_anyone_may_compose_on_an_open_ticket_and_the_desk_learns_it_from_permissions(
        client, rt, say, make_agent, fake):
    _, ann = await make_agent("Ann")
    _, bob = await make_agent("Bob")
    ticket = await _ticket(client, rt, say, ann, "my parcel is late")
    document = await _document(client)

    response = await client.get(f"/api/v1/tickets/{ticket['id']}", headers=bob)
    assert (await response.json())["permissions"]["compose"] is True
    response = await client.post(f"/api/v1/tickets/{ticket['id']}/compose", json={"mode": "draft"}, headers=bob)
    assert response.status == 200  # Bob may not reply on Ann's ticket, but a draft sends nothing
    _check(document, "/api/v1/tickets/{id}/compose", "post", 200, await response.text())

    await client.post(f"/api/v1/tickets/{ticket['id']}/close", json={}, headers=ann)
    response = await client.get(f"/api/v1/tickets/{ticket['id']}", headers=ann)
    assert (await response.json())["permissions"]["compose"] is False
    response = await client.post(f"/api/v1/tickets/{ticket['id']}/compose", json={"mode": "draft"}, headers=ann)
    assert (response.status, await response.json()) == (409, {"error": "the ticket is closed"})
    _check(document, "/api/v1/tickets/{id}/compose", "post", 409, await response.text())


@pytest.mark.parametrize(("body", "status", "error"), [
    ({}, 400, "mode is required"),
    ({"mode": "rewrite"}, 400, "mode must be one of 'draft', 'polish' or 'translate'"),
    ({"mode": "polish"}, 400, "text is required to polish"),
    ({"mode": "translate", "text": "   "}, 400, "text is required to translate"),
    ({"mode": "polish", "text": 7}, 400, "text must be a string"),
    ({"mode": "polish", "text": "x" * 10_001}, 400, "text must be at most 10000 characters"),
])
async def test_bad_bodies_are_400_naming_the_field_and_ask_no_model(client, rt, say, make_agent, fake,
                                                                     body, status, error) -> None:
    _, auth = await make_agent("Ann")
    ticket = await _ticket(client, rt, say, auth, "hello")
    assert await _compose(client, ticket["id"], auth, **body) == (status, {"error": error})
    assert await _compose(client, 999_999, auth, mode="draft") == (404, {"error": "ticket not found"})
    assert fake.requests == []


async def test_translate_needs_the_customers_language(client, rt, say, make_agent, fake):
    _, auth = await make_agent("Ann")
    ticket = await _ticket(client, rt, say, auth, "ok")
    await Conversation.filter(id=ticket["conversation_id"]).update(language=None)
    status, body = await _compose(client, ticket["id"], auth, mode="translate", text="Thanks for waiting")
    assert status == 409 and "language is not known" in body["error"]
    assert fake.requests == []


async def test_a_failing_model_is_a_502_and_a_slow_one_a_504_within_the_timeout(client, rt, say, make_agent, fake):
    _, auth = await make_agent("Ann")
    ticket = await _ticket(client, rt, say, auth, "hello there")
    document = await _document(client)

    fake.queue(server_error(500), server_error(503))
    status, body = await _compose(client, ticket["id"], auth, mode="draft")
    assert (status, body) == (502, {"error": "the AI model could not help: server error (503)"})
    fake.queue(refusal())
    status, body = await _compose(client, ticket["id"], auth, mode="draft")
    assert (status, body) == (502, {"error": "the AI model could not help: model refused"})

    fake.queue(slow(10.0), slow(10.0))
    started = time.monotonic()
    response = await client.post(f"/api/v1/tickets/{ticket['id']}/compose", json={"mode": "draft"}, headers=auth)
    assert response.status == 504 and time.monotonic() - started < 7.0  # HANDOFF_COMPOSE_TIMEOUT is 3 s here
    assert await response.json() == {"error": "the AI model did not answer in time; try again"}
    _check(document, "/api/v1/tickets/{id}/compose", "post", 504, await response.text())
