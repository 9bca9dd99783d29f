"""Which bot and summarizer a server runs: the OpenAI-compatible ones when OPENAI_API_KEY is set,
the offline ones otherwise. The modules of the path not taken are never imported.
"""

from __future__ import annotations

from typing import Any

from handoff.bot.base import Bot, Summarizer


def build_bot(settings: Any) -> Bot:
    """The configured Bot: OpenAIBot with an API key, else the offline bot."""
    if settings.openai_api_key:
        from handoff.bot.openai_bot import OpenAIBot

        return OpenAIBot.from_settings(settings)
    from handoff.bot.offline import OfflineBot

    return _offline(OfflineBot, settings)


def build_summarizer(settings: Any) -> Summarizer:
    """The configured Summarizer: OpenAISummarizer with an API key, else the offline summarizer."""
    if settings.openai_api_key:
        from handoff.bot.openai_summarizer import OpenAISummarizer

        return OpenAISummarizer.from_settings(settings)
    from handoff.bot.summary import OfflineSummarizer

    return _offline(OfflineSummarizer, settings)


def _offline(cls: Any, settings: Any) -> Any:
    from_settings = getattr(cls, "from_settings", None)
    return from_settings(settings) if from_settings is not None else cls()
