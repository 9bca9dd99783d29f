"""The slice of a conversation a model sees: the newest turns within a character budget.

A conversation can run for weeks; the model gets only its recent turns, newest kept, and a
single oversized message (a pasted log, an email with a long quote) is cut for the model
while the stored message stays whole. Characters stand in for tokens: cheap, provider
neutral, and conservative enough for any OpenAI-compatible server.

`load_turns` reads a conversation's visible turns from the database (customer, bot and agent
messages; notices, notes and separators are not turns) for the bot; `load_cycle_turns` reads
them for a summary, marking those before the last handback ("AI Resumed") as `earlier`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from tortoise.queryset import QuerySet

from handoff import sql
from handoff.bot.base import Turn
from handoff.models import Conversation, Message

DEFAULT_HISTORY_CHARS = 12_000
DEFAULT_MESSAGE_CHARS = 4_000
TRUNCATION_MARK = " […truncated]"

_ROLES = {"customer": "user", "bot": "assistant", "agent": "assistant"}
_LABELS = {"customer": "Customer", "bot": "Assistant", "agent": "Agent"}


def truncate(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, marked when something was cut."""
    if len(text) <= limit:
        return text
    if limit <= len(TRUNCATION_MARK):
        return text[: max(limit, 0)]
    return text[: limit - len(TRUNCATION_MARK)] + TRUNCATION_MARK


def spoken(history: Sequence[Turn]) -> list[Turn]:
    """The turns that say something: a message the customer unsent has its text erased, and
    is left out of what the bot and the summary see."""
    return [turn for turn in history if (turn.text or "").strip()]


async def load_turns(conversation_id: int, limit: int) -> list[Turn]:
    """The last `limit` visible customer/bot/agent messages of a conversation, oldest first (a message
    the customer unsent is not visible)."""
    rows = await _visible_turns(conversation_id, limit)
    return [Turn(author=m.author_kind, text=m.text) for m in reversed(rows)]  # type: ignore[arg-type]


async def load_turns_and_conversation(conversation_id: int, limit: int, conversation: Conversation | None = None
                                      ) -> tuple[Conversation | None, list[Turn]]:
    """`load_turns` and the conversation as it is now (or as `conversation`, read just before by
    the caller: the bot turn's claim returns it); the conversation is None when it has no
    visible message yet (or does not exist).

    The conversation is read first: a customer message committed between the two reads is in
    the turns but not in the conversation's `customer_messages`, so a reply written from them is
    superseded (and the turn runs again), never taken for an answer to words it did not see.
    Two plain reads, not one join: tortoise builds a `select_related` query at several times the
    cost of both (measured under load, benchmarks/hot_path.py).
    """
    if conversation is None:
        conversation = await Conversation.get_or_none(id=conversation_id)
    if conversation is None:
        return None, []
    rows = await sql.fetch(_VISIBLE_TURNS, conversation_id, False, limit)
    if not rows:
        return None, []
    return conversation, [Turn(author=row["author_kind"], text=row["text"]) for row in reversed(rows)]


# `_visible_turns`' author and text, pre-built: every bot turn reads it (see handoff/sql.py).
_VISIBLE_TURNS = sql.Statement("""
    SELECT author_kind, text FROM message
    WHERE conversation_id = ? AND private = ? AND author_kind IN ('customer', 'bot', 'agent') AND deleted_at IS NULL
    ORDER BY id DESC LIMIT ?""")


async def load_cycle_turns(conversation_id: int, limit: int, context: int) -> list[Turn]:
    """The last `limit` visible turns since the conversation's last handback to the AI, after up
    to `context` turns from before it (marked `earlier`), oldest first."""
    handback = await Message.filter(conversation_id=conversation_id, direction="activity", notice="ai_resumed"
                                    ).order_by("-id").first().values_list("id", flat=True)
    current = await _visible_turns(conversation_id, limit).filter(id__gt=handback or 0)
    before = await _visible_turns(conversation_id, context).filter(id__lt=handback) if handback and context else []
    return ([Turn(author=m.author_kind, text=m.text, earlier=True) for m in reversed(before)]  # type: ignore[arg-type]
            + [Turn(author=m.author_kind, text=m.text) for m in reversed(current)])  # type: ignore[arg-type]


async def contact_label(conversation: Conversation) -> str | None:
    """Who the customer is, for a summary: the Contact's name, else its email, else the channel's
    id for them (a phone number, a username); None for an anonymous widget visitor."""
    contact = await conversation.contact
    if contact.name or contact.email:
        return contact.name or contact.email
    # A widget visitor's id is a random token that tells an agent nothing.
    return None if conversation.channel == "widget" else conversation.contact_external_id or None


def _visible_turns(conversation_id: int, limit: int) -> QuerySet[Message]:
    return Message.filter(
        conversation_id=conversation_id, private=False, author_kind__in=("customer", "bot", "agent"), deleted_at=None
    ).order_by("-id").limit(limit)


def recent_turns(
    history: Sequence[Turn],
    *,
    max_chars: int = DEFAULT_HISTORY_CHARS,
    max_message_chars: int = DEFAULT_MESSAGE_CHARS,
) -> list[Turn]:
    """The newest turns whose (truncated) texts fit in `max_chars`, oldest first.

    The newest turn is always kept, cut to fit the budget if need be, so the model always
    sees what it is answering.
    """
    per_message = max(1, min(max_message_chars, max_chars))
    kept: list[Turn] = []
    used = 0
    for turn in reversed(spoken(history)):
        text = truncate(turn.text or "", per_message)
        if kept and used + len(text) > max_chars:
            break
        kept.append(dataclasses.replace(turn, text=text))
        used += len(text)
    kept.reverse()
    return kept


def to_chat_messages(turns: Sequence[Turn]) -> list[dict[str, str]]:
    """Chat-completions messages for `turns`: the customer is `user`, bot and agents `assistant`.

    A human agent's words are prefixed so the model does not take them for its own.
    """
    messages: list[dict[str, str]] = []
    for turn in turns:
        text = f"[human agent] {turn.text}" if turn.author == "agent" else turn.text
        messages.append({"role": _ROLES.get(turn.author, "user"), "content": text})
    return messages


def transcript(turns: Sequence[Turn]) -> str:
    """A plain-text transcript, one `Author: text` line per turn that says something, for summaries."""
    return "\n".join(f"{_LABELS.get(t.author, t.author)}: {t.text}" for t in spoken(turns))
