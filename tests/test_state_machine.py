"""The state machine has one owner: only `handoff/transitions.py` writes `Conversation.state` or
`Ticket.status` (read from the source with `ast`, like tests/test_architecture.py), and the
states are the `handoff.states` enums, never string literals."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from handoff import transitions
from handoff.models import CONVERSATION_STATES, TICKET_STATUSES, Conversation, Ticket
from handoff.states import ConversationState, TicketStatus
from tests.conftest import settle

PACKAGE = Path(__file__).resolve().parent.parent / "handoff"
OWNER = "transitions.py"
FIELDS = {"Conversation": "state", "Ticket": "status"}
WRITES = {"update", "create", "get_or_create", "update_or_create", "update_from_dict", "bulk_update"}
PENDING: tuple[str, ...] = ()  # modules not yet converted: none
ENUMS = {"ConversationState": "state", "TicketStatus": "status"}


def _root(node: ast.expr) -> str | None:
    """The name a call chain starts from: `Ticket` in `Ticket.filter(...).update(...)`."""
    while True:
        if isinstance(node, ast.Call):
            node = node.func
        elif isinstance(node, ast.Attribute):
            node = node.value
        elif isinstance(node, ast.Name):
            return node.id
        else:
            return None


def _is_enum_member(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ENUMS


def state_writes(source: str) -> list[int]:
    """Lines of `source` that write a conversation's state or a ticket's status.

    Counted: `Conversation...update/create(state=...)` and `Ticket...(status=...)`; an assignment
    to `<conversation>.state` or `<ticket>.status`; a dict entry `"state"`/`"status"` whose value
    is a `ConversationState`/`TicketStatus` member (what `update(**changes)` writes).
    """
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in WRITES:
            field = FIELDS.get(_root(node.func) or "")
            if field and any(k.arg == field for k in node.keywords):
                lines.append(node.lineno)
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name):
                    owner = target.value.id.lower()
                    if (target.attr == "state" and "conversation" in owner) or (
                            target.attr == "status" and "ticket" in owner):
                        lines.append(node.lineno)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values):
                if (isinstance(key, ast.Constant) and key.value in ("state", "status") and value is not None
                        and _is_enum_member(value)):
                    lines.append(node.lineno)
    return lines


def test_only_transitions_writes_states() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel == OWNER or rel.startswith("migrations/"):
            continue
        offenders += [f"{rel}:{line}" for line in state_writes(path.read_text())]
    assert offenders == []


def test_transitions_writes_every_state() -> None:
    """The owner itself is seen writing: the detector reads what transitions.py does."""
    assert len(state_writes((PACKAGE / OWNER).read_text())) >= 8


@pytest.mark.parametrize("source", [
    "await Conversation.filter(id=1, state=ConversationState.BOT).update(state=ConversationState.ENDED)",
    "await Ticket.filter(id=t.id).update(status='on_you')",
    "await Conversation.create(contact=c, state='bot')",
    "conversation.state = 'human'",
    "ticket.status = TicketStatus.CLOSED",
    "changes = {'status': TicketStatus.ON_CUSTOMER}",
    "conversation.update_from_dict({'state': ConversationState.HUMAN})",
])
def test_detector_catches_each_way_of_writing(source: str) -> None:
    assert state_writes(source) == [1]


@pytest.mark.parametrize("source", [
    "await Conversation.filter(state=ConversationState.BOT).limit(5)",
    "await Outbox.filter(id=1).update(status='sent')",
    "await PendingReceipt.create(state='delivered')",
    "pending.add(EventKind.CONVERSATION_UPDATED, conversation_id=1, state=conversation.state)",
    "row.status = 'sent'",
])
def test_detector_leaves_reads_and_other_models(source: str) -> None:
    assert state_writes(source) == []


def test_state_literals_are_gone() -> None:
    """No module compares or filters with a state's text; they use the enums."""
    values = {str(v) for v in (*ConversationState, *TicketStatus)}
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE).as_posix()
        if rel.startswith(("migrations/", *PENDING)):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                operands = [node.left, *node.comparators]
                attrs = [o for o in operands if isinstance(o, ast.Attribute) and o.attr in ("state", "status")]
                consts = [o for o in operands if isinstance(o, ast.Constant) and o.value in values]
                if attrs and consts:
                    offenders.append(f"{rel}:{node.lineno}")
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and _root(node.func) in FIELDS:
                for k in node.keywords:
                    if k.arg in ("state", "status") and isinstance(k.value, ast.Constant):
                        offenders.append(f"{rel}:{node.lineno}")
    assert offenders == []


def test_enums_are_the_stored_values() -> None:
    assert CONVERSATION_STATES == ("bot", "human", "ended")
    assert TICKET_STATUSES == ("open", "on_you", "on_customer", "closed")
    assert Conversation._meta.fields_map["state"].default == ConversationState.BOT
    assert Ticket._meta.fields_map["status"].default == TicketStatus.OPEN


async def test_end_inactive_is_a_compare_and_set_on_state_and_version(client, rt, say) -> None:
    await say("hello")
    await settle(rt)
    conversation = await Conversation.get(channel="api")
    stale = await Conversation.get(id=conversation.id)
    await Conversation.filter(id=conversation.id).update(version=conversation.version + 1)  # the customer wrote
    assert await transitions.end_inactive(rt, stale) is False
    assert (await Conversation.get(id=conversation.id)).state == ConversationState.BOT
    fresh = await Conversation.get(id=conversation.id)
    assert await transitions.end_inactive(rt, fresh) is True
    ended = await Conversation.get(id=conversation.id)
    assert (ended.state, ended.open_key, ended.version) == (ConversationState.ENDED, None, fresh.version)
    assert fresh.state == ConversationState.ENDED  # the row in hand shows what was written
    assert await transitions.end_inactive(rt, ended) is False  # ended is final


async def test_the_ticket_turn_flips_only_from_the_expected_status(client, rt, say, make_agent) -> None:
    agent, _ = await make_agent("Ana")
    await say("hello")
    await settle(rt)
    conversation = await Conversation.get(channel="api")
    ticket = await transitions.escalate(rt, conversation.id, "asked for a person")
    assert ticket is not None and ticket.status == TicketStatus.OPEN
    await transitions.customer_wrote(ticket)  # only "on_customer" becomes "on_you"
    assert (await Ticket.get(id=ticket.id)).status == TicketStatus.OPEN
    await transitions.reply(rt, ticket.id, agent, "Hi")
    assert (await Ticket.get(id=ticket.id)).status == TicketStatus.ON_CUSTOMER
    await say("thanks", message_id="m2")
    await settle(rt)
    assert (await Ticket.get(id=ticket.id)).status == TicketStatus.ON_YOU
    await transitions.close(rt, ticket.id, agent)
    closed = await Ticket.get(id=ticket.id)
    await transitions.answered(closed)  # a closed ticket stays closed
    assert (await Ticket.get(id=ticket.id)).status == TicketStatus.CLOSED == closed.status
