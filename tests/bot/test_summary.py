"""OfflineSummarizer: a subject and summary worth reading, from the conversation's own words:
who, what they want now, what the bot already answered, in the customer's language, about the
current takeover cycle only (earlier cycles as one line of context)."""

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
    Turn("bot", "I'm sorry to hear that. You can ask for a refund or a replacement within 30 days."),
    Turn("customer", "I paid with PayPal, can I get a refund instead of a replacement?"),
    Turn("customer", "agent please"),
]

# A conversation handed back to the AI once, then taken over again (issue 15, item 12).
SECOND_CYCLE = [
    Turn("customer", "Hello, where is my order 1234? It should have arrived on Monday.", earlier=True),
    Turn("agent", "It is with the courier, it arrives tomorrow.", earlier=True),
    Turn("customer", "Great, thanks! Order 1234.", earlier=True),
    Turn("customer", "hello again"),
    Turn("bot", "Hello! How can I help?"),
    Turn("customer", "Can I change the delivery address of order 1234 to my office in Berlin?"),
    Turn("bot", "I'm not sure I understood. Could you rephrase your question?"),
    Turn("customer", "I want to talk to a person"),
]


async def test_is_a_summarizer() -> None:
    assert isinstance(SUMMARIZER, Summarizer)


async def test_who_what_they_want_now_and_what_the_bot_answered() -> None:
    result = await SUMMARIZER.summarize(HISTORY, "en", "Ana Souza")
    assert result.subject == "I paid with PayPal, can I get a refund instead of a replacement?"
    assert result.summary.splitlines() == [
        "Ana Souza asks about: I paid with PayPal, can I get a refund instead of a replacement?",
        "Also said: My order 4711 arrived with a broken lamp and the box was crushed",
        "Asked to talk to a person.",
    ]


async def test_the_bots_last_answer_after_the_request_is_reported() -> None:
    turns = HISTORY[:4]
    result = await SUMMARIZER.summarize(turns, "en")
    assert result.summary.splitlines() == [
        "Customer asks about: My order 4711 arrived with a broken lamp and the box was crushed",
        "The AI assistant answered: I'm sorry to hear that. You can ask for a refund or a replacement within 30 days.",
    ]


async def test_the_second_cycle_is_about_what_was_asked_since_the_handback() -> None:
    result = await SUMMARIZER.summarize(SECOND_CYCLE, "en", "+34 600 000 000")
    assert result.subject == "Can I change the delivery address of order 1234 to my office in Berlin?"
    assert result.summary.splitlines() == [
        "+34 600 000 000 asks about: Can I change the delivery address of order 1234 to my office in Berlin?",
        "The AI assistant had no answer.",  # its fallback is not an answer, in any language
        "Asked to talk to a person.",
        "Earlier in this conversation: Hello, where is my order 1234? It should have arrived on Monday.",
    ]
    assert "Great, thanks" not in result.summary and "hello again" not in result.summary


async def test_a_second_cycle_with_nothing_new_said_uses_the_earlier_words() -> None:
    turns = [Turn("customer", "My parcel to Lyon is two weeks late, tracking shows nothing", earlier=True),
             Turn("agent", "Let me check.", earlier=True)]
    result = await SUMMARIZER.summarize(turns, "en")
    assert result.subject == "My parcel to Lyon is two weeks late, tracking shows nothing"
    assert "Earlier" not in result.summary


async def test_in_the_customers_language() -> None:
    turns = [Turn("customer", "Hola"), Turn("bot", "¡Hola! ¿En qué puedo ayudarte?"),
             Turn("customer", "¿Dónde está mi pedido 1234 que compré el lunes?"),
             Turn("bot", "Tu pedido sale hoy del almacén de Madrid.")]
    result = await SUMMARIZER.summarize(turns, "es", "Lucía")
    assert result == Summary(
        subject="¿Dónde está mi pedido 1234 que compré el lunes?",
        summary="Lucía pregunta por: ¿Dónde está mi pedido 1234 que compré el lunes?\n"
                "El asistente de IA respondió: Tu pedido sale hoy del almacén de Madrid.")


async def test_deterministic() -> None:
    assert await SUMMARIZER.summarize(HISTORY, "en") == await SUMMARIZER.summarize(list(HISTORY), "en")


@pytest.mark.parametrize("language", notices.LANGUAGES)
async def test_every_line_is_localized(language: str) -> None:
    result = await SUMMARIZER.summarize(SECOND_CYCLE, language, "Ana")
    lines = result.summary.splitlines()
    assert lines[0].startswith(notices.phrase("summary_lead_named", language).format(contact="Ana") + " ")
    assert lines[1] == notices.phrase("summary_no_answer", language)
    assert lines[2] == notices.phrase("summary_person", language)
    assert lines[3].startswith(notices.phrase("summary_earlier", language) + " ")
    if language != "en":
        assert not set(lines[1:3]) & {"The AI assistant had no answer.", "Asked to talk to a person."}


async def test_long_message_subject_fits_80_chars() -> None:
    text = "I ordered the large oak dining table in March and the delivery company keeps postponing " * 3
    result = await SUMMARIZER.summarize([Turn("customer", text)], "en")
    assert len(result.subject) <= 80 and result.subject.endswith("…")
    assert len(result.summary.splitlines()) == 1
    assert all(len(line) <= 200 for line in result.summary.splitlines())


async def test_repeated_messages_appear_once() -> None:
    turns = [Turn("customer", "where is my parcel from last week?")] * 3 + [Turn("customer", "still no parcel here")]
    result = await SUMMARIZER.summarize(turns, "en")
    assert result.summary.count("where is my parcel") == 1


async def test_only_asked_for_a_person() -> None:
    result = await SUMMARIZER.summarize([Turn("customer", "I want to talk to a human")], "fr")
    assert result.subject == "I want to talk to a human"
    assert result.summary == "Demande du client\u00a0: I want to talk to a human\nA demandé à parler à une personne."


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
