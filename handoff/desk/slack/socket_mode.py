"""Socket Mode: the same Slack payloads over a WebSocket, for teams without a public URL.

Uses slack-sdk's aiohttp `SocketModeClient` (https://api.slack.com/apis/socket-mode): the
app-level token (SLACK_APP_TOKEN, `connections:write`) opens the connection; each envelope
(`events_api`, `interactive`, `slash_commands`) is acknowledged with its `envelope_id` and the
same answer the HTTP request URL would give, produced by the same handlers.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from handoff.desk.slack import actions, events

if TYPE_CHECKING:
    from handoff.desk.slack import SlackIntegration

log = logging.getLogger(__name__)


async def answer(slack: SlackIntegration, kind: str, payload: dict[str, Any], retry_attempt: int | None) -> dict[str, Any] | None:
    """The ack payload for one Socket Mode envelope (the work itself is spawned by the handlers)."""
    if kind == "events_api":
        await events.handle_body(slack, payload, retry_attempt)
        return None
    if kind == "interactive":
        return await actions.handle_interaction(slack, payload)
    if kind == "slash_commands":
        return await actions.handle_command(slack, {k: str(v) for k, v in payload.items()})
    log.info("unhandled socket mode envelope %r", kind)
    return None


class SocketTransport:
    """Connects the integration to Slack over Socket Mode."""

    def __init__(self, slack: SlackIntegration) -> None:
        self.slack = slack
        self.client = SocketModeClient(app_token=slack.app_token, web_client=slack.client, ping_interval=10)
        self.client.socket_mode_request_listeners.append(self._on_request)

    async def connect(self) -> None:
        """Open the WebSocket (apps.connections.open)."""
        await self.client.connect()

    async def close(self) -> None:
        """Close the WebSocket and stop reconnecting."""
        await self.client.close()

    async def _on_request(self, client: SocketModeClient, request: SocketModeRequest) -> None:
        try:
            body = await answer(self.slack, request.type, request.payload, request.retry_attempt)
        except Exception:
            log.exception("socket mode %s envelope failed", request.type)
            body = None
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id, payload=body))
