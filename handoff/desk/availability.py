"""`PUT /api/v1/agents/me/presence`: an agent says they are away (no new tickets routed to
them; colleagues see it) or online again. Presence itself is `handoff.presence`'s; an agent
back online is offered the tickets waiting in Unassigned (`transitions.route_waiting`)."""

from __future__ import annotations

from aiohttp import web

from handoff import presence
from handoff import transitions as ops
from handoff.desk.api import AGENT
from handoff.runtime import RUNTIME
from handoff.validation import PresenceBody, read_model

routes = web.RouteTableDef()


@routes.put("/api/v1/agents/me/presence")
async def set_presence(request: web.Request) -> web.Response:
    """`{"status": "away"|"online"}` → 200 `{"agent": {id, name, email, presence}}`: `presence` is
    what colleagues now see (`offline` while the caller has no desk stream open, whatever they said)."""
    rt = request.app[RUNTIME]
    agent = request[AGENT]
    data: PresenceBody = await read_model(request, PresenceBody, rt.settings.max_body_bytes)
    now, came_online = await presence.set_status(rt.hub, agent, presence.Presence(data.status))
    if came_online:
        await ops.route_waiting(rt, agent.id)
    return web.json_response({"agent": presence.agent_with_presence(agent, now)})
