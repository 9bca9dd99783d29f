"""Which live events one agent's desk stream carries (issue 15's contract).

Every public event reaches every agent (lists and ticket pages update from them), except the
three addressed to agents: `ticket.message` reaches the ticket's assignee, or every agent while
the ticket is unassigned; `ticket.assigned` reaches only the agent it was assigned to, and not
when they did it themselves; `mention` reaches only the agent an internal note @mentioned (never
its author). The desk raises its toast, title count and browser notification from these and
from `ticket.created` of an unassigned ticket.
"""

from __future__ import annotations

from typing import Any

from handoff.events import EventKind


def wants(event: dict[str, Any], agent_id: int) -> bool:
    """True when the stream of agent `agent_id` sends `event` (`{"kind", ...}`)."""
    kind = event.get("kind")
    if kind == EventKind.TICKET_MESSAGE:
        return event.get("assignee_id") in (None, agent_id)
    if kind == EventKind.MENTION:
        return event.get("agent_id") == agent_id
    if kind == EventKind.TICKET_ASSIGNED:
        return event.get("agent_id") == agent_id and (event.get("by") or {}).get("id") != agent_id
    return True
