"""Labels on conversations (issue 16, item 1): the label directory, the labels a conversation
carries, and the filter by label of the desk's lists. The REST routes are `desk.labels_api`.

A label is `{"id", "name", "color"}` (`label_json`); names are unique ignoring case (`key`, the
case-folded name) and are matched ignoring case wherever a client names them (a PUT, `?label=`).
A ticket shows its conversation's labels.

Setting a conversation's labels (`set_labels`) replaces them all in one transaction; a change
is a `labels_changed` timeline event (`{"added", "removed", "labels"}`: names) and a live
`conversation.labels` event (`conversation_id`, `labels`, `added`, `removed`, `agent`); a PUT
that changes nothing writes and publishes nothing. Concurrent PUTs on one conversation take
turns: the last one's set is the result.
"""

from __future__ import annotations

from typing import Any

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q, Subquery

from handoff.errors import Conflict, InvalidInput, NotFound
from handoff.events import EventKind, agent_json
from handoff.models import Agent, Conversation, ConversationLabel, Label, Ticket
from handoff.runtime import Runtime
from handoff.timeline import Pending, add_event, publish, transaction


class UnknownLabels(InvalidInput):
    """A PUT named labels that do not exist: 400 `{"error", "unknown": [names]}`, nothing changed."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(f"unknown labels: {', '.join(names)} (create them with POST /api/v1/labels)")
        self.names = names

    def json(self) -> dict[str, Any]:
        """`{"error", "unknown"}`: the names no label has."""
        return {**super().json(), "unknown": self.names}


def key_of(name: str) -> str:
    """The case-insensitive key of a label name (already trimmed by `validation.LabelName`)."""
    return name.casefold()


def label_json(label: Label) -> dict[str, Any]:
    """A label as the API shows it: `{"id", "name", "color"}`."""
    return {"id": label.id, "name": label.name, "color": label.color}


async def all_labels() -> list[dict[str, Any]]:
    """Every label, by name ignoring case."""
    return [label_json(label) for label in await Label.all().order_by("key")]


async def create_label(name: str, color: str) -> dict[str, Any]:
    """A new label; Conflict (409) when one with the same name, ignoring case, exists."""
    try:
        label = await Label.create(name=name, key=key_of(name), color=color)
    except IntegrityError:
        existing = await Label.get_or_none(key=key_of(name))
        raise Conflict(f"a label named {existing.name if existing else name!r} exists") from None
    return label_json(label)


async def labels_of(conversation_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """`{conversation id: [label_json, ...]}` (by name; conversations without labels absent), in
    one query whatever the number of conversations."""
    if not conversation_ids:
        return {}
    links = await (ConversationLabel.filter(conversation_id__in=conversation_ids).select_related("label")
                   .order_by("label__key"))
    found: dict[int, list[dict[str, Any]]] = {}
    for link in links:
        found.setdefault(link.conversation_id, []).append(label_json(link.label))  # type: ignore[attr-defined]
    return found


def filter_by(names: list[str], through: str = "") -> Q:
    """Rows whose conversation carries any of the labels `names` (ignoring case); `through` is
    the path to the conversation id (`"conversation_"` for tickets: `conversation_id`)."""
    linked = ConversationLabel.filter(label__key__in=[key_of(n) for n in names]).values("conversation_id")
    return Q(**{f"{through}id__in" if through else "id__in": Subquery(linked)})


async def set_labels(rt: Runtime, conversation_id: int, agent: Agent, names: list[str]) -> list[dict[str, Any]]:
    """Make `names` the conversation's labels (added by `agent`); the labels it now carries.
    NotFound for no such conversation, UnknownLabels (400) naming labels that do not exist,
    Conflict (409) when another agent changed them at the same moment; nothing changes then."""
    wanted_keys = list(dict.fromkeys(key_of(n) for n in names))
    conversation = await Conversation.get_or_none(id=conversation_id)
    if conversation is None:
        raise NotFound("conversation not found")
    wanted = {label.key: label for label in await Label.filter(key__in=wanted_keys)} if wanted_keys else {}
    unknown = [n for n in dict.fromkeys(names) if key_of(n) not in wanted]
    if unknown:
        raise UnknownLabels(unknown)
    pending = Pending()
    try:
        async with transaction(pending):  # its live events are logged in the same commit
            # PUTs on one conversation take turns (the row lock, on PostgreSQL; SQLite has one writer), so
            # the last one's set is the result, never a mix of two that read the same labels.
            await Conversation.filter(id=conversation_id).select_for_update().only("id").first()
            current = {link.label_id: link.label  # type: ignore[attr-defined]
                       for link in await ConversationLabel.filter(conversation_id=conversation_id).select_related("label")}
            keep = {label.id for label in wanted.values()}
            removed = [label for label_id, label in current.items() if label_id not in keep]
            added = [label for label in wanted.values() if label.id not in current]
            if removed:
                await ConversationLabel.filter(conversation_id=conversation_id,
                                               label_id__in=[label.id for label in removed]).delete()
            if added:
                await ConversationLabel.bulk_create([ConversationLabel(conversation_id=conversation_id, label_id=label.id,
                                                                       agent_id=agent.id) for label in added])
            labels = sorted(wanted.values(), key=lambda label: label.key)
            if added or removed:
                ticket = await Ticket.get_or_none(open_key=conversation_id)
                change = {"added": [label.name for label in added], "removed": [label.name for label in removed]}
                await add_event(pending, conversation, "labels_changed", ticket=ticket, agent=agent,
                                labels=[label.name for label in labels], **change)
                pending.add(EventKind.CONVERSATION_LABELS, conversation_id=conversation_id,
                            labels=[label_json(label) for label in labels], agent=agent_json(agent), **change)
    except IntegrityError:
        raise Conflict("another agent changed this conversation's labels at the same moment: try again") from None
    await publish(rt, pending)
    return [label_json(label) for label in labels]
