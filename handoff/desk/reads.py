"""Unread counts per ticket per agent (issue 15): how many customer messages arrived on a ticket
since this agent last opened it.

`TicketRead` keeps, per (ticket, agent), the id of the last customer message on the ticket when
the agent opened it; `GET /api/v1/tickets/{id}` and `POST /api/v1/tickets/{id}/read` move it
forward with `mark_read` (never backward, so a slow request cannot undo a later one). A message
the customer unsent does not count.
"""

from __future__ import annotations

from functools import reduce
from operator import or_

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q
from tortoise.functions import Count

from handoff.models import Message, Ticket, TicketRead
from handoff.states import TicketStatus

LIVE = (TicketStatus.OPEN, TicketStatus.ON_YOU, TicketStatus.ON_CUSTOMER)


def _customer_messages() -> Q:
    return Q(direction="incoming", deleted_at=None)


async def unread_counts(agent_id: int, ticket_ids: list[int]) -> dict[int, int]:
    """`{ticket id: unread customer messages}` for this agent (tickets with none are absent);
    two queries whatever the number of tickets."""
    if not ticket_ids:
        return {}
    read = dict(await TicketRead.filter(agent_id=agent_id, ticket_id__in=ticket_ids)
                .values_list("ticket_id", "last_read_message_id"))
    never = [t for t in ticket_ids if t not in read]
    since = [Q(ticket_id=t, id__gt=last) for t, last in read.items()]
    where = reduce(or_, since + ([Q(ticket_id__in=never)] if never else []))
    rows = await (Message.filter(where).filter(_customer_messages()).annotate(n=Count("id"))
                  .group_by("ticket_id").values_list("ticket_id", "n"))
    return {ticket_id: n for ticket_id, n in rows if n}


async def mark_read(agent_id: int, ticket_id: int) -> None:
    """Everything the customer wrote on the ticket so far is read by this agent."""
    newest = await Message.filter(_customer_messages(), ticket_id=ticket_id).order_by("-id").first().only("id")
    if newest is None:
        return
    last = newest.id
    if await TicketRead.filter(agent_id=agent_id, ticket_id=ticket_id).exists():
        await TicketRead.filter(agent_id=agent_id, ticket_id=ticket_id, last_read_message_id__lt=last
                                ).update(last_read_message_id=last)
        return
    try:
        await TicketRead.create(agent_id=agent_id, ticket_id=ticket_id, last_read_message_id=last)
    except IntegrityError:  # a concurrent open of the same ticket by the same agent created it first
        await TicketRead.filter(agent_id=agent_id, ticket_id=ticket_id, last_read_message_id__lt=last
                                ).update(last_read_message_id=last)


async def unread_totals(agent_id: int) -> dict[str, int]:
    """The nav's counts: unread customer messages on this agent's live tickets (`mine`) and on
    live unassigned tickets (`unassigned`)."""
    mine = await Ticket.filter(assignee_id=agent_id, status__in=LIVE).values_list("id", flat=True)
    queue = await Ticket.filter(assignee_id=None, status__in=LIVE).values_list("id", flat=True)
    counts = await unread_counts(agent_id, [*mine, *queue])
    return {"mine": sum(counts.get(t, 0) for t in mine), "unassigned": sum(counts.get(t, 0) for t in queue)}
