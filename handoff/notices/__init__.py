"""Customer notices, timeline labels and the offline bot's phrases, in the customer's language.

The texts live in gettext catalogs, `locales/<lang>/LC_MESSAGES/handoff.po`, keyed by their
English source text (the gettext convention). They are read with Babel's `read_po` on first use
and cached; there is no compile step. A language we have no catalog for falls back to English,
and a region tag ("pt-BR", "zh-Hans", "en_GB") uses its base language.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from importlib import resources

from babel import Locale
from babel.dates import format_skeleton, get_timezone_name
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
    # After "waiting", when the team is out (business hours; `when`: `opening_time`) or, in
    # business hours, when no agent is online; the bot keeps answering meanwhile
    # (`Conversation.bot_while_waiting`).
    "away": "Our team is away right now. They will answer you here when they are back: {when}."
            " Meanwhile, our AI assistant can keep helping you here.",
    "unavailable": "No one from our team is available right now. They will answer you here as soon as they are back."
                   " Meanwhile, our AI assistant can keep helping you here.",
}

# Notices for mail-like channels, where chat notices would each be a separate email: only these
# are sent there, in this wording. The reply itself names the agent, so no "agent joined" email.
MAIL_NOTICES: dict[str, str] = {
    "waiting": "Thanks for your message. A member of our support team will reply to this email.",
    "away": "Thanks for your message. Our team is away right now and will reply to this email when they are back: {when}."
            " Meanwhile, our AI assistant can keep answering your emails.",
}

NOTICE_STYLES: dict[str, dict[str, str]] = {"chat": NOTICES, "mail": MAIL_NOTICES}

# Timeline separators -> English source text.
LABELS: dict[str, str] = {
    "live_chat": "Live Chat",
    "ai_resumed": "AI Resumed",
}

# The chat widget's own words (labels, statuses, errors, the pre-chat form, the greeting) -> English
# source text; `{name}`, `{count}` and `{limit}` are filled in by the widget's script.
WIDGET_TEXTS: dict[str, str] = {
    "title": "Chat with us",
    "launcher": "Chat",
    "open": "Open chat",
    "close": "Close chat",
    "menu": "More options",
    "sound_on": "Turn sound on",
    "sound_off": "Turn sound off",
    "bot": "AI assistant",
    "support": "Support",
    "typing": "{name} is typing…",
    "placeholder": "Type a message…",
    "message": "Message",
    "send": "Send",
    "attach": "Attach a file",
    "connecting": "connecting…",
    "online": "online",
    "reconnecting": "reconnecting…",
    "unread": "New messages: {count}",
    "too_long": "Your message is {count} characters long; the limit is {limit}. Please shorten it.",
    "file_too_large": "That file is larger than 10 MB.",
    "upload_failed": "The file could not be uploaded.",
    "not_sent": "This message could not be sent.",
    "greeting": "Hi! How can we help you today?",
    "prechat_intro": "Before we start, please tell us who you are.",
    "name": "Name",
    "email": "Email",
    "optional": "(optional)",
    "start": "Start chat",
    "required": "Please fill in this field.",
    "bad_email": "Please enter a valid email address.",
}

# Phrases of the offline bot and the offline summarizer -> English source text.
PHRASES: dict[str, str] = {
    "fallback": "I'm not sure I understood. Could you rephrase your question?",
    "summary_lead": "Customer asks about:",
    "no_subject": "New conversation",
    "summary_lead_named": "{contact} asks about:",
    "summary_details": "Also said:",
    "summary_bot": "The AI assistant answered:",
    "summary_no_answer": "The AI assistant had no answer.",
    "summary_person": "Asked to talk to a person.",
    "summary_earlier": "Earlier in this conversation:",
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
    """Every text the chat widget draws on its own, in `language`: `{"waiting": the spinner's
    label (the "waiting" notice), "live_chat", "ai_resumed": the separators, and each key of
    WIDGET_TEXTS}` (placeholders such as `{count}` left for the widget to fill in).

    Sent to the widget over its socket so that its script holds no copy of the catalog.
    """
    texts = {name: gettext(text, language) for name, text in WIDGET_TEXTS.items()}
    return {"waiting": render("waiting", language), **{name: label(name, language) for name in LABELS}, **texts}


def phrase(name: str, language: str | None) -> str:
    """A bot or summary phrase (see PHRASES) in `language`."""
    return gettext(PHRASES[name], language)


def all_translations(name: str) -> dict[str, str]:
    """The phrase `name` in every supported language, e.g. to recognise the bot's own fallback."""
    return {lang: phrase(name, lang) for lang in LANGUAGES}


def opening_time(at: datetime, language: str | None) -> str:
    """A moment (timezone-aware, in the business hours' zone) as a customer reads it in
    `language`: weekday, day, month and time in that language's own order and words, then the
    zone's name (`"Mon, December 7 09:00 (Central European Standard Time)"`,
    `"lun, 7 de diciembre 9:00 (hora estándar de Europa central)"`), with Babel's CLDR data."""
    locale = Locale.parse(normalize_language(language))
    day = format_skeleton("MMMMEEEEd", at, locale=locale)
    clock = format_skeleton("Hm", at, locale=locale)
    return f"{day} {clock} ({get_timezone_name(at, 'long', locale=locale)})"
