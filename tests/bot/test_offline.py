"""OfflineBot: ranked answers from the knowledge file, localized fallback, stateless escalation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from handoff import notices
from handoff.bot.base import Bot, BotReply, Turn
from handoff.bot.offline import REASON_ASKED, REASON_NO_ANSWER, BM25, Entry, OfflineBot, load_entries, terms
from handoff.config import Settings

BOT = OfflineBot.default()

# Paraphrases that are not in the knowledge file, with the topic that must answer them.
IN_DOMAIN = [
    ("shipping", "how many days until my package is delivered"),
    ("shipping", "what does delivery cost"),
    ("shipping", "do you deliver to Mexico"),
    ("shipping", "is there free shipping"),
    ("returns", "can I send back the shoes"),
    ("returns", "I got the wrong size"),
    ("returns", "how do returns work"),
    ("refund", "I still haven't got my money back"),
    ("refund", "when is the refund coming"),
    ("opening_hours", "are you open on saturday"),
    ("opening_hours", "what time does the store close"),
    ("payment", "do you take mastercard"),
    ("payment", "can I pay with apple pay"),
    ("order_tracking", "where's my parcel"),
    ("order_tracking", "how do I track my package"),
    ("order_tracking", "my order has not arrived yet"),
    ("cancel_order", "I want to cancel my order"),
    ("greeting", "hello"),
    ("thanks", "thank you so much"),
    ("shipping", "¿cuánto cuesta enviar a Canarias?"),
    ("returns", "quiero devolver unas zapatillas"),
    ("refund", "aún no tengo mi reembolso"),
    ("opening_hours", "¿abrís el sábado?"),
    ("payment", "se puede pagar con tarjeta de crédito"),
    ("order_tracking", "¿dónde está mi paquete?"),
    ("cancel_order", "quiero cancelar el pedido"),
    ("greeting", "hola"),
    ("thanks", "gracias!"),
]

OFF_TOPIC = [
    "what's the weather like today", "tell me a joke", "do you sell bicycles?", "I love your brand",
    "can you recommend a good book", "who won the game yesterday", "asdfgh", "ok", "I need help",
    "¿quién ganó el partido?", "cuéntame un chiste", "is the blue jacket waterproof?",
    "what material is the sweater made of", "Quel temps fait-il ?", "ich liebe eure Produkte", "",
]


def customer(text: str) -> Turn:
    return Turn("customer", text)


def bot(text: str) -> Turn:
    return Turn("bot", text)


@pytest.mark.parametrize(("topic", "question"), IN_DOMAIN)
def test_ranks_the_right_entry(topic: str, question: str) -> None:
    found = BOT.search(question, "en")
    assert found is not None, question
    entry, score = found
    assert entry.topic == topic
    assert score >= BOT.min_score


@pytest.mark.parametrize("entry", BOT.entries, ids=lambda e: f"{e.topic}-{e.language}")
def test_every_knowledge_question_finds_its_own_entry(entry: Entry) -> None:
    for question in entry.questions:
        assert BOT.search(question, entry.language)[0] == entry, question


@pytest.mark.parametrize("question", OFF_TOPIC)
def test_no_good_answer_off_topic(question: str) -> None:
    assert BOT.search(question, "en") is None


def test_score_gap_between_in_domain_and_off_topic() -> None:
    worst_in = min(BOT.search(q)[1] for _, q in IN_DOMAIN)
    best_off = max(max(BOT.index.scores(terms(q)), default=0) / BOT.index.unique_idf for q in OFF_TOPIC)
    assert best_off < BOT.min_score <= worst_in


@pytest.mark.parametrize(
    ("question", "language", "expected_language"),
    [
        ("¿Cuánto tarda el envío?", "es", "es"),  # Spanish question, Spanish customer
        ("How long does shipping take?", "es", "es"),  # the topic has a Spanish entry
        ("¿Cuánto tarda el envío?", "en", "en"),
        ("¿Cuánto tarda el envío?", "fr", "es"),  # no French entry: the best-matching one
        ("How long does shipping take?", "de", "en"),
        ("How long does shipping take?", "pt-BR", "en"),
    ],
)
def test_answers_in_the_customers_language_when_it_can(
    question: str, language: str, expected_language: str
) -> None:
    entry, _ = BOT.search(question, language)
    assert entry.topic == "shipping"
    assert entry.language == expected_language


async def test_is_a_bot() -> None:
    assert isinstance(BOT, Bot)
    reply = await BOT.reply([customer("How long does shipping take?")], "en")
    assert reply == BotReply(text=next(e.answer for e in BOT.entries if (e.topic, e.language) == ("shipping", "en")))


async def test_spanish_customer_gets_spanish_answer() -> None:
    reply = await BOT.reply([customer("¿Puedo pagar con PayPal?")], "es")
    assert reply.text is not None and "Aceptamos" in reply.text


@pytest.mark.parametrize("language", notices.LANGUAGES)
async def test_fallback_is_localized(language: str) -> None:
    reply = await BOT.reply([customer("tell me a joke")], language)
    assert not reply.escalate
    assert reply.text == notices.phrase("fallback", language)


ESCALATION_CASES = [
    # (history, language, escalates, reason)
    ([customer("I want to talk to a human")], "en", True, REASON_ASKED),
    ([customer("quiero hablar con una persona")], "es", True, REASON_ASKED),
    ([customer("人工客服")], "zh", True, REASON_ASKED),
    ([customer("tell me a joke")], "en", False, ""),
    ([customer("tell me a joke"), bot(notices.phrase("fallback", "en")), customer("a funny one")], "en", True,
     REASON_NO_ANSWER),
    # The fallback is recognised in whatever language it was sent.
    ([customer("xyz"), bot(notices.phrase("fallback", "ja")), customer("abc")], "en", True, REASON_NO_ANSWER),
    ([customer("xyz"), bot(notices.phrase("fallback", "es") + "\n"), customer("abc")], "es", True,
     REASON_NO_ANSWER),
    # One miss, then a good answer: no escalation.
    ([customer("tell me a joke"), bot(notices.phrase("fallback", "en")), customer("where is my order?")], "en",
     False, ""),
    # Several customer messages after the fallback: still the second miss.
    ([customer("xyz"), bot(notices.phrase("fallback", "en")), customer("abc"), customer("def")], "en", True,
     REASON_NO_ANSWER),
    # A miss after a real answer is only the first miss.
    ([customer("where is my order?"), bot("You'll find your tracking link..."), customer("tell me a joke")], "en",
     False, ""),
    # After an agent handed back, an old fallback does not count.
    ([customer("xyz"), bot(notices.phrase("fallback", "en")), Turn("agent", "Hi, Ana here"),
      customer("tell me a joke")], "en", False, ""),
    # Asking for a person wins over a good answer.
    ([customer("where is my order? I want to speak to a real person")], "en", True, REASON_ASKED),
]


@pytest.mark.parametrize(("history", "language", "escalates", "reason"), ESCALATION_CASES)
async def test_escalation(history: list[Turn], language: str, escalates: bool, reason: str) -> None:
    reply = await BOT.reply(history, language)
    assert reply.escalate is escalates
    assert reply.reason == reason
    if escalates:
        assert reply.text is None
    else:
        assert reply.text


async def test_joins_consecutive_customer_messages() -> None:
    reply = await BOT.reply([customer("hi"), customer("do you take mastercard")], "en")
    assert reply.text is not None and "Mastercard" in reply.text


def test_from_file(tmp_path: Path) -> None:
    path = tmp_path / "kb.json"
    path.write_text(
        json.dumps({"entries": [
            {"topic": "pets", "language": "en", "questions": ["Can I bring my dog?"], "answer": "Dogs welcome."},
            {"topic": "pets", "language": "fr", "questions": ["Puis-je venir avec mon chien ?"],
             "answer": "Les chiens sont les bienvenus."},
            {"topic": "parking", "questions": ["Is there parking?"], "answer": "Yes, free parking."},
        ]}),
        encoding="utf-8",
    )
    kb = OfflineBot.from_file(path)
    assert kb.search("can I bring my dog?", "fr")[0].answer == "Les chiens sont les bienvenus."
    assert kb.search("where do I park? parking", "fr")[0].answer == "Yes, free parking."
    assert kb.search("opening hours", "en") is None
    assert OfflineBot.from_settings(Settings(knowledge_file=str(path))).entries == kb.entries
    assert OfflineBot.from_settings(Settings()).entries == BOT.entries


@pytest.mark.parametrize(
    "payload",
    ['{"entries": [{"answer": "x"}]}', '{"entries": [{"questions": "q", "answer": "x"}]}',
     '{"entries": [{"questions": ["q"], "answer": ""}]}', '{"items": []}', "[1]"],
)
def test_bad_knowledge_files_are_rejected(payload: str) -> None:
    with pytest.raises(ValueError):
        load_entries(payload)


def test_empty_knowledge_is_rejected() -> None:
    with pytest.raises(ValueError):
        OfflineBot([])


def test_default_knowledge_covers_english_and_spanish() -> None:
    by_language: dict[str, set[str]] = {}
    for entry in BOT.entries:
        by_language.setdefault(entry.language, set()).add(entry.topic)
    assert {"shipping", "returns", "opening_hours", "payment", "order_tracking"} <= by_language["en"]
    assert by_language["es"] == by_language["en"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Where's my RETURNS label?", ["where", "retur", "label"]),
        ("¿Dónde está mi devolución?", ["donde", "devol"]),
        ("What is the price of a T-shirt?", ["price", "shirt"]),
        ("我的订单", ["我的", "的订", "订单"]),
        ("注文 ok", ["注文", "ok"]),
    ],
)
def test_terms(text: str, expected: list[str]) -> None:
    assert terms(text) == expected


def test_bm25_prefers_rarer_and_repeated_terms() -> None:
    index = BM25([["ship", "ship", "fast"], ["ship", "return"], ["pay", "card"]])
    s = index.scores(["ship", "return"])
    assert s[1] > s[0] > s[2] == 0
