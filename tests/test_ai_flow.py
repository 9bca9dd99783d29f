"""The AI end to end: the app runs OpenAIBot and OpenAISummarizer against the local fake model.

Customer messages go in through the api channel; the model answers, escalates by tool call,
fails (and the conversation escalates with the reason on the timeline), writes the takeover
summary in the customer's language, and a reply it was generating while an agent took over is
never delivered (the fence).
"""

from __future__ import annotations

import openai
import pytest

from handoff.bot.openai_bot import OpenAIBot, RetryPolicy
from handoff.bot.openai_summarizer import OpenAISummarizer
from handoff.models import Conversation, Event, Message, Ticket
from tests.conftest import settle
from tests.fakes.openai_server import FakeOpenAI, held, json_output, last_system_prompt, server_error, text, tool_call

FAST = RetryPolicy(attempts=2, attempt_timeout=5.0, total_timeout=8.0, backoff=0.01)
SUMMARIES = {
    "English": {"subject": "Refund for order 42", "summary": "The customer wants a refund for order 42."},
    "Spanish": {"subject": "Reembolso del pedido 42", "summary": "El cliente quiere un reembolso del pedido 42."},
}


def model(body: dict) -> object:
    """The fake model's default: summaries in the language asked for, else a short answer."""
    if "response_format" in body:
        system = last_system_prompt(body)
        return json_output(next((doc for name, doc in SUMMARIES.items() if f"in {name}" in system),
                                SUMMARIES["English"]))
    return text("How can I help?")


@pytest.fixture
async def fake():
    async with FakeOpenAI(default=model) as server:
        yield server


@pytest.fixture
async def openai_client(fake):
    client = openai.AsyncOpenAI(api_key="sk-test-flow", base_url=fake.base_url, max_retries=0)
    yield client
    await client.close()


@pytest.fixture
def bot(openai_client):
    """Overrides conftest's scripted bot: the app answers with the model."""
    return OpenAIBot(openai_client, model="fake-model", system_prompt="You help Demo Shop customers.",
                     policy=FAST, wants_human=None)


@pytest.fixture
async def client(aiohttp_client, app_factory, openai_client):
    """The test app with the model-backed summarizer as well."""
    summarizer = OpenAISummarizer(openai_client, model="fake-model", policy=FAST)
    return await aiohttp_client(app_factory(summarizer=summarizer))


async def test_conversation_is_answered_by_the_model(rt, say, callback, fake):
    fake.queue(text("Your order ships tomorrow."))
    assert (await say("Where is my order?", conversation="ai-1")).status == 202
    await settle(rt)
    assert [(m["kind"], m["text"]) for m in callback.for_conversation("ai-1")] == [
        ("bot", "Your order ships tomorrow.")]
    [request] = fake.requests
    assert request["messages"][-1] == {"role": "user", "content": "Where is my order?"}
    assert [t["function"]["name"] for t in request["tools"]] == ["escalate_to_human"]
    say_more = await say("Thanks!", conversation="ai-1")
    assert say_more.status == 202
    await settle(rt)
    history = fake.requests[-1]["messages"][1:]
    assert [m["role"] for m in history] == ["user", "assistant", "user"]


async def test_escalation_by_tool_call_opens_an_unassigned_ticket_with_a_model_summary(rt, say, callback, fake):
    fake.queue(tool_call("escalate_to_human", {"reason": "refund above the bot's limit"}))
    await say("I want a refund for order 42, it arrived broken.", conversation="ai-2")
    await settle(rt)
    conversation = await Conversation.get(external_key="ai-2")
    assert conversation.state == "human" and conversation.assignee_id is None
    ticket = await Ticket.get(conversation_id=conversation.id)
    assert (ticket.status, ticket.assignee_id, ticket.reason) == ("open", None, "refund above the bot's limit")
    assert (ticket.subject, ticket.summary) == tuple(SUMMARIES["English"].values())
    assert [m["kind"] for m in callback.for_conversation("ai-2")] == ["notice"]
    assert await Message.filter(conversation_id=conversation.id, author_kind="bot").count() == 0


async def test_spanish_conversation_gets_a_spanish_summary(rt, say, fake):
    fake.queue(tool_call("escalate_to_human", {"reason": "reembolso"}))
    await say("Hola, quiero que me devuelvan el dinero del pedido 42 porque llegó roto.", conversation="ai-es")
    await settle(rt)
    conversation = await Conversation.get(external_key="ai-es")
    ticket = await Ticket.get(conversation_id=conversation.id)
    [summary_request] = [r for r in fake.requests if "response_format" in r]
    assert conversation.language == "es"
    assert 'in Spanish (language code "es")' in last_system_prompt(summary_request)
    assert ticket.subject == SUMMARIES["Spanish"]["subject"]


async def test_model_failure_escalates_with_the_reason_on_the_timeline(rt, say, callback, fake):
    fake.queue(server_error(503), server_error(503))
    await say("Is the shop open on Sunday?", conversation="ai-3")
    await settle(rt)
    conversation = await Conversation.get(external_key="ai-3")
    assert conversation.state == "human"
    ticket = await Ticket.get(conversation_id=conversation.id)
    assert ticket.reason == "assistant unavailable: server error (503)"
    event = await Event.get(conversation_id=conversation.id, kind="escalated")
    assert event.data.get("reason") == "assistant unavailable: server error (503)"
    assert [m["kind"] for m in callback.for_conversation("ai-3")] == ["notice"]


async def test_reply_generated_while_an_agent_takes_over_is_never_delivered(client, rt, say, callback, fake,
                                                                            make_agent):
    slow_reply = held(text("A reply that must not arrive."))
    fake.queue(slow_reply)
    await say("Hello, anyone there?", conversation="ai-fence")
    await fake.wait_requests(1)  # the model is generating
    conversation = await Conversation.get(external_key="ai-fence")
    _, headers = await make_agent("Ana")
    response = await client.post(f"/api/v1/conversations/{conversation.id}/takeover", headers=headers)
    assert response.status == 201
    slow_reply.gate.set()  # the model finishes after the takeover committed
    await settle(rt)
    texts = [m["text"] for m in callback.for_conversation("ai-fence")]
    assert "A reply that must not arrive." not in texts
    assert await Message.filter(conversation_id=conversation.id, author_kind="bot").count() == 0
    assert await Event.filter(conversation_id=conversation.id, kind="bot_reply_dropped").exists()
