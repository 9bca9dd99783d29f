"""Scripted bots for tests: deterministic answers, optional delay, optional escalation."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from handoff.bot.base import BotReply, Summary, Turn


class EchoBot:
    """Answers "echo: <last customer text>"; escalates on "escalate"; can be slowed or gated."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.calls: list[list[Turn]] = []
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()

    async def reply(self, history: Sequence[Turn], language: str) -> BotReply:
        self.calls.append(list(history))
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        last = history[-1].text
        if "escalate" in last:
            return BotReply(escalate=True, reason="scripted escalation")
        return BotReply(text=f"echo: {last}")


class FixedSummarizer:
    """Subject and summary from the first and last customer lines."""

    async def summarize(self, history: Sequence[Turn], language: str, contact: str | None = None) -> Summary:
        customer = [t.text for t in history if t.author == "customer"]
        return Summary(subject=f"[{language}] {customer[0] if customer else ''}"[:80],
                       summary=" / ".join(customer[-3:]))
