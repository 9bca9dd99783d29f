"""OpenAISummarizer: structured output through the real `openai` client, and its fallback."""

from __future__ import annotations

from collections.abc import Sequence

import openai
import pytest

from handoff.bot.base import Summary, Turn
from handoff.bot.openai_bot import RetryPolicy
from handoff.bot.openai_summarizer import OpenAISummarizer
from handoff.bot.summary import OfflineSummarizer
from tests.fakes.openai_server import (
    FakeOpenAI,
    json_output,
    last_system_prompt,
    malformed,
    refusal,
    server_error,
    text,
)

FAST = RetryPolicy(attempts=2, attempt_timeout=1.0, total_timeout=2.0, backoff=0.01)

CASES = {
    "en": (
        "English",
        [Turn("customer", "My order #123 arrived broken."), Turn("bot", "Sorry! Photos please?"),
         Turn("customer", "Sent. I want a replacement.")],
        {"subject": "Broken order #123: replacement", "summary": "The order arrived broken; the customer sent photos and wants a replacement."},
    ),
    "es": (
        "Spanish",
        [Turn("customer", "Mi pedido #123 llegó roto."), Turn("bot", "¡Lo siento! ¿Fotos?"),
         Turn("customer", "Enviadas. Quiero un reemplazo.")],
        {"subject": "Pedido #123 roto: reemplazo", "summary": "El pedido llegó roto; el cliente envió fotos y pide un reemplazo."},
    ),
    "ja": (
        "Japanese",
        [Turn("customer", "注文#123が壊れて届きました。"), Turn("bot", "申し訳ありません。写真をお願いします。"),
         Turn("customer", "送りました。交換してください。")],
        {"subject": "注文#123の破損：交換希望", "summary": "注文品が破損して届きました。お客様は写真を送付済みで、交換を希望しています。"},
    ),
}


def by_language(body: dict) -> object:
    """Answer in whichever language the request's instructions name, like a real model would."""
    system = last_system_prompt(body)
    for name, _, doc in CASES.values():
        if f"in {name}" in system:
            return json_output(doc)
    return server_error(500)


class RecordingFallback:
    def __init__(self) -> None:
        self.calls: list[tuple[Sequence[Turn], str]] = []
        self.contacts: list[str | None] = []

    async def summarize(self, history: Sequence[Turn], language: str, contact: str | None = None) -> Summary:
        self.calls.append((history, language))
        self.contacts.append(contact)
        return Summary(subject="offline subject", summary="offline summary")


@pytest.fixture
async def fake():
    async with FakeOpenAI(default=by_language) as server:
        yield server


@pytest.fixture
async def client(fake):
    c = openai.AsyncOpenAI(api_key="sk-test-summary", base_url=fake.base_url, max_retries=0)
    yield c
    await c.close()


@pytest.fixture
def fallback():
    return RecordingFallback()


def make(client, fallback=None, **kwargs) -> OpenAISummarizer:
    return OpenAISummarizer(client, model="fake-model", fallback=fallback, policy=FAST, **kwargs)


@pytest.mark.parametrize("language", ["en", "es", "ja"])
async def test_summary_in_the_customers_language(fake, client, fallback, language):
    name, history, expected = CASES[language]

    summary = await make(client, fallback).summarize(history, language)

    assert summary == Summary(**expected)
    assert fallback.calls == []
    [body] = fake.requests
    assert f"in {name}" in last_system_prompt(body) and f'"{language}"' in last_system_prompt(body)
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["name"] == "ticket_summary" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["schema"]["required"] == ["subject", "summary"]
    assert history[0].text in body["messages"][-1]["content"]  # the transcript is the user message
    assert "tools" not in body


@pytest.mark.parametrize(
    "bad",
    [
        lambda: text("this is not JSON"),
        lambda: json_output({"subject": "only a subject"}),
        lambda: json_output({"subject": "", "summary": "x"}),
        lambda: json_output(["subject", "summary"]),
        malformed,
        lambda: server_error(502),
    ],
    ids=["prose", "missing-field", "blank-field", "wrong-type", "not-json-body", "5xx"],
)
async def test_unusable_model_output_falls_back_after_retrying(fake, client, fallback, bad):
    fake.queue(bad(), bad())
    summary = await make(client, fallback).summarize(CASES["en"][1], "en")
    assert summary == Summary("offline subject", "offline summary")
    assert fallback.calls == [(CASES["en"][1], "en")]
    assert len(fake.requests) == 2


async def test_a_retry_can_still_succeed(fake, client, fallback):
    fake.queue(text("not json"))
    summary = await make(client, fallback).summarize(CASES["es"][1], "es")
    assert summary == Summary(**CASES["es"][2])
    assert fallback.calls == []


@pytest.mark.parametrize("answer", [refusal, lambda: server_error(400)], ids=["refusal", "schema-rejected"])
async def test_refusal_or_rejected_schema_falls_back_at_once(fake, client, fallback, answer):
    fake.queue(answer())
    summary = await make(client, fallback).summarize(CASES["en"][1], "en")
    assert summary.subject == "offline subject"
    assert len(fake.requests) == 1


async def test_long_fields_are_capped(fake, client, fallback):
    fake.queue(json_output({"subject": "word " * 100, "summary": "s" * 5_000}))
    summary = await make(client, fallback).summarize(CASES["en"][1], "en")
    assert len(summary.subject) <= 120 and len(summary.summary) <= 1_000


async def test_without_an_injected_fallback_the_offline_summarizer_writes_it(fake, client):
    fake.queue(server_error(400))
    summary = await make(client).summarize(CASES["en"][1], "en")
    assert summary == await OfflineSummarizer().summarize(CASES["en"][1], "en")
    assert summary.subject


SECOND_CYCLE = [
    Turn("customer", "Where is order 1234?", earlier=True),
    Turn("agent", "It arrives tomorrow.", earlier=True),
    Turn("customer", "Great, thanks! Order 1234.", earlier=True),
    Turn("customer", "Can I change the delivery address to Berlin?"),
    Turn("bot", "Let me get a person for that."),
]


async def test_the_model_summarizes_the_current_cycle_with_the_earlier_ones_as_context(fake, client, fallback):
    fake.queue(json_output({"subject": "Change delivery address to Berlin", "summary": "Ana wants a new address."}))
    summary = await make(client, fallback).summarize(SECOND_CYCLE, "en", "Ana Souza")
    assert summary.subject == "Change delivery address to Berlin"
    [body] = fake.requests
    assert "context only" in last_system_prompt(body) and "never as the subject" in last_system_prompt(body)
    user = body["messages"][-1]["content"]
    customer, earlier, current = user.split("\n\n")
    assert customer == "Customer: Ana Souza"
    assert earlier == ("Earlier conversation (context only):\nCustomer: Where is order 1234?\n"
                       "Agent: It arrives tomorrow.\nCustomer: Great, thanks! Order 1234.")
    assert current == ("Current conversation:\nCustomer: Can I change the delivery address to Berlin?\n"
                       "Assistant: Let me get a person for that.")


async def test_a_first_cycle_has_no_earlier_block_and_the_fallback_gets_the_contact(fake, client, fallback):
    fake.queue(server_error(400))
    await make(client, fallback).summarize(CASES["en"][1], "en", "ana@example.com")
    user = fake.requests[0]["messages"][-1]["content"]
    assert "Earlier conversation" not in user and user.startswith("Customer: ana@example.com\n\nCurrent conversation:\n")
    assert fallback.contacts == ["ana@example.com"]
