"""Customer notices, timeline labels and the offline bot's phrases, in the customer's language.

The texts live in gettext catalogs, `locales/<lang>/LC_MESSAGES/handoff.po`, keyed by their
English source text (the gettext convention). They are read with Babel's `read_po` on first use
and cached; there is no compile step. A language we have no catalog for falls back to English,
and a region tag ("pt-BR", "zh-Hans", "en_GB") uses its base language.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

LANGUAGES: tuple[str, ...] = ("en", "es", "fr", "de", "pt", "it", "nl", "id", "ja", "zh")
DEFAULT_LANGUAGE = "en"

# Notices sent to the customer (OutboundMessage.notice) -> English source text.
NOTICES: dict[str, str] = {
    "waiting": "Waiting for a support agent to join…",
    "agent_joined": "You're now chatting with {agent}.",
    "transferred": "You've been transferred to {agent}.",
    "ai_resumed": "You're back with our AI assistant.",
    "closed": "This conversation has been closed.",
}

# Notices for mail-like channels, where chat notices would each be a separate email: only these
# are sent there, in this wording. The reply itself names the agent, so no "agent joined" email.
MAIL_NOTICES: dict[str, str] = {
    "waiting": "Thanks for your message. A member of our support team will reply to this email.",
}

NOTICE_STYLES: dict[str, dict[str, str]] = {"chat": NOTICES, "mail": MAIL_NOTICES}

# Timeline separators -> English source text.
LABELS: dict[str, str] = {
    "live_chat": "Live Chat",
    "ai_resumed": "AI Resumed",
}

# Phrases of the offline bot and the offline summarizer -> English source text.
PHRASES: dict[str, str] = {
    "fallback": "I'm not sure I understood. Could you rephrase your question?",
    "summary_lead": "Customer asks about:",
    "no_subject": "New conversation",
}


def normalize_language(language: str | None) -> str:
    """The supported base language for a tag ("pt-BR" -> "pt", "zh_Hans" -> "zh"), else English."""
    if not language:
        return DEFAULT_LANGUAGE
    base = re.split(r"[-_.@]", language.strip(), maxsplit=1)[0].lower()
    return base if base in LANGUAGES else DEFAULT_LANGUAGE


@cache
def _catalog(language: str) -> Catalog:
    path = resources.files(__package__).joinpath("locales", language, "LC_MESSAGES", "handoff.po")
    with path.open("rb") as fh:
        return read_po(fh, locale=language, domain="handoff")


def gettext(message: str, language: str | None) -> str:
    """`message` (an English source text) translated into `language`, or itself if untranslated."""
    lang = normalize_language(language)
    if lang == DEFAULT_LANGUAGE:
        return message
    entry = _catalog(lang).get(message)
    if entry is None or not entry.string or entry.fuzzy:
        return message
    return str(entry.string)


def render(notice: str, language: str | None, style: str = "chat", **params: str) -> str:
    """The customer notice `notice` in `language` and `style`, with `{agent}`-style params filled in.

    Raises KeyError for an unknown notice, a notice the style does not send, or a missing parameter.
    """
    return gettext(NOTICE_STYLES[style][notice], language).format_map(params)


def sends_notice(style: str, notice: str) -> bool:
    """Whether a channel with notice `style` ("chat" or "mail") sends the customer notice `notice`."""
    return notice in NOTICE_STYLES[style]


def label(name: str, language: str | None) -> str:
    """The timeline separator `name` ("live_chat", "ai_resumed") in `language`."""
    return gettext(LABELS[name], language)


def widget_texts(language: str | None) -> dict[str, str]:
    """The texts the chat widget draws on its own, in `language`: `{"waiting": the spinner's
    label (the "waiting" notice), "live_chat", "ai_resumed": the separators}`.

    Sent to the widget with its session so that its script holds no copy of the catalog.
    """
    return {"waiting": render("waiting", language), **{name: label(name, language) for name in LABELS}}


def phrase(name: str, language: str | None) -> str:
    """A bot or summary phrase (see PHRASES) in `language`."""
    return gettext(PHRASES[name], language)


def all_translations(name: str) -> dict[str, str]:
    """The phrase `name` in every supported language, e.g. to recognise the bot's own fallback."""
    return {lang: phrase(name, lang) for lang in LANGUAGES}
