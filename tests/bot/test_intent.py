"""wants_human: explicit requests for a person, in all ten languages, and no false alarms."""

from __future__ import annotations

import pytest

from handoff.bot.intent import fold, wants_human

ASKS_FOR_A_PERSON = [
    # en
    "I want to talk to a human",
    "Can I speak with a real person please?",
    "let me talk to an agent",
    "Connect me to a representative.",
    "AGENT",
    "human please",
    "I need a live agent now",
    "get me a human",
    "can i talk to someone?",
    "I'd like to speak to your manager",
    # es
    "quiero hablar con una persona",
    "¿Puedo hablar con un agente, por favor?",
    "Necesito hablar con un asesor",
    "pásame con un humano",
    "Quiero atención humana",
    "agente por favor",
    # fr
    "je veux parler à un conseiller",
    "Est-ce que je peux parler avec quelqu'un ?",
    "Mettez-moi en relation avec un conseiller",
    "je voudrais un humain",
    "Un vrai humain svp",
    # de
    "ich möchte mit einem Mitarbeiter sprechen",
    "Kann ich bitte mit einem Menschen reden?",
    "verbinden Sie mich bitte mit dem Kundenservice",
    "Ich will einen echten Menschen!",
    "Mitarbeiter bitte",
    # pt
    "quero falar com um atendente",
    "Posso falar com uma pessoa de verdade?",
    "preciso de um atendente",
    "atendimento humano por favor",
    # it
    "vorrei parlare con un operatore",
    "Posso parlare con una persona reale?",
    "voglio un operatore",
    "operatore per favore",
    # nl
    "ik wil een medewerker spreken",
    "Kan ik met een medewerker praten?",
    "Ik wil graag met een echt persoon chatten",
    "medewerker alstublieft",
    # id
    "saya mau bicara dengan manusia",
    "Bisa ngobrol sama cs?",
    "tolong hubungkan saya dengan agen",
    "minta admin dong",
    # ja
    "担当者と話したい",
    "オペレーターにつないでください",
    "人間と話せますか？",
    "有人対応をお願いします",
    # zh
    "人工客服",
    "转人工",
    "我要找人工",
    "我想跟真人聊聊",
    "轉人工客服",
]

ORDINARY = [
    "is a person allowed to return two items?",
    "How long does shipping take?",
    "My agent at customs needs the invoice",
    "Do you sell human hair extensions?",
    "I spoke with an agent yesterday about order 4711",
    "Is this product suitable for one person?",
    "hi",
    "thanks, that helps",
    "¿Una persona puede devolver dos artículos?",
    "¿Cuánto cuesta el envío?",
    "Quel est le délai de livraison ?",
    "Cette personne a reçu mon colis",
    "Wie lange dauert der Versand?",
    "Ist der Artikel für eine Person geeignet?",
    "Quanto custa o frete?",
    "Quanto costa la spedizione?",
    "Hoe lang duurt de verzending?",
    "Berapa ongkos kirimnya?",
    "送料はいくらですか？",
    "友人と話した後で注文します",
    "你们是人工智能吗？",
    "这是人工皮革吗？",
    "运费是多少？",
]


@pytest.mark.parametrize("text", ASKS_FOR_A_PERSON)
def test_recognises_requests_for_a_person(text: str) -> None:
    assert wants_human(text)


@pytest.mark.parametrize("text", ORDINARY)
def test_ordinary_questions_are_not_requests(text: str) -> None:
    assert not wants_human(text)


@pytest.mark.parametrize(
    "text", ["QUIERO HABLAR CON UNA PERSONA", "quiero hablar con una persona", "Quiero hablar con úna pérsona"]
)
def test_case_and_accent_insensitive(text: str) -> None:
    assert wants_human(text)


def test_fold() -> None:
    assert fold("¿Puedo HABLAR con él?") == "puedo hablar con el"
    assert fold("Je veux parler à quelqu’un") == "je veux parler a quelqu un"
