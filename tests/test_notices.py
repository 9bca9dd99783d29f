"""Customer notices and timeline labels render in every supported language."""

from __future__ import annotations

from importlib import resources

import pytest

from handoff import notices
from handoff.notices import LANGUAGES, NOTICE_STYLES, NOTICES, label, normalize_language, render, sends_notice

PARAMS = {"agent_joined": {"agent": "Ana Souza"}, "transferred": {"agent": "Ana Souza"},
          "away": {"when": "Mon, December 7 09:00 (Central European Standard Time)"}}


STYLED_NOTICES = sorted((style, notice) for style, texts in NOTICE_STYLES.items() for notice in texts)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(("style", "notice"), STYLED_NOTICES)
def test_every_language_renders_every_notice(language: str, style: str, notice: str) -> None:
    text = render(notice, language, style, **PARAMS.get(notice, {}))
    assert text.strip()
    assert "{" not in text and "}" not in text
    for value in PARAMS.get(notice, {}).values():
        assert value in text
    if language != "en":
        assert text != render(notice, "en", style, **PARAMS.get(notice, {})), "untranslated"


def test_mail_style_sends_only_the_waiting_and_away_notices_in_their_own_wording() -> None:
    assert [n for n in NOTICES if sends_notice("mail", n)] == ["waiting", "away"]
    assert all(sends_notice("chat", n) for n in NOTICES)
    assert render("waiting", "es", "mail") == (
        "Gracias por tu mensaje. Una persona de nuestro equipo de soporte responderá a este correo."
    )
    assert render("waiting", "en", "mail") != render("waiting", "en")
    with pytest.raises(KeyError):
        render("agent_joined", "en", "mail", agent="Ana")


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalog_is_complete_and_not_fuzzy(language: str) -> None:
    catalog = notices._catalog(language)
    wanted = [*notices.NOTICES.values(), *notices.MAIL_NOTICES.values(), *notices.LABELS.values(),
              *notices.PHRASES.values()]
    for msgid in wanted:
        entry = catalog.get(msgid)
        assert entry is not None and entry.string and not entry.fuzzy, (language, msgid)
        assert ("{agent}" in msgid) == ("{agent}" in entry.string), (language, msgid)
        assert ("{when}" in msgid) == ("{when}" in entry.string), (language, msgid)


@pytest.mark.parametrize(
    ("notice", "language", "expected"),
    [
        ("waiting", "en", "Waiting for a support agent to join…"),
        ("agent_joined", "en", "You're now chatting with Ana Souza."),
        ("agent_joined", "es", "Ahora estás hablando con Ana Souza."),
        ("transferred", "es", "Tu conversación ha sido transferida a Ana Souza."),
        ("ai_resumed", "es", "Vuelves a hablar con nuestro asistente de IA."),
        ("closed", "es", "Esta conversación se ha cerrado."),
        ("agent_joined", "de", "Sie chatten jetzt mit Ana Souza."),
        ("closed", "zh", "本次对话已结束。"),
    ],
)
def test_known_texts(notice: str, language: str, expected: str) -> None:
    assert render(notice, language, **PARAMS.get(notice, {})) == expected


@pytest.mark.parametrize(
    ("tag", "base"),
    [
        ("pt-BR", "pt"), ("pt_PT", "pt"), ("zh-Hans", "zh"), ("zh-Hant-TW", "zh"), ("EN-gb", "en"),
        ("ES", "es"), ("de_DE.UTF-8", "de"), ("xx", "en"), ("ru", "en"), ("", "en"), (None, "en"),
    ],
)
def test_region_tags_map_to_base_language(tag: str | None, base: str) -> None:
    assert normalize_language(tag) == base
    assert render("closed", tag) == render("closed", base)


def test_unknown_language_falls_back_to_english() -> None:
    assert render("agent_joined", "ru", agent="Bo") == "You're now chatting with Bo."
    assert label("live_chat", "klingon") == "Live Chat"


def test_unknown_notice_or_missing_param_raises_key_error() -> None:
    with pytest.raises(KeyError):
        render("bogus", "en")
    with pytest.raises(KeyError):
        render("agent_joined", "fr")
    with pytest.raises(KeyError):
        label("bogus", "en")


def test_agent_names_with_braces_are_not_formatted() -> None:
    assert render("agent_joined", "fr", agent="{x}") == "Vous discutez maintenant avec {x}."


@pytest.mark.parametrize(
    ("name", "language", "expected"),
    [
        ("live_chat", "en", "Live Chat"),
        ("ai_resumed", "en", "AI Resumed"),
        ("live_chat", "es", "Chat en vivo"),
        ("live_chat", "de", "Live-Chat"),
        ("ai_resumed", "ja", "AI対応を再開"),
    ],
)
def test_labels(name: str, language: str, expected: str) -> None:
    assert label(name, language) == expected


@pytest.mark.parametrize("language", LANGUAGES)
def test_catalogs_ship_as_package_data(language: str) -> None:
    po = resources.files("handoff.notices").joinpath("locales", language, "LC_MESSAGES", "handoff.po")
    assert po.is_file()
    assert f'"Language: {language}\\n"' in po.read_text(encoding="utf-8")


@pytest.mark.parametrize("language", LANGUAGES)
def test_widget_texts_come_from_the_catalog(language: str) -> None:
    texts = notices.widget_texts(language)
    assert texts == {"waiting": render("waiting", language), "live_chat": label("live_chat", language),
                     "ai_resumed": label("ai_resumed", language),
                     **{key: notices.gettext(text, language) for key, text in notices.WIDGET_TEXTS.items()}}
    if language != "en":
        assert texts["waiting"] != "Waiting for a support agent to join…"
        assert texts["live_chat"] != "Live Chat"
