"""Who may do what to a ticket from the desk (issue 15), one table for the REST API and the
desk's UI (README "Desk REST API", the OpenAPI document):

| action | the assignee | anyone, on an unassigned ticket | another agent, on someone else's ticket |
|---|---|---|---|
| reply | yes | yes (it assigns the ticket to them) | no: 403 (transfer it first) |
| internal note | yes | yes | yes |
| assign to me (claim) | — | yes | no: 409 naming the assignee |
| transfer, allow AI replies (handback), close | yes | yes | only with `"confirm": true`: else 409 `confirm_required` |
| AI compose (draft, polish, translate: sends nothing) | yes | yes | yes |

Handing back and closing end the agent's live chat, and a transfer takes it from them: the desk
asks "Ana is answering this customer. Hand back anyway?" and then sends the confirmation. The
reply rule is enforced in `handoff.transitions.reply`; this module checks the confirmation.
A closed ticket refuses them all (409).
"""

from __future__ import annotations

from typing import Any

from handoff.errors import Conflict
from handoff.models import Agent, Ticket

CONFIRMED_ACTIONS = {"transfer": "transfer", "allow-ai": "hand back to the AI", "close": "close"}


class ConfirmRequired(Conflict):
    """A 409: the ticket is someone else's; repeat with `"confirm": true` to act anyway."""

    def json(self) -> dict[str, Any]:
        """`{"error", "ticket_id", "assignee", "confirm_required": true}`."""
        return {**super().json(), "confirm_required": True}


async def check_confirmed(ticket: Ticket, agent: Agent, action: str, confirm: bool) -> None:
    """Raise ConfirmRequired when `agent` acts on a ticket assigned to another agent without
    confirming; an unassigned or own ticket, or a closed one (the transition refuses it), passes."""
    assignee_id = ticket.assignee_id  # type: ignore[attr-defined]
    if confirm or assignee_id is None or assignee_id == agent.id or ticket.open_key is None:
        return
    assignee = await Agent.get_or_none(id=assignee_id)
    name = assignee.name if assignee else "another agent"
    raise ConfirmRequired(f"the ticket is assigned to {name}: send \"confirm\": true to "
                          f"{CONFIRMED_ACTIONS[action]} it anyway", ticket=ticket, assignee=assignee)


def permissions(ticket: dict[str, Any], agent: Agent, *, composer: bool = False) -> dict[str, Any]:
    """What `agent` may do with a ticket (a `ticket_json`): `{"reply", "note", "claim",
    "transfer", "allow_ai", "close", "confirm", "compose"}`, booleans; `confirm` says that
    transfer, allow-AI and close need a confirmation (someone else's ticket); `compose` (AI
    compose, as notes: anyone on an open ticket) needs a configured model (`composer`). The desk
    shows and hides its buttons by it."""
    live = ticket["status"] != "closed"
    assignee = ticket["assignee"]
    mine = assignee is not None and assignee["id"] == agent.id
    free = assignee is None
    return {"reply": live and (mine or free), "note": live, "claim": live and free,
            "transfer": live, "allow_ai": live, "close": live, "confirm": live and not (mine or free),
            "compose": live and composer}
