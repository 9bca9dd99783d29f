"""Desk API additions the web desk needs beyond DESIGN.md §6: agent typing to the customer.

`POST /api/v1/conversations/{id}/typing` `{"typing": true}` shows (or hides) the agent
typing indicator on channels that have one (the widget) and tells other agents on the
live stream. Authenticated like the rest of the API: desk cookie or Bearer agent token.
"""

from __future__ import annotations

import inspect
from typing import Any

from aiohttp import web

from handoff.desk.api import AGENT
from handoff.models import Agent, Conversation
from handoff.web import auth


async def _agent(request: web.Request) -> Agent | None:
    agent = request.get(AGENT)  # set by the API's authentication middleware
    if agent is not None:
        return agent
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer "):
        return await auth.agent_from_token(header[7:])
    return await auth.agent_from_session(request)


def extra_routes(rt: Any) -> list[web.RouteDef]:
    """The extra desk API routes, bound to the runtime."""

    async def typing(request: web.Request) -> web.StreamResponse:
        agent = await _agent(request)
        if agent is None:
            return web.json_response({"error": "sign in first"}, status=401)
        try:
            conversation_id = int(request.match_info["id"])
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "body must be JSON"}, status=400)
        on = bool(body.get("typing", True)) if isinstance(body, dict) else True
        conversation = await Conversation.get_or_none(id=conversation_id)
        if conversation is None:
            return web.json_response({"error": "no such conversation"}, status=404)
        channel = getattr(rt, "channels", {}).get(conversation.channel)
        push = getattr(channel, "push_typing", None)
        if push is not None and conversation.state == "human":
            await push(conversation.external_key, on, agent.name)
        result = rt.hub.publish(
            "typing", conversation_id=conversation.id, who="agent", agent={"id": agent.id, "name": agent.name},
            typing=on,
        )
        if inspect.isawaitable(result):
            await result
        return web.json_response({"ok": True})

    return [web.post("/api/v1/conversations/{id}/typing", typing)]
