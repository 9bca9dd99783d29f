"""The Bot and Summarizer protocols the gateway and the desk talk to.

The gateway gives a bot the conversation's recent turns and the customer's language and
gets back a `BotReply`: text to send, or a request to escalate to a human.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

Author = Literal["customer", "bot", "agent"]


@dataclass(frozen=True)
class Turn:
    """One visible message of the conversation, oldest first in a history. `earlier` marks a
    message from before the conversation's last handback to the AI (an earlier takeover cycle):
    a summary is about the current cycle and reads those as context only."""

    author: Author
    text: str
    earlier: bool = False


@dataclass(frozen=True)
class BotReply:
    """The bot's decision for one turn: answer with `text`, or escalate with `reason`."""

    text: str | None = None
    escalate: bool = False
    reason: str = ""


@dataclass(frozen=True)
class Summary:
    """A ticket's subject line and a short summary for the agent, in the customer's language."""

    subject: str
    summary: str


@runtime_checkable
class Bot(Protocol):
    """Answers customers while a conversation is in state `bot`."""

    async def reply(self, history: Sequence[Turn], language: str) -> BotReply:
        """The next bot turn for a conversation whose last turn is the customer's."""


@runtime_checkable
class Summarizer(Protocol):
    """Writes a ticket's subject and summary when a conversation is taken over or escalated."""

    async def summarize(self, history: Sequence[Turn], language: str, contact: str | None = None) -> Summary:
        """A subject and a short summary of the conversation's current cycle (turns not `earlier`),
        in `language`; `contact` names the customer (name, email or channel id) when known."""
