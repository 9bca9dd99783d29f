"""The web chat widget channel: one `<script>` tag on any site, a WebSocket per browser tab.

The parts, each in its module: `http` (the static files beside it in `static/`, visitor
sessions, uploads), `socket` (the live connection, its frames, replay from the database and
pushes across instances through the hub), `session` (session tokens, identity verification,
the Origin allow-list and CORS) and `limits` (rate limits per visitor or IP, shared through
Redis with `HANDOFF_REDIS_URL`).

Every widget endpoint checks the page's Origin against `HANDOFF_WIDGET_ORIGINS` (plus the
server's own origin) and rate-limits per visitor. A visitor only ever reads and writes the
conversations of its own visitor id, which comes from its session, never from the client.
The widget takes no webhooks: `verify` refuses every request.
"""

from __future__ import annotations

from typing import ClassVar

from aiohttp import web

from handoff.channels.base import Capabilities, InvalidSignature, ParsedItem
from handoff.channels.widget.http import WidgetHttp
from handoff.channels.widget.limits import WidgetLimits
from handoff.channels.widget.session import OriginPolicy, SessionStore
from handoff.channels.widget.socket import Deliver, Listener, VisitorSockets, outbound_json, provider_id_of
from handoff.config import Settings
from handoff.hub import Hub
from handoff.media import MediaStore
from handoff.schema import Address, OutboundMessage
from handoff.validation import WIDGET_MAX_TEXT


class WidgetChannel:
    """The `widget` channel: the Channel protocol over its HTTP routes and visitor sockets."""

    name: ClassVar[str] = "widget"
    # A tab's acknowledgement is the receipt: it can come before the outbox records the id.
    capabilities: ClassVar[Capabilities] = Capabilities(max_length=WIDGET_MAX_TEXT, attachments=True,
                                                        delivery_receipts=True)

    def __init__(self, settings: Settings, limits: WidgetLimits | None = None) -> None:
        """`limits` replaces the ones built from `settings.redis_url` (tests give a key prefix of their own)."""
        self.settings = settings
        self.origins = OriginPolicy(settings.widget_origins, settings.public_url)
        self.sessions = SessionStore()
        self.limits = limits or WidgetLimits(settings.redis_url)
        self.media = MediaStore.from_settings(settings)
        self.http = WidgetHttp(settings, self.origins, self.sessions, self.limits, self.media)
        self.sockets = VisitorSockets(self.name, self.origins, self.sessions, self.limits, self.media)

    @classmethod
    def from_settings(cls, settings: Settings) -> WidgetChannel:
        """The widget needs no provider secrets: it is always on."""
        return cls(settings)

    @property
    def hub(self) -> Hub | None:
        """The live-event hub (set by the app): with Redis, pushes reach tabs on other instances."""
        return self.sockets.hub

    @hub.setter
    def hub(self, hub: Hub | None) -> None:
        self.sockets.hub = hub

    @property
    def listener(self) -> Listener | None:
        """Called with ("typing", data) when a visitor types (set by the app: the desk's stream)."""
        return self.sockets.listener

    @listener.setter
    def listener(self, listener: Listener | None) -> None:
        self.sockets.listener = listener

    async def verify(self, request: web.Request, body: bytes) -> None:
        """The widget has no webhooks: it talks over its own routes only."""
        raise InvalidSignature("the widget channel takes no webhooks")

    def parse(self, body: bytes, content_type: str) -> list[ParsedItem]:
        """No webhook payloads exist for the widget."""
        return []

    async def start(self, deliver: Deliver) -> None:
        """Keep the gateway's `deliver` to commit what visitors send; relay other instances' pushes."""
        self.sockets.deliver = deliver
        self.sockets.start_relay()

    async def close(self) -> None:
        """Stop relaying, close every live visitor socket and the limits' Redis connections."""
        await self.sockets.close()
        await self.limits.close()

    async def send(self, address: Address, message: OutboundMessage) -> str:
        """Push a bot, agent or notice message to the visitor's open tabs; offline visitors get it on
        replay. The message is then `sent`; it becomes `delivered` when a tab acknowledges it."""
        payload = {"type": "message", "message": outbound_json(message)}
        await self.sockets.fan_out(address.conversation_key or address.contact_id, payload)
        return provider_id_of(message.id)

    async def typing(self, address: Address, on: bool, name: str | None = None) -> None:
        """Show or hide "<name> is typing…" ("Support" for the bot) in the visitor's open tabs."""
        await self.sockets.fan_out(address.conversation_key or address.contact_id,
                                   {"type": "typing", "typing": bool(on), "name": name})

    def routes(self) -> list[web.RouteDef]:
        """The widget's HTTP and WebSocket routes."""
        return [*self.http.routes(), web.get("/widget/ws", self.sockets.handle)]
