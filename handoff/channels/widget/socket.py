"""The widget's live connection: `GET /widget/ws?token=...&since=<last message id>`.

Frames (JSON text) from the client: `{"type": "message", "client_id", "text", "attachments"}`,
`{"type": "typing", "typing"}`, `{"type": "delivered", "ids": [message id, ...]}` (the bot, agent
and notice messages the tab has shown: each is marked `delivered`, live on the desk, the first
time any tab says so; a message no tab acknowledged stays `sent`) and `{"type": "ping"}`; the URL
may carry `lang` (the browser's language, used for the widget's texts until the conversation's is
known). The client id (8-64 url-safe characters)
becomes the provider id `<visitor id>:<client id>`, so a resend after a reconnect is stored
once by the core. Frames to the client: `message` (a message JSON, see `outbound_json` and
`stored_json`), `ack` `{"client_id", "id"}`, `error` `{"error", "client_id"?, "retry"?: seconds,
"final"?}`, `typing` `{"typing", "name"}`, `texts` (every word the widget draws itself, in the visitor's language: see texts.py;
sent again when a customer message changes that language), `ready`
`{"visitor_id"}` and `pong`.

On connect, `texts` comes first, then every visible stored message after `since` is replayed from the database (the
last REPLAY_LIMIT at most), then `ready`. A push for a visitor reaches its tabs on this
instance and, through the hub (`PUSH_EVENT`: logged, so it reaches the other instances' tabs
through Redis or, while Redis is down, from the event log a second later), its tabs on the
others; when the relay lags or the hub asks for a resync, every tab here is closed with 1012
and reconnects, replaying what it missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSMsgType, web
from pydantic import ValidationError
from tortoise.expressions import Q

from handoff import bodies, storable
from handoff.backoff import forever
from handoff.channels.base import ParsedItem
from handoff.channels.widget.limits import CONNECTS, MESSAGES, TYPING, WidgetLimits
from handoff.channels.widget.session import OriginPolicy, SessionStore, VisitorSession, error
from handoff.channels.widget.texts import LanguageWatch
from handoff.events import AUTHOR_OF_KIND, EventKind, message_json, widget_frame
from handoff.hub import Hub
from handoff.media import MediaStore, attachment_json
from handoff.models import Conversation, Message
from handoff.schema import Attachment, DeliveryUpdate, InboundMessage, OutboundMessage
from handoff.states import ConversationState
from handoff.validation import MAX_ID, WidgetMessageFrame, WidgetTypingFrame

log = logging.getLogger(__name__)

REPLAY_LIMIT = 500
ACK_LIMIT = 500  # message ids one `delivered` frame may carry
PUSH_EVENT = EventKind.WIDGET_PUSH
AWAITING_ACK = ("sent",)  # a replayed message in this state is acknowledged by the tab
UNSENT = ("pending", "failed")  # outgoing messages a replay leaves out

Deliver = Callable[[ParsedItem], Awaitable[Any]]
Listener = Callable[[str, dict[str, Any]], Any]


class VisitorSockets:
    """Every open visitor WebSocket of this instance, by visitor id, and the pushes to them."""

    def __init__(self, channel: str, origins: OriginPolicy, sessions: SessionStore, limits: WidgetLimits,
                 media: MediaStore) -> None:
        self.channel = channel
        self.origins = origins
        self.sessions = sessions
        self.limits = limits
        self.media = media
        self.listener: Listener | None = None  # visitors' typing, to the desk's stream
        self.hub: Hub | None = None  # the live-event hub: with Redis, pushes reach tabs on other instances
        self.deliver: Deliver | None = None  # the gateway's, set when the channel starts
        self._sockets: dict[str, set[web.WebSocketResponse]] = {}
        self._awaiting: dict[web.WebSocketResponse, set[int]] = {}  # ids shown to a tab, not acknowledged yet
        self._relay: asyncio.Task[None] | None = None
        self.languages = LanguageWatch(channel)

    def start_relay(self) -> None:
        """Relay other instances' pushes to this instance's tabs (only when the hub uses Redis)."""
        if self.hub is not None and self.hub.shared:
            self._relay = asyncio.create_task(self._relay_pushes(), name="widget-relay")

    async def close(self) -> None:
        """Stop relaying and close every socket (1001, server shutdown)."""
        relay, self._relay = self._relay, None
        if relay is not None:
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
        await self._close_sockets(code=1001, message=b"server shutdown")
        self._sockets.clear()

    async def fan_out(self, visitor: str, payload: dict[str, Any], skip: Any = None) -> None:
        """Push to the visitor's tabs here and, through the hub, on the other instances. A message
        is logged first (a tab on an instance Redis does not reach gets it from the log a second
        later; raises when the log cannot be written); typing and texts go through Redis only."""
        await self._push_local(visitor, payload, skip)
        if self.hub is None or not self.hub.shared:
            return
        if payload.get("type") == "message":
            await self.hub.publish_durable([{"kind": PUSH_EVENT, "origin": self.hub.origin, "visitor": visitor,
                                             "payload": payload}])
        else:
            self.hub.publish(PUSH_EVENT, local=False, visitor=visitor, payload=payload)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """`GET /widget/ws`: 403 foreign origin, 401 unknown session, 429 reconnecting too fast,
        400 a `since` that is not a number; else the WebSocket until the client leaves."""
        if not self.origins.allows_request(request):
            return error(403, "origin not allowed")
        session = await self.sessions.get(request.query.get("token"))
        if session is None:
            return error(401, "unknown or expired session")
        visitor = session.visitor_id
        if not await self.limits.allow(CONNECTS, visitor):
            return error(429, "reconnecting too fast")
        try:
            since = min(max(0, int(request.query.get("since") or 0)), MAX_ID)  # ids are 32-bit on PostgreSQL
        except ValueError:
            return error(400, "since must be a message id")
        ws = web.WebSocketResponse(heartbeat=25.0, max_msg_size=64 * 1024)
        await ws.prepare(request)
        # Register before replaying: a message sent meanwhile arrives twice, never zero times
        # (the client drops ids it has already shown).
        self._sockets.setdefault(visitor, set()).add(ws)
        self._awaiting[ws] = set()
        try:
            # The texts the widget draws itself (labels, spinner, separators), before the replay that draws them.
            await ws.send_json(await self.languages.first_frame(visitor, request.query.get("lang")))
            for row in await self._history_rows(visitor, since):
                if row.direction == "outgoing" and row.delivery_status in AWAITING_ACK:
                    self._awaiting[ws].add(row.id)
                await ws.send_json({"type": "message", "message": stored_json(row, visitor)})
            await ws.send_json({"type": "ready", "visitor_id": visitor})
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self._on_frame(ws, session, msg.data)
                elif msg.type == WSMsgType.ERROR:
                    break
        finally:
            self._awaiting.pop(ws, None)
            sockets = self._sockets.get(visitor)
            if sockets is not None:
                sockets.discard(ws)
                if not sockets:
                    self._sockets.pop(visitor, None)
                    self.languages.forget(visitor)
        return ws

    async def history(self, visitor: str, since: int = 0) -> list[dict[str, Any]]:
        """The visitor's visible messages after message id `since` (its last REPLAY_LIMIT ones at most)."""
        return [stored_json(row, visitor) for row in await self._history_rows(visitor, since)]

    async def _history_rows(self, visitor: str, since: int) -> list[Message]:
        query = (
            Message.filter(
                conversation__channel=self.channel,
                conversation__external_key=visitor,
                private=False,
                id__gt=since,
            )
            .exclude(delivery_status="cancelled")
            # an outgoing message is shown once sent: a pending bot reply a takeover may still cancel is not
            .filter(Q(direction__not="outgoing") | Q(delivery_status__not_in=UNSENT))
            .prefetch_related("agent")
        )
        rows = await query.order_by("-id").limit(REPLAY_LIMIT)
        return list(reversed(rows))

    async def _on_frame(self, ws: web.WebSocketResponse, session: VisitorSession, data: str) -> None:
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
            try:
                typing = WidgetTypingFrame.model_validate(storable.json_value(frame)).typing
            except ValidationError:
                return  # a malformed typing hint is dropped
            await self._on_typing(session, typing)
        elif kind == "delivered":
            await self._on_delivered(ws, frame.get("ids"))
        elif kind == "ping":
            await ws.send_json({"type": "pong"})

    async def _on_message(self, ws: web.WebSocketResponse, session: VisitorSession, frame: dict[str, Any]) -> None:
        try:
            message = WidgetMessageFrame.model_validate(storable.json_value(frame))
        except ValidationError as exc:
            fields = {str(e["loc"][0]) for e in exc.errors() if e["loc"]}
            if "client_id" in fields:
                await ws.send_json({"type": "error", "error": "client_id must be 8-64 url-safe characters"})
            else:
                await ws.send_json({"type": "error", "client_id": frame["client_id"], "error": "text too long",
                                    "final": True})
            return
        client_id, text = message.client_id, message.text or ""
        attachments = self._attachments(session.visitor_id, message.attachments or [])
        if not text.strip() and not attachments:
            await ws.send_json({"type": "error", "client_id": client_id, "error": "empty message", "final": True})
            return
        if not await self.limits.allow(MESSAGES, session.visitor_id):
            await ws.send_json({"type": "error", "client_id": client_id, "error": "rate_limited", "retry": 2})
            return
        if self.deliver is None:
            await ws.send_json({"type": "error", "client_id": client_id, "error": "not ready", "retry": 2})
            return
        inbound = InboundMessage(
            channel=self.channel,
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
            receipt = await self.deliver(inbound)
        except Exception:
            log.exception("widget: could not store a visitor message")
            await ws.send_json({"type": "error", "client_id": client_id, "error": "not stored", "retry": 3})
            return
        message_id = getattr(receipt, "message_id", None)
        if message_id is None:
            row = await Message.get_or_none(channel=self.channel, provider_id=inbound.provider_id)
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
        await self.fan_out(session.visitor_id, {"type": "message", "message": item}, skip=ws)
        await self._texts_if_language_changed(session.visitor_id)

    async def _texts_if_language_changed(self, visitor: str) -> None:
        """The widget's texts again, in every tab, when that message changed the conversation's language."""
        frame = await self.languages.changed_frame(visitor)
        if frame is not None:
            await self.fan_out(visitor, frame)

    async def _on_delivered(self, ws: web.WebSocketResponse, ids: Any) -> None:
        """Mark delivered the messages this tab was shown and acknowledges now; ids it was not
        shown (another visitor's, or acknowledged already) are ignored."""
        awaiting = self._awaiting.get(ws)
        if not isinstance(ids, list) or awaiting is None or self.deliver is None:
            return
        for message_id in ids[:ACK_LIMIT]:
            if type(message_id) is not int or message_id not in awaiting:
                continue
            awaiting.discard(message_id)
            update = DeliveryUpdate(channel=self.channel, provider_id=provider_id_of(message_id), state="delivered")
            try:
                await self.deliver(update)
            except Exception:
                log.exception("widget: could not record a delivery")
                awaiting.add(message_id)  # the tab's next acknowledgement tries again

    async def _on_typing(self, session: VisitorSession, typing: bool) -> None:
        if self.listener is None or not await self.limits.allow(TYPING, session.visitor_id):
            return
        conversation = (
            await Conversation.filter(channel=self.channel, external_key=session.visitor_id)
            .exclude(state=ConversationState.ENDED)
            .order_by("-id")
            .first()
        )
        if conversation is None:
            return
        result = self.listener(
            EventKind.TYPING,
            {"conversation_id": conversation.id, "channel": self.channel, "who": "customer", "typing": typing},
        )
        if inspect.isawaitable(result):
            await result

    def _attachments(self, visitor: str, ids: Any) -> list[Attachment]:
        """Attachments a visitor uploaded; ids of other visitors' files are ignored."""
        if not isinstance(ids, list):
            return []
        owned = (self.media.owned(file_id, visitor_id=visitor) for file_id in ids[:10])
        return [self.media.attach(stored) for stored in owned if stored is not None]

    async def _relay_pushes(self) -> None:
        hub = self.hub
        assert hub is not None

        async def relay() -> None:
            kinds = frozenset({PUSH_EVENT, EventKind.STREAM_LAGGED, EventKind.STREAM_RESYNC})
            async with hub.subscribe(kinds=kinds) as events:
                async for event in events:
                    if event["kind"] == PUSH_EVENT:
                        if event.get("origin") != hub.origin:  # this instance pushed its own already
                            await self._push_local(str(event.get("visitor")), event.get("payload") or {})
                    else:  # pushes were dropped: every tab reconnects and replays what it missed
                        log.warning("widget: relay %s; reconnecting %d visitors", event["kind"], len(self._sockets))
                        await self._close_sockets(code=1012, message=b"reconnect and replay")

        # A failure costs nothing but latency: tabs that missed a push get it on their next replay.
        await forever(relay, "widget: relaying pushes from other instances", logger=log)

    async def _close_sockets(self, code: int, message: bytes) -> None:
        for sockets in list(self._sockets.values()):
            for ws in list(sockets):
                await ws.close(code=code, message=message)

    async def _push_local(self, visitor: str, payload: dict[str, Any], skip: Any = None) -> None:
        message = payload.get("message") if payload.get("type") == "message" else None
        outgoing_id = message.get("id") if isinstance(message, dict) and message.get("author") != "customer" else None
        for ws in list(self._sockets.get(visitor, ())):
            if ws is skip or ws.closed:
                continue
            if isinstance(outgoing_id, int) and ws in self._awaiting:
                self._awaiting[ws].add(outgoing_id)
            try:
                await ws.send_json(payload)
            except (ConnectionError, RuntimeError):
                log.debug("widget: a visitor socket went away during send")


def provider_id_of(message_id: int) -> str:
    """The provider id a widget message is stored with once pushed (what a tab's acknowledgement names)."""
    return f"out:{message_id}"


def outbound_json(message: OutboundMessage) -> dict[str, Any]:
    """The widget's JSON for a message being sent now."""
    return {
        "id": message.id,
        "client_id": None,
        "author": AUTHOR_OF_KIND[message.kind],
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
    agents = {row.agent.id: row.agent} if row.agent else None
    return widget_frame(message_json(row, agents), client_id)
