"""The widget's words, in the visitor's language, and the live switch when that language changes.

The widget's script holds no text of its own: every label, status, error, the greeting and the
pre-chat form come from the notice catalogs (`handoff.notices.widget_texts`) in a `texts` frame
`{"type": "texts", "language": "es", "texts": {key: text}, "max_text": 8000}` — first on
connect, in the language of the visitor's latest conversation, or, before one is known, the
browser's (`?lang=` on the socket URL, e.g. `navigator.language`); then again whenever a
customer message changes the conversation's language, so the widget switches without a reload.
`max_text` is the longest message the socket accepts (characters), checked before sending.
"""

from __future__ import annotations

from typing import Any

from handoff.models import Conversation
from handoff.notices import normalize_language, widget_texts
from handoff.validation import WIDGET_MAX_TEXT


def texts_frame(language: str | None) -> dict[str, Any]:
    """The `texts` frame for `language` (any tag: "pt-BR" reads as "pt"; unknown ones as English)."""
    lang = normalize_language(language)
    return {"type": "texts", "language": lang, "texts": widget_texts(lang), "max_text": WIDGET_MAX_TEXT}


class LanguageWatch:
    """The language each connected visitor's widget last got its texts in (this instance only)."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self._sent: dict[str, str] = {}

    async def first_frame(self, visitor: str, browser_language: str | None) -> dict[str, Any]:
        """The texts frame for a new connection: the conversation's language, else the browser's."""
        frame = texts_frame(await self.conversation_language(visitor) or browser_language)
        self._sent[visitor] = frame["language"]
        return frame

    async def changed_frame(self, visitor: str) -> dict[str, Any] | None:
        """A texts frame when the visitor's conversation language differs from what was last sent
        (after a customer message was stored), else None."""
        language = await self.conversation_language(visitor)
        if language is None or normalize_language(language) == self._sent.get(visitor):
            return None
        frame = texts_frame(language)
        self._sent[visitor] = frame["language"]
        return frame

    def forget(self, visitor: str) -> None:
        """Drop a visitor whose last tab here closed."""
        self._sent.pop(visitor, None)

    async def conversation_language(self, visitor: str) -> str | None:
        """The language of the visitor's latest conversation (None: not known yet)."""
        return await Conversation.filter(channel=self.channel, external_key=visitor).order_by("-id").first(
            ).values_list("language", flat=True)
