"""OfflineSummarizer: deterministic subject and summary from the customer's own words."""

from __future__ import annotations

import pytest

from handoff import notices
from handoff.bot.base import Summarizer, Summary, Turn
from handoff.bot.summary import OfflineSummarizer, shorten

SUMMARIZER = OfflineSummarizer()

HISTORY = [
    Turn("customer", "hi"),
    Turn("bot", "Hello! How can I help?"),
    Turn("customer", "My order 4711 arrived with a broken lamp and the box was crushed"),
    Turn("bot", "I'm sorry to hear that."),
    Turn("customer", "I paid with PayPal, can I get a refund instead of a replacement?"),
    Turn("customer", "agent please"),
]


async def test_is_a_summarizer() -> None:
    assert isinstance(SUMMARIZER, Summarizer)


async def test_subject_and_summary_from_customer_messages() -> None:
    result = await SUMMARIZER.summarize(HISTORY, "en")
    assert result.subject == "My order 4711 arrived with a broken lamp and the box was crushed"
    assert result.summary.splitlines() == [
        "Customer asks about: My order 4711 arrived with a broken lamp and the box was crushed",
        "- I paid with PayPal, can I get a refund instead of a replacement?",
    ]
    assert "agent please" not in result.summary and "Hello!" not in result.summary


async def test_deterministic() -> None:
    assert await SUMMARIZER.summarize(HISTORY, "en") == await SUMMARIZER.summarize(list(HISTORY), "en")


@pytest.mark.parametrize("language", notices.LANGUAGES)
async def test_lead_in_is_localized(language: str) -> None:
    result = await SUMMARIZER.summarize(HISTORY, language)
    assert result.summary.startswith(notices.phrase("summary_lead", language) + " ")


async def test_spanish_lead_in() -> None:
    result = await SUMMARIZER.summarize([Turn("customer", "¿Dónde está mi pedido?")], "es")
    assert result == Summary(subject="¿Dónde está mi pedido?", summary="El cliente pregunta por: ¿Dónde está mi pedido?")


async def test_long_message_subject_fits_80_chars() -> None:
    text = "I ordered the large oak dining table in March and the delivery company keeps postponing " * 3
    result = await SUMMARIZER.summarize([Turn("customer", text)], "en")
    assert len(result.subject) <= 80 and result.subject.endswith("…")
    assert len(result.summary.splitlines()) == 1
    assert all(len(line) <= 200 for line in result.summary.splitlines())


async def test_at_most_three_lines() -> None:
    turns = [Turn("customer", f"question number {n} about shipping to country {n}") for n in range(8)]
    result = await SUMMARIZER.summarize(turns, "en")
    assert 1 <= len(result.summary.splitlines()) <= 3


async def test_repeated_messages_appear_once() -> None:
    turns = [Turn("customer", "where is my parcel from last week?")] * 3 + [Turn("customer", "still no parcel here")]
    result = await SUMMARIZER.summarize(turns, "en")
    assert result.summary.count("where is my parcel") == 1


async def test_only_asked_for_a_person() -> None:
    result = await SUMMARIZER.summarize([Turn("customer", "I want to talk to a human")], "fr")
    assert result.subject == "I want to talk to a human"
    assert result.summary == "Demande du client\u00a0: I want to talk to a human"


async def test_no_customer_text() -> None:
    result = await SUMMARIZER.summarize([Turn("bot", "Hello!"), Turn("customer", "  ")], "de")
    assert result.subject == "Neue Unterhaltung"


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("short", 80, "short"),
        ("  spaced\n out  ", 80, "spaced out"),
        ("one two three four five six", 15, "one two three…"),
        ("x" * 30, 10, "x" * 9 + "…"),
    ],
)
def test_shorten(text: str, limit: int, expected: str) -> None:
    assert shorten(text, limit) == expected
