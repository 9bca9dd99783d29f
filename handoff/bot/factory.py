"""Which bot, summarizer and composer a server runs: the OpenAI-compatible ones when OPENAI_API_KEY
is set, the offline ones (no composer) otherwise. The OpenAI modules are imported only on that path.
"""

from __future__ import annotations

from typing import Any

from handoff.bot.base import Bot, Summarizer
from handoff.bot.compose import Composer
from handoff.bot.offline import OfflineBot
from handoff.bot.summary import OfflineSummarizer


def build_bot(settings: Any) -> Bot:
    """The configured Bot: OpenAIBot with an API key, else the offline bot."""
    if settings.openai_api_key:
        # Lazy on purpose: the `openai` SDK takes about half a second to import, and a server
        # without OPENAI_API_KEY never needs it.
        from handoff.bot.openai_bot import OpenAIBot

        return OpenAIBot.from_settings(settings)
    return OfflineBot.from_settings(settings)


def build_summarizer(settings: Any) -> Summarizer:
    """The configured Summarizer: OpenAISummarizer with an API key, else the offline summarizer."""
    if settings.openai_api_key:
        # Lazy on purpose, as in build_bot: the `openai` SDK loads only with OPENAI_API_KEY.
        from handoff.bot.openai_summarizer import OpenAISummarizer

        return OpenAISummarizer.from_settings(settings)
    return OfflineSummarizer()


def build_composer(settings: Any) -> Composer | None:
    """The configured Composer (the desk's AI compose): OpenAIComposer with an API key, else None
    (there is no offline composer: the desk hides its buttons)."""
    if settings.openai_api_key:
        # Lazy on purpose, as in build_bot: the `openai` SDK loads only with OPENAI_API_KEY.
        from handoff.bot.openai_compose import OpenAIComposer

        return OpenAIComposer.from_settings(settings)
    return None
