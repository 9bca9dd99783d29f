"""AI compose for the desk's composer: draft a reply from the conversation, polish the agent's
draft, or translate it into the customer's language. Nothing is sent: the agent gets the text
back to review (`POST /api/v1/tickets/{id}/compose`, `handoff.desk.compose_api`).

`Composer` is the protocol; the one implementation is `handoff.bot.openai_compose.OpenAIComposer`
(built by `bot.factory.build_composer` when OPENAI_API_KEY is set; without it there is no composer
and the desk hides the buttons). A model that fails or times out raises `ComposeUnavailable`.

What the model sees (`load_request`): the conversation's visible turns (customer, bot and agent
messages, `bot.history`), the customer's name and language, the agent's name and, for polish and
translate, the agent's text. Internal notes are never given to it: a compose result is meant for
the customer, and a note's content must not leak into it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from handoff.bot.base import Turn
from handoff.bot.history import contact_label, load_turns
from handoff.models import Agent, Conversation

HISTORY_TURNS = 60  # the newest visible messages read; the composer's character budget cuts further


class Mode(StrEnum):
    """What the agent asks for."""

    DRAFT = "draft"  # a reply to the customer's latest messages, from the conversation
    POLISH = "polish"  # the agent's text, clearer and friendlier, in its own language
    TRANSLATE = "translate"  # the agent's text in the customer's language


@dataclass(frozen=True)
class ComposeRequest:
    """One compose call: `text` is the agent's (required for polish and translate), `language`
    the customer's language code (None while not known), `history` oldest first."""

    mode: Mode
    history: Sequence[Turn]
    language: str | None
    text: str | None = None
    contact: str | None = None
    agent: str | None = None


class ComposeUnavailable(Exception):
    """The model failed; `reason` is short and safe to show, `timed_out` when it ran out of time."""

    def __init__(self, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timed_out = timed_out


@runtime_checkable
class Composer(Protocol):
    """Writes text for an agent to review: a draft, a polished draft or a translation."""

    async def compose(self, request: ComposeRequest) -> str:
        """The text for `request`; ComposeUnavailable when the model cannot give one."""


async def load_request(conversation: Conversation, agent: Agent, mode: Mode, text: str | None) -> ComposeRequest:
    """The request for `mode` on `conversation` by `agent`: its visible turns (never notes), the
    customer's label and language."""
    return ComposeRequest(mode=mode, history=await load_turns(conversation.id, HISTORY_TURNS),
                          language=conversation.language, text=text,
                          contact=await contact_label(conversation), agent=agent.name)
