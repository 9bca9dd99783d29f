"""The web chat widget channel: one `<script>` tag on any site, a WebSocket per browser tab.

Routes (added to the app by `routes()`):
- `GET /widget.js`, `GET /widget.css`: the embeddable script and its style;
- `POST /widget/session`: a visitor session (see widget_session.py), optionally for a
  verified user (`user_id` + `user_hash`);
- `GET /widget/ws?token=...&since=<last message id>`: the live connection. The client sends
  `{"type": "message", "client_id", "text", "attachments"}` and `{"type": "typing"}`; the
  client id becomes the provider id, so a resend after a reconnect is deduplicated by the
  core. On connect, every stored message after `since` is replayed from the database;
- `POST /widget/upload`: one attachment (multipart field `file`, size-limited), kept in the
  media store (handoff/media.py), which serves it at `/media/{id}/{name}`.

Every widget endpoint checks the page's Origin against `HANDOFF_WIDGET_ORIGINS` (plus the
server's own origin) and rate-limits per visitor. A visitor only ever reads and writes the
conversations of its own visitor id, which comes from its session, never from the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar

from aiohttp import WSMsgType, web

from handoff import bodies
from handoff.channels.base import Capabilities, InvalidSignature, ParsedItem
from handoff.channels.widget_session import OriginPolicy, RateLimiter, SessionStore, verify_identity
from handoff.config import Settings
from handoff.hub import Hub
from handoff.media import MAX_FILE_BYTES, MediaStore, UploadError, attachment_json
from handoff.models import Conversation, Message
from handoff.schema import Address, Attachment, InboundMessage, OutboundMessage
from handoff.validation import MAX_ID, WidgetSessionBody, read_model

log = logging.getLogger(__name__)

STATIC = Path(__file__).resolve().parent.parent / "web" / "static"
MAX_UPLOAD_BYTES = MAX_FILE_BYTES
MAX_TEXT = 8000
REPLAY_LIMIT = 500
PUSH_EVENT = "internal.widget.push"
_CLIENT_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")

Deliver = Callable[[ParsedItem], Awaitable[Any]]
Listener = Callable[[str, dict[str, Any]], Any]


class WidgetChannel:
    """The `widget` channel: visitor sessions, live WebSockets, replay and uploads."""

    name: ClassVar[str] = "widget"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_length=MAX_TEXT, attachments=True
    )

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.origins = OriginPolicy(settings.widget_origins, settings.public_url)
        self.identity_secret = settings.widget_identity_secret
        self.media = MediaStore.from_settings(settings)
        self.sessions = SessionStore()
        self.session_limit = RateLimiter(rate=0.2, burst=20)
        self.message_limit = RateLimiter(rate=1.0, burst=10)
        self.typing_limit = RateLimiter(rate=1.0, burst=5)
        self.upload_limit = RateLimiter(rate=0.1, burst=5)
        self.connect_limit = RateLimiter(rate=0.5, burst=10)
        self.listener: Listener | None = None
        self.hub: Hub | None = None  # the live-event hub: with Redis, pushes reach tabs on other instances
        self._deliver: Deliver | None = None
        self._sockets: dict[str, set[web.WebSocketResponse]] = {}
        self._relay: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> WidgetChannel:
        """The widget needs no provider secrets: it is always on."""
        return cls(settings)

    # -- Channel protocol -------------------------------------------------------------

    async def verify(self, request: web.Request, body: bytes) -> None:
        """The widget has no webhooks: it talks over its own routes only."""
        raise InvalidSignature("the widget channel takes no webhooks")

    def parse(self, body: bytes, content_type: str) -> list[ParsedItem]:
        """No webhook payloads exist for the widget."""
        return []

    async def start(self, deliver: Deliver) -> None:
        """Keep the gateway's `deliver` to commit what visitors send; relay other instances' pushes."""
        self._deliver = deliver
        if self.hub is not None and self.hub.shared:
            self._relay = asyncio.create_task(self._relay_pushes(), name="widget-relay")

    async def close(self) -> None:
        """Stop relaying and close every live visitor socket."""
        relay, self._relay = self._relay, None
        if relay is not None:
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
        await self._close_sockets(code=1001, message=b"server shutdown")
        self._sockets.clear()

    async def send(self, address: Address, message: OutboundMessage) -> str:
        """Push a bot, agent or notice message to the visitor's open tabs; offline visitors get it on replay."""
        payload = {"type": "message", "message": outbound_json(message)}
        await self._fan_out(address.conversation_key or address.contact_id, payload)
        return f"out:{message.id}"

    async def typing(self, address: Address, on: bool, name: str | None = None) -> None:
        """Show or hide "<name> is typing…" ("Support" for the bot) in the visitor's open tabs."""
        await self._fan_out(address.conversation_key or address.contact_id,
                            {"type": "typing", "typing": bool(on), "name": name})

    # -- routes -----------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """The widget's HTTP and WebSocket routes."""
        return [
            web.get("/widget.js", self._script),
            web.get("/widget.css", self._style),
            web.post("/widget/session", self._create_session),
            web.options("/widget/session", self._preflight),
            web.get("/widget/ws", self._websocket),
            web.post("/widget/upload", self._upload),
            web.options("/widget/upload", self._preflight),
        ]

    async def _script(self, request: web.Request) -> web.StreamResponse:
        return _asset("widget.js", "application/javascript")

    async def _style(self, request: web.Request) -> web.StreamResponse:
        return _asset("widget.css", "text/css")

    def _origin_ok(self, request: web.Request) -> bool:
        own = f"{request.scheme}://{request.host}"
        return self.origins.allows(request.headers.get("Origin"), own)

    def _cors(self, request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        if origin and self._origin_ok(request):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        return response

    async def _preflight(self, request: web.Request) -> web.StreamResponse:
        if not self._origin_ok(request):
            return _error(403, "origin not allowed")
        response = web.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
        response.headers["Access-Control-Max-Age"] = "600"
        return self._cors(request, response)

    async def _create_session(self, request: web.Request) -> web.StreamResponse:
        if not self._origin_ok(request):
            return _error(403, "origin not allowed")
        if not self.session_limit.allow(request.remote or "?"):
            return self._cors(request, _error(429, "too many sessions, slow down"))
        try:
            body = await read_model(request, WidgetSessionBody, self.settings.max_body_bytes, empty=True)
        except web.HTTPException as exc:  # 400 bad body, 413 too large: answered with CORS headers too
            return self._cors(request, web.Response(status=exc.status, text=exc.text, content_type="application/json"))
        user_id = None if body.user_id is None else str(body.user_id)
        if user_id is not None and not verify_identity(self.identity_secret, user_id, body.user_hash or ""):
            return self._cors(request, _error(403, "identity verification failed"))
        name = _short(body.name, 200)
        email = _short(body.email, 320) if user_id is not None else None
        previous = await self.sessions.get(body.token)
        if previous is not None and previous.user_id == user_id:
            token, session = body.token, previous  # type: ignore[assignment]
        else:
            token, session = await self.sessions.create(user_id=user_id, name=name, email=email)
        return self._cors(
            request,
            web.json_response({"token": token, "visitor_id": session.visitor_id, "verified": session.verified}),
        )

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        if not self._origin_ok(request):
            return _error(403, "origin not allowed")
        session = await self.sessions.get(request.query.get("token"))
        if session is None:
            return _error(401, "unknown or expired session")
        visitor = session.visitor_id
        if not self.connect_limit.allow(visitor):
            return _error(429, "reconnecting too fast")
        try:
            since = min(max(0, int(request.query.get("since") or 0)), MAX_ID)  # ids are 32-bit on PostgreSQL
        except ValueError:
            return _error(400, "since must be a message id")
        ws = web.WebSocketResponse(heartbeat=25.0, max_msg_size=64 * 1024)
        await ws.prepare(request)
        # Register before replaying: a message sent meanwhile arrives twice, never zero times
        # (the client drops ids it has already shown).
        self._sockets.setdefault(visitor, set()).add(ws)
        try:
            for item in await self.history(visitor, since):
                await ws.send_json({"type": "message", "message": item})
            await ws.send_json({"type": "ready", "visitor_id": visitor})
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_frame(ws, session, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            sockets = self._sockets.get(visitor)
            if sockets is not None:
                sockets.discard(ws)
                if not sockets:
                    self._sockets.pop(visitor, None)
        return ws

    async def _on_frame(self, ws: web.WebSocketResponse, session: Any, data: str) -> None:
        try:
            frame = bodies.loads(data)
        except ValueError:
            await ws.send_json({"type": "error", "error": "frames must be JSON"})
            return
        if not isinstance(frame, dict):
            return
        kind = frame.get("type")
        if kind == "message":
            await self._on_message(ws, session, frame)
        elif kind == "typing":
            await self._on_typing(session, bool(frame.get("typing", True)))
        elif kind == "ping":
            await ws.send_json({"type": "pong"})

    async def _on_message(self, ws: web.WebSocketResponse, session: Any, frame: dict[str, Any]) -> None:
        client_id = frame.get("client_id")
        if not isinstance(client_id, str) or not _CLIENT_ID.match(client_id):
            await ws.send_json({"type": "error", "error": "client_id must be 8-64 url-safe characters"})
            return
        text = frame.get("text") or ""
        if not isinstance(text, str) or len(text) > MAX_TEXT:
            await ws.send_json({"type": "error", "client_id": client_id, "error": "text too long", "final": True})
            return
        attachments = self._attachments(session.visitor_id, frame.get("attachments") or [])
        if not text.strip() and not attachments:
            await ws.send_json({"type": "error", "client_id": client_id, "error": "empty message", "final": True})
            return
        if not self.message_limit.allow(session.visitor_id):
            await ws.send_json({"type": "error", "client_id": client_id, "error": "rate_limited", "retry": 2})
            return
        if self._deliver is None:
            await ws.send_json({"type": "error", "client_id": client_id, "error": "not ready", "retry": 2})
            return
        inbound = InboundMessage(
            channel=self.name,
            provider_id=f"{session.visitor_id}:{client_id}",
            contact_id=session.visitor_id,
            conversation_key=session.visitor_id,
            text=text.strip(),
            contact_name=session.name,
            contact_email=session.email,
            attachments=tuple(attachments),
            sent_at=time.time(),
        )
        try:
            receipt = await self._deliver(inbound)
        except Exception:
            log.exception("widget: could not store a visitor message")
            await ws.send_json({"type": "error", "client_id": client_id, "error": "not stored", "retry": 3})
            return
        message_id = getattr(receipt, "message_id", None)
        if message_id is None:
            row = await Message.get_or_none(channel=self.name, provider_id=inbound.provider_id)
            message_id = row.id if row else None
        item = {
            "id": message_id,
            "client_id": client_id,
            "author": "customer",
            "author_name": None,
            "kind": "message",
            "text": inbound.text,
            "notice": None,
            "attachments": [attachment_json(a) for a in attachments],
            "created_at": inbound.sent_at,
        }
        await ws.send_json({"type": "ack", "client_id": client_id, "id": message_id})
        await self._fan_out(session.visitor_id, {"type": "message", "message": item}, skip=ws)

    async def _on_typing(self, session: Any, typing: bool) -> None:
        if self.listener is None or not self.typing_limit.allow(session.visitor_id):
            return
        conversation = (
            await Conversation.filter(channel=self.name, external_key=session.visitor_id)
            .exclude(state="ended")
            .order_by("-id")
            .first()
        )
        if conversation is None:
            return
        result = self.listener(
            "typing",
            {"conversation_id": conversation.id, "channel": self.name, "who": "customer", "typing": typing},
        )
        if inspect.isawaitable(result):
            await result

    async def _fan_out(self, visitor: str, payload: dict[str, Any], skip: Any = None) -> None:
        """Push to the visitor's tabs here and, through the hub's Redis, on the other instances."""
        await self._push_local(visitor, payload, skip)
        if self.hub is not None and self.hub.shared:
            self.hub.publish(PUSH_EVENT, local=False, visitor=visitor, payload=payload)

    async def _relay_pushes(self) -> None:
        while True:
            try:
                async with self.hub.subscribe(kinds=frozenset({PUSH_EVENT, "stream.lagged"})) as events:
                    async for event in events:
                        if event["kind"] == PUSH_EVENT:
                            await self._push_local(str(event.get("visitor")), event.get("payload") or {})
                        else:  # pushes were dropped: every tab reconnects and replays what it missed
                            log.warning("widget: relay lagged; reconnecting %d visitors", len(self._sockets))
                            await self._close_sockets(code=1012, message=b"reconnect and replay")
            except asyncio.CancelledError:
                raise
            except Exception:  # keep relaying: tabs that missed a push get it on their next replay
                log.exception("widget: relaying pushes from other instances failed; resubscribing")
                await asyncio.sleep(1.0)

    async def _close_sockets(self, code: int, message: bytes) -> None:
        for sockets in list(self._sockets.values()):
            for ws in list(sockets):
                await ws.close(code=code, message=message)

    async def _push_local(self, visitor: str, payload: dict[str, Any], skip: Any = None) -> None:
        for ws in list(self._sockets.get(visitor, ())):
            if ws is skip or ws.closed:
                continue
            try:
                await ws.send_json(payload)
            except (ConnectionError, RuntimeError):
                log.debug("widget: a visitor socket went away during send")

    async def history(self, visitor: str, since: int = 0) -> list[dict[str, Any]]:
        """The visitor's visible messages after message id `since` (its last REPLAY_LIMIT ones at most)."""
        query = (
            Message.filter(
                conversation__channel=self.name,
                conversation__external_key=visitor,
                private=False,
                id__gt=since,
            )
            .exclude(delivery_status="cancelled")
            .prefetch_related("agent")
        )
        rows = await query.order_by("-id").limit(REPLAY_LIMIT)
        return [stored_json(row, visitor) for row in reversed(rows)]

    # -- attachments ------------------------------------------------------------------

    async def _upload(self, request: web.Request) -> web.StreamResponse:
        if not self._origin_ok(request):
            return _error(403, "origin not allowed")
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else request.query.get("token")
        session = await self.sessions.get(token)
        if session is None:
            return self._cors(request, _error(401, "unknown or expired session"))
        if not self.upload_limit.allow(session.visitor_id):
            return self._cors(request, _error(429, "too many uploads, slow down"))
        try:
            stored = await self.media.save_upload(request, {"visitor_id": session.visitor_id})
        except UploadError as error:
            return self._cors(request, error.response())
        return self._cors(request, web.json_response(self.media.upload_json(stored), status=201))

    def _attachments(self, visitor: str, ids: Any) -> list[Attachment]:
        """Attachments a visitor uploaded; ids of other visitors' files are ignored."""
        if not isinstance(ids, list):
            return []
        owned = (self.media.owned(file_id, visitor_id=visitor) for file_id in ids[:10])
        return [self.media.attach(stored) for stored in owned if stored is not None]


def outbound_json(message: OutboundMessage) -> dict[str, Any]:
    """The widget's JSON for a message being sent now."""
    return {
        "id": message.id,
        "client_id": None,
        "author": {"bot": "bot", "agent": "agent"}.get(message.kind, "system"),
        "author_name": message.author_name,
        "kind": "notice" if message.notice or message.kind == "notice" else "message",
        "text": message.text,
        "notice": message.notice,
        "attachments": [attachment_json(a) for a in message.attachments],
        "created_at": time.time(),
    }


def stored_json(row: Message, visitor: str) -> dict[str, Any]:
    """The widget's JSON for a stored message (replay); own client ids are given back for dedupe."""
    client_id = None
    if row.direction == "incoming" and row.provider_id and row.provider_id.startswith(visitor + ":"):
        client_id = row.provider_id[len(visitor) + 1 :]
    if row.direction == "activity":
        kind = "separator"
    elif row.notice or row.author_kind == "system":
        kind = "notice"
    else:
        kind = "message"
    agent = row.agent if row.author_kind == "agent" else None
    return {
        "id": row.id,
        "client_id": client_id,
        "author": row.author_kind,
        "author_name": getattr(agent, "name", None),
        "kind": kind,
        "text": row.text,
        "notice": row.notice,
        "attachments": [a for a in (row.attachments or []) if isinstance(a, dict)],
        "created_at": row.created_at.timestamp() if row.created_at else None,
    }


def _asset(name: str, content_type: str) -> web.StreamResponse:
    response = web.FileResponse(STATIC / name)
    response.content_type = content_type
    response.headers["Cache-Control"] = "public, max-age=300"
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _short(value: Any, limit: int) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:limit]
