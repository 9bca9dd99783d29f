"""The desk lists' filters by label and by who answered last (issue 16, items 1 and 4).

- `label=refund,vip`: rows whose conversation carries any of these labels (names, ignoring
  case; comma-separated, and a repeated `label` adds more). A name no label has matches nothing.
- `responded_by=bot|me|<agent id>` (conversations): who answered the customer last, the AI or
  that agent (`Conversation.responded_by`; an answer from the provider's own app names no agent).
- `agent_type=bot|human` (conversations): whether the AI or a person answered last.

Filters combine with each other and with `state`, `status` and `q` (all must hold). A malformed
value is InvalidInput (400).
"""

from __future__ import annotations

from aiohttp import web
from tortoise.expressions import Q

from handoff.desk.labels import filter_by
from handoff.errors import InvalidInput
from handoff.validation import MAX_LABEL_NAME, id_from_text

AGENT_TYPES = {"bot": "bot", "human": "agent"}  # agent_type value -> Conversation.responded_by


def _label_names(request: web.Request) -> list[str]:
    names = [" ".join(n.split()) for raw in request.query.getall("label", []) for n in raw.split(",")]
    names = [n for n in names if n]
    if any(len(n) > MAX_LABEL_NAME or not n.isprintable() for n in names):
        raise InvalidInput(f"label must be label names of at most {MAX_LABEL_NAME} characters, comma-separated")
    return names


def conversations(request: web.Request, agent_id: int) -> Q:
    """The conversation list's `label`, `responded_by` and `agent_type` filters as one condition
    (`agent_id` is the caller, for `responded_by=me`)."""
    where = Q()
    names = _label_names(request)
    if names:
        where &= filter_by(names)
    responded = request.query.get("responded_by")
    if responded == "bot":
        where &= Q(responded_by="bot")
    elif responded:
        responder = agent_id if responded == "me" else id_from_text(responded)
        if responder is None:
            raise InvalidInput("responded_by must be bot, me or an agent id")
        where &= Q(responded_by_agent_id=responder)
    kind = request.query.get("agent_type")
    if kind:
        if kind not in AGENT_TYPES:
            raise InvalidInput("agent_type must be bot or human")
        where &= Q(responded_by=AGENT_TYPES[kind])
    return where


def tickets(request: web.Request) -> Q:
    """The ticket list's `label` filter (the ticket's conversation's labels) as one condition."""
    names = _label_names(request)
    return filter_by(names, through="conversation_") if names else Q()
