"""Agent presence (Chatwoot's availability): `online` while a desk stream of theirs is open on any
instance and they have not said otherwise, `away` when they said so (`PUT
/api/v1/agents/me/presence`) with a stream open, else `offline`.

Open streams are rows of `AgentConnection`, each live until an expiry on the database's clock
(`db.clock`) that the stream renews every third of `CONNECTION_TTL`; a stream that closes deletes
its row. An instance that dies leaves rows that expire, and any instance's sweep (`sweep`)
deletes them, each exactly once, and announces the agents that went offline. So presence holds
across instances without trusting any instance's memory or clock.

A change of an agent's presence is the live event `agent.presence` (`agent_id`, `presence`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from tortoise.exceptions import IntegrityError

from handoff import db
from handoff.events import EventKind, agent_json
from handoff.models import Agent, AgentConnection, AgentPresence, utcnow

if TYPE_CHECKING:
    from handoff.hub import Hub

CONNECTION_TTL = 30.0  # seconds a stream's row lives without a heartbeat
INSTANCE = uuid.uuid4().hex  # this process, on its connection rows (for people reading the table)


class Presence(StrEnum):
    """What the desk shows next to an agent's name."""

    ONLINE = "online"
    AWAY = "away"
    OFFLINE = "offline"


CHOICES = (Presence.ONLINE, Presence.AWAY)  # what an agent may say (`PUT .../presence`)


async def presence_of(agent_ids: Iterable[int]) -> dict[int, Presence]:
    """Each agent's presence now: `{agent_id: Presence}` (two queries, whatever the count)."""
    ids = set(agent_ids)
    if not ids:
        return {}
    live = set(await AgentConnection.filter(agent_id__in=ids, expires_at__gt=db.clock())
               .values_list("agent_id", flat=True))
    away = set(await AgentPresence.filter(agent_id__in=ids, status=Presence.AWAY).values_list("agent_id", flat=True))
    return {i: Presence.OFFLINE if i not in live else Presence.AWAY if i in away else Presence.ONLINE for i in ids}


def agent_with_presence(agent: Agent, presence: Presence) -> dict[str, Any]:
    """An agent as `GET /api/v1/agents` lists it: `agent_json` plus `presence`."""
    return {**(agent_json(agent) or {}), "presence": str(presence)}


async def online_agents() -> list[tuple[int, datetime | None]]:
    """Active agents who are online (a live stream, not away), as `(agent_id, last_assigned_at)`,
    the one routing gave a ticket longest ago first (never: first of all), then by id."""
    live = set(await AgentConnection.filter(expires_at__gt=db.clock(), agent__is_active=True)
               .values_list("agent_id", flat=True))
    if not live:
        return []
    rows = await AgentPresence.filter(agent_id__in=live, status=Presence.ONLINE).values_list("agent_id", "last_assigned_at")
    return sorted(rows, key=lambda row: (row[1] is not None, row[1] or 0, row[0]))


async def anyone_online() -> bool:
    """Whether at least one active agent is online."""
    return bool(await online_agents())


async def _ensure_row(agent_id: int) -> None:
    if await AgentPresence.exists(agent_id=agent_id):
        return
    try:
        await AgentPresence.create(agent_id=agent_id)
    except IntegrityError:  # another instance created it at the same moment
        pass


async def mark_assigned(agent_id: int, now: datetime) -> bool:
    """Record that routing gives `agent_id` a ticket now (round robin's order). Inside the
    routing transaction this write also locks the agent's row until commit, so two instances
    routing to the same agent count their open tickets one after the other. False when the agent
    has no presence row (never connected)."""
    return bool(await AgentPresence.filter(agent_id=agent_id).update(last_assigned_at=now))


async def connect(hub: Hub, agent: Agent) -> tuple[int, bool]:
    """Record an open stream of `agent`; returns its row id and whether the agent came online
    with it (they were offline; then `agent.presence` is published)."""
    await _ensure_row(agent.id)
    before = (await presence_of([agent.id]))[agent.id]
    row = await AgentConnection.create(agent_id=agent.id, instance=INSTANCE, expires_at=utcnow())
    await AgentConnection.filter(id=row.id).update(expires_at=db.clock(CONNECTION_TTL))
    after = await _announce(hub, agent.id, before)
    return row.id, after == Presence.ONLINE and before != Presence.ONLINE


async def heartbeat(agent_id: int, connection_id: int) -> None:
    """Extend the stream's row by `CONNECTION_TTL`; one a sweep already removed (this instance
    stalled past its expiry) is written again."""
    if not await AgentConnection.filter(id=connection_id).update(expires_at=db.clock(CONNECTION_TTL)):
        row = await AgentConnection.create(id=connection_id, agent_id=agent_id, instance=INSTANCE,
                                           expires_at=utcnow())
        await AgentConnection.filter(id=row.id).update(expires_at=db.clock(CONNECTION_TTL))


async def disconnect(hub: Hub, agent_id: int, connection_id: int) -> None:
    """The stream closed: delete its row, and announce the agent offline if it was their last."""
    before = (await presence_of([agent_id]))[agent_id]
    await AgentConnection.filter(id=connection_id).delete()
    await _announce(hub, agent_id, before)


async def set_status(hub: Hub, agent: Agent, status: Presence) -> tuple[Presence, bool]:
    """The agent says they are `online` or `away`; returns their presence after it and whether
    they came online with it (from away)."""
    await _ensure_row(agent.id)
    before = (await presence_of([agent.id]))[agent.id]
    await AgentPresence.filter(agent_id=agent.id).update(status=status)
    after = await _announce(hub, agent.id, before)
    return after, after == Presence.ONLINE and before != Presence.ONLINE


async def sweep(hub: Hub) -> int:
    """Delete the expired stream rows (an instance died, or stalled, without closing them) and
    announce each agent left offline; returns how many rows this instance deleted."""
    expired = await AgentConnection.filter(expires_at__lte=db.clock()).values_list("id", "agent_id")
    gone: set[int] = set()
    deleted = 0
    for row_id, agent_id in expired:
        if await AgentConnection.filter(id=row_id, expires_at__lte=db.clock()).delete():  # one instance wins each
            deleted += 1
            gone.add(agent_id)
    for agent_id, presence in (await presence_of(gone)).items():
        if presence == Presence.OFFLINE:
            hub.publish(EventKind.AGENT_PRESENCE, agent_id=agent_id, presence=str(presence))
    return deleted


async def _announce(hub: Hub, agent_id: int, before: Presence) -> Presence:
    after = (await presence_of([agent_id]))[agent_id]
    if after != before:
        hub.publish(EventKind.AGENT_PRESENCE, agent_id=agent_id, presence=str(after))
    return after
