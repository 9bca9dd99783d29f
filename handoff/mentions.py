"""@mentions in internal notes, and the desk notifications they leave (issue 16, item 2).

An internal note's text is read for mentions when it is written (`find`, pure); each names one
active agent, matched without regard to case:

- `@"Ana María"`: the agent with exactly that name (any name, spaces and punctuation included);
- `@ana@example.com`: the agent with that email;
- `@Ana María`: the longest agent name the text continues with, ending at a word boundary
  (`@Ana Maríab` names nobody); failing any full name, `@Ana` names the one agent whose first
  word of name is "Ana".

A mention that names no agent, or several (two agents called "Ana López"), stays plain text:
nothing is refused, nobody is notified. The note keeps the agents it names as `mentions`
(`[{"id", "name"}]`, in order of first mention); each of them but its author gets a
`Notification` in the note's transaction and, after commit, a `mention` event on their own
live stream (`desk.live`). Mentioning yourself notifies nobody.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from handoff.events import EventKind, agent_json, iso
from handoff.models import Agent, Contact, Conversation, Message, Notification, Ticket

if TYPE_CHECKING:
    from handoff.timeline import Pending

MAX_QUOTED = 200  # an agent's name is at most 200 characters (models.Agent)
TEXT_SHOWN = 200  # characters of the note a notification carries
EMAIL = re.compile(r"[^\s@\"'<>(),;:\[\]]+@[^\s@\"'<>(),;:\[\]]+\.[^\s@\"'<>(),;:\[\]]*[^\s@\"'<>(),;:\[\].!?]")


class Named(Protocol):
    """What `find` reads of an agent."""

    id: int
    name: str
    email: str


A = TypeVar("A", bound=Named)


def _fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def _word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def find(text: str, agents: Sequence[A]) -> list[A]:
    """The agents `text` @mentions (rules in the module docstring), each once, in order of first
    mention; [] when it mentions none. Pure: `agents` are the candidates (the active agents)."""
    if "@" not in text or not agents:
        return []
    by_name: dict[str, list[A]] = {}
    by_first: dict[str, list[A]] = {}
    for agent in agents:
        folded = _fold(agent.name)
        if folded:
            by_name.setdefault(folded, []).append(agent)
            by_first.setdefault(folded.split(" ")[0], []).append(agent)
    by_email = {agent.email.casefold(): agent for agent in agents}
    # One alternation, longest name first: "@Ana María" is Ana María even when an agent is "Ana".
    full = re.compile("(?:" + "|".join(r"\s+".join(map(re.escape, name.split(" ")))
                                        for name in sorted(by_name, key=len, reverse=True)) + r")(?!\w)",
                      re.IGNORECASE) if by_name else None
    found: dict[int, A] = {}
    for at in (m.start() for m in re.finditer("@", text)):
        if at > 0 and (_word_char(text[at - 1]) or text[at - 1] in ".-+@"):
            continue  # inside a word or an email address, not a mention
        agent = _at(text[at + 1:at + 2 + MAX_QUOTED * 2], full, by_name, by_first, by_email)
        if agent is not None:
            found.setdefault(agent.id, agent)
    return list(found.values())


def _one(matches: list[A] | None) -> A | None:
    return matches[0] if matches and len(matches) == 1 else None


def _at(rest: str, full: re.Pattern[str] | None, by_name: dict[str, list[A]], by_first: dict[str, list[A]],
        by_email: dict[str, A]) -> A | None:
    """The one agent named by the mention `rest` starts with (the text just after its `@`), or None."""
    if rest.startswith('"'):
        end = rest.find('"', 1)
        return _one(by_name.get(_fold(rest[1:end]))) if end > 1 else None
    email = EMAIL.match(rest)
    if email:
        return by_email.get(email.group().casefold())
    name = full.match(rest) if full else None
    if name:
        return _one(by_name.get(_fold(name.group())))
    first = re.match(r"\w+", rest)
    return _one(by_first.get(first.group().casefold())) if first else None


async def resolve(text: str) -> list[Agent]:
    """The active agents `text` mentions (`find` over the agents table); no query without an `@`."""
    if "@" not in text:
        return []
    return find(text, await Agent.filter(is_active=True).order_by("id"))


def mention_list(agents: Sequence[Agent]) -> list[dict[str, Any]] | None:
    """A note's stored `mentions`: `[{"id", "name"}]`, or None when it mentions nobody."""
    return [{"id": agent.id, "name": agent.name} for agent in agents] or None


async def notify(pending: Pending, conversation: Conversation, ticket: Ticket | None, message: Message,
                 author: Agent | None, mentioned: Sequence[Agent]) -> list[Notification]:
    """A `Notification` per mentioned agent other than `author`, in the caller's transaction, and
    their `mention` events (`agent_id`, `notification`) on `pending`, published after commit."""
    others = [agent for agent in mentioned if author is None or agent.id != author.id]
    if not others:
        return []
    contact = await Contact.get(id=conversation.contact_id)  # type: ignore[attr-defined]
    label = contact.name or contact.email or conversation.contact_external_id
    created = []
    for agent in others:
        row = await Notification.create(agent=agent, kind="mention", conversation=conversation, ticket=ticket,
                                        message=message, actor=author)
        pending.add(EventKind.MENTION, agent_id=agent.id,
                    notification=notification_json(row, actor=author, text=message.text, contact_name=label))
        created.append(row)
    return created


def notification_json(row: Notification, *, actor: Agent | None, text: str, contact_name: str | None
                      ) -> dict[str, Any]:
    """A notification as the desk sees it: `{"id", "kind": "mention", "conversation_id",
    "ticket_id", "message_id", "actor" (agent_json of who mentioned you, or None), "text" (the
    note's first 200 characters), "contact_name", "read_at", "created_at"}` (ISO 8601 UTC)."""
    return {
        "id": row.id,
        "kind": row.kind,
        "conversation_id": row.conversation_id,  # type: ignore[attr-defined]
        "ticket_id": row.ticket_id,  # type: ignore[attr-defined]
        "message_id": row.message_id,  # type: ignore[attr-defined]
        "actor": agent_json(actor),
        "text": text[:TEXT_SHOWN],
        "contact_name": contact_name,
        "read_at": iso(row.read_at),
        "created_at": iso(row.created_at),
    }
