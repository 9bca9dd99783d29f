"""Shared Meta code for the Messenger and Instagram channels.

Follows the Messenger Platform / Instagram Messaging documentation:
- Webhooks (developers.facebook.com/docs/messenger-platform/webhooks): the GET verification
  handshake (hub.mode, hub.verify_token, hub.challenge) and the X-Hub-Signature-256 header,
  an HMAC-SHA256 of the raw request body keyed with the app secret.
- Webhook events (…/reference/webhook-events): a batched body `{"object", "entry": [{"id",
  "time", "messaging": [event, ...]}]}`; each event has `sender`, `recipient`, `timestamp` and
  one of `message`, `postback`, `delivery`, `read`, `reaction`, ...
- Send API (…/reference/send-api): `POST /me/messages` with `recipient`, `messaging_type`
  (RESPONSE inside the 24-hour window; MESSAGE_TAG + HUMAN_AGENT for a person's reply within
  7 days) and `message` or `sender_action`; errors as `{"error": {"code", "error_subcode", ...}}`.

`MetaChannel` holds everything the two platforms share; `messenger.py` and `instagram.py`
only declare where they differ (object type, token, profile fields, receipts).
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import hmac
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
from aiohttp import web

from handoff import bodies
from handoff.channels.base import (
    BadPayload,
    Capabilities,
    ChannelConfigError,
    DeliveryError,
    InvalidSignature,
    ParsedItem,
    parse_retry_after,
    send_in_parts,
    truncate_for,
)
from handoff.schema import Address, Attachment, DeliveryUpdate, InboundMessage, OutboundMessage

if TYPE_CHECKING:
    from handoff.config import Settings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
WINDOW_SECONDS = 24 * 3600
HUMAN_AGENT_WINDOW_SECONDS = 7 * 24 * 3600
# Graph error codes that mean "slow down / try again" (API throttling, transient errors).
_RETRYABLE_CODES = {1, 2, 4, 17, 32, 341, 613}
_ATTACHMENT_TYPES = {"image": "image/*", "video": "video/*", "audio": "audio/*", "file": "application/octet-stream"}


def signature(app_secret: str, body: bytes) -> str:
    """The X-Hub-Signature-256 value Meta sends for `body`."""
    digest = hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()
    return "sha256=" + digest


def sign_headers(app_secret: str, body: bytes) -> dict[str, str]:
    """The headers Meta sends with a webhook POST of `body`."""
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature(app_secret, body),
        "X-Hub-Signature": "sha1=" + hmac.new(app_secret.encode(), body, hashlib.sha1).hexdigest(),
    }


def check_signature(app_secret: str, header: str | None, body: bytes) -> None:
    """Raise InvalidSignature unless `header` is the HMAC-SHA256 of `body` (constant time)."""
    if not app_secret:
        raise InvalidSignature("no app secret configured")
    if not header:
        raise InvalidSignature(f"missing {SIGNATURE_HEADER}")
    if not hmac.compare_digest(header.strip().encode(), signature(app_secret, body).encode()):
        raise InvalidSignature(f"{SIGNATURE_HEADER} does not match the body")


def handshake_response(request: web.Request, verify_token: str) -> web.Response:
    """Answer Meta's GET subscription check: echo hub.challenge when the verify token matches."""
    query = request.query
    token = query.get("hub.verify_token", "")
    challenge = query.get("hub.challenge", "")
    ok = (
        bool(verify_token)
        and query.get("hub.mode") == "subscribe"
        and hmac.compare_digest(token.encode(), verify_token.encode())
    )
    if not ok:
        return web.json_response({"error": "verification failed"}, status=403)
    return web.Response(text=challenge, content_type="text/plain")


def load_events(body: bytes, object_type: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(entry, event) pairs of a batched webhook body, in order; BadPayload when malformed."""
    try:
        data = bodies.loads(body)
    except ValueError as exc:
        raise BadPayload(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("entry"), list):
        raise BadPayload("expected an object with an entry[] list")
    if data.get("object") != object_type:
        log.info("ignoring webhook for object %r", data.get("object"))
        return []
    pairs = []
    for entry in data["entry"]:
        if not isinstance(entry, dict):
            raise BadPayload("entry[] items must be objects")
        events = entry.get("messaging", [])
        if not isinstance(events, list):
            raise BadPayload("messaging must be a list")
        for event in events:
            if not isinstance(event, dict):
                raise BadPayload("messaging[] items must be objects")
            pairs.append((entry, event))
    return pairs


def window_params(message: OutboundMessage, now: float | None = None) -> dict[str, Any]:
    """The Send API `messaging_type` (and `tag`) allowed for `message`; DeliveryError if none is."""
    last = message.last_customer_message_at
    if last is None:
        return {"messaging_type": "RESPONSE"}
    age = (time.time() if now is None else now) - last
    if age <= WINDOW_SECONDS:
        return {"messaging_type": "RESPONSE"}
    hours = int(age // 3600)
    if not message.human:
        raise DeliveryError(
            f"the customer's last message was {hours} h ago: outside the 24-hour messaging window, "
            "only a person's reply (HUMAN_AGENT tag) may still be sent",
            retryable=False,
            code="window",
        )
    if age <= HUMAN_AGENT_WINDOW_SECONDS:
        return {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
    raise DeliveryError(
        f"the customer's last message was {hours} h ago: beyond the 7-day HUMAN_AGENT window, "
        "the customer must write first",
        retryable=False,
        code="window",
    )


class NameCache:
    """A bounded least-recently-used cache of contact names (None = known to be unavailable)."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self.maxsize = maxsize
        self._items: OrderedDict[str, str | None] = OrderedDict()

    def get(self, key: str) -> tuple[bool, str | None]:
        """(found, name)."""
        if key not in self._items:
            return False, None
        self._items.move_to_end(key)
        return True, self._items[key]

    def put(self, key: str, name: str | None) -> None:
        """Remember a name, evicting the oldest entry past the bound."""
        self._items[key] = name
        self._items.move_to_end(key)
        while len(self._items) > self.maxsize:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


def _graph_error(status: int, headers: Any, payload: Any) -> DeliveryError:
    error = payload.get("error") if isinstance(payload, dict) else None
    error = error if isinstance(error, dict) else {}
    code = error.get("code")
    subcode = error.get("error_subcode")
    text = error.get("message") or f"Graph API answered HTTP {status}"
    code_str = str(code if code is not None else status) + (f"/{subcode}" if subcode else "")
    retry_after = parse_retry_after(headers.get("Retry-After"))
    if code == 10 and subcode == 2018278:
        return DeliveryError(
            f"outside the messaging window (Meta error 10/2018278): {text}", retryable=False, code=code_str
        )
    if status == 429 or status >= 500 or code in _RETRYABLE_CODES or error.get("is_transient"):
        return DeliveryError(f"Graph API: {text}", retryable=True, retry_after=retry_after, code=code_str)
    if code == 190:
        return DeliveryError(f"Graph API rejected the access token: {text}", retryable=False, code=code_str)
    if code == 551:
        return DeliveryError(f"the person is not reachable on this channel: {text}", retryable=False, code=code_str)
    return DeliveryError(f"Graph API: {text}", retryable=False, code=code_str)


class GraphClient:
    """A small aiohttp client for the Graph API endpoints the channels use."""

    def __init__(self, base: str, token: str, *, timeout: float = 15.0) -> None:
        self.base = base.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def request(self, method: str, path: str, *, json_body: Any = None, params: dict | None = None) -> Any:
        """Call the Graph API; the decoded JSON answer, or DeliveryError."""
        query = {"access_token": self.token, **(params or {})}
        try:
            async with self._client().request(
                method, f"{self.base}/{path.lstrip('/')}", params=query, json=json_body
            ) as resp:
                try:
                    payload = await resp.json(content_type=None)
                except ValueError:
                    payload = None
                if resp.status >= 400:
                    raise _graph_error(resp.status, resp.headers, payload)
                return payload
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise DeliveryError(f"Graph API unreachable: {exc!r}", retryable=True, code="network") from exc

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None


class MetaChannel:
    """Messenger and Instagram: verify, parse, send, typing and contact names over the Graph API."""

    name: ClassVar[str]
    object_type: ClassVar[str]
    token_setting: ClassVar[str]
    profile_fields: ClassVar[str] = "name"
    capabilities: ClassVar[Capabilities]
    capabilities_max_bytes: ClassVar[int | None] = None
    # Names are looked up after the webhook ack (handoff/contact_names.py); this only bounds a hung call.
    name_timeout: float = 10.0

    def __init__(self, *, app_secret: str, verify_token: str, token: str, graph_base: str) -> None:
        self.app_secret = app_secret
        self.verify_token = verify_token
        self.graph = GraphClient(graph_base, token)
        self.names = NameCache()
        self._handlers: dict[str, Callable[[dict, dict], list[ParsedItem]]] = {
            "message": self._on_message,
            "postback": self._on_postback,
            "delivery": self._on_delivery,
            "read": self._on_read,
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> MetaChannel | None:
        """The channel when its token is set; None when off; ChannelConfigError when partial."""
        token = getattr(settings, cls.token_setting)
        shared = {"META_APP_SECRET": settings.meta_app_secret, "META_VERIFY_TOKEN": settings.meta_verify_token}
        if not token:
            if any(shared.values()) and not (settings.messenger_page_token or settings.instagram_access_token):
                raise ChannelConfigError(
                    "META_APP_SECRET/META_VERIFY_TOKEN are set but neither MESSENGER_PAGE_TOKEN "
                    "nor INSTAGRAM_ACCESS_TOKEN is"
                )
            return None
        missing = [env for env, value in shared.items() if not value]
        if missing:
            raise ChannelConfigError(
                f"the {cls.name} channel needs {', '.join(missing)} (it has {cls.token_setting.upper()})"
            )
        return cls(
            app_secret=settings.meta_app_secret,
            verify_token=settings.meta_verify_token,
            token=token,
            graph_base=settings.meta_graph_base,
        )

    # -- inbound -------------------------------------------------------------------------

    async def handshake(self, request: web.Request) -> web.Response:
        """The GET webhook verification (hub.challenge)."""
        return handshake_response(request, self.verify_token)

    async def verify(self, request: web.Request, body: bytes) -> None:
        """Raise InvalidSignature unless X-Hub-Signature-256 signs the raw body."""
        check_signature(self.app_secret, request.headers.get(SIGNATURE_HEADER), body)

    def sign(self, body: bytes, url: str = "", content_type: str = "application/json") -> dict[str, str]:
        """The headers Meta would send with `body` (used by `handoff replay` and tests)."""
        return sign_headers(self.app_secret, body)

    def parse(self, body: bytes, content_type: str = "application/json") -> list[ParsedItem]:
        """Messages and receipts of a batched webhook body, in order; echoes and unknown events give []."""
        items: list[ParsedItem] = []
        for entry, event in load_events(body, self.object_type):
            kind = next((k for k in self._handlers if k in event), None)
            if kind is None:
                log.info("%s: ignoring event with keys %s", self.name, sorted(event))
                continue
            try:
                items.extend(self._handlers[kind](entry, event))
            except (KeyError, TypeError, AttributeError) as exc:
                raise BadPayload(f"malformed {kind} event: {exc!r}") from None
        return items

    def _inbound(self, event: dict, provider_id: str, text: str, **extra: Any) -> InboundMessage:
        timestamp = event.get("timestamp")
        sent_at = float(timestamp) / 1000 if isinstance(timestamp, (int, float)) else None
        return InboundMessage(
            channel=self.name,
            provider_id=provider_id,
            contact_id=str(event["sender"]["id"]),
            text=text,
            sent_at=sent_at,
            raw=event,
            **extra,
        )

    def _on_message(self, entry: dict, event: dict) -> list[ParsedItem]:
        message = event["message"]
        if message.get("is_echo") or message.get("is_deleted") or message.get("is_unsupported"):
            return []
        attachments, lines = self._attachments(message.get("attachments") or [])
        text = message.get("text") or "\n".join(lines)
        # Quick-reply payloads and reply_to references stay in `raw`: the conversation is keyed
        # by the contact, so they are not threading data.
        if not text and not attachments:
            return []
        return [self._inbound(event, str(message["mid"]), text, attachments=tuple(attachments))]

    def _attachments(self, raw: list[dict]) -> tuple[list[Attachment], list[str]]:
        attachments: list[Attachment] = []
        lines: list[str] = []
        for item in raw:
            kind = item.get("type", "")
            payload = item.get("payload") or {}
            if kind == "location" and "coordinates" in payload:
                coords = payload["coordinates"]
                lines.append(f"Location: {coords.get('lat')}, {coords.get('long')}")
                continue
            url = payload.get("url")
            if url:
                content_type = _ATTACHMENT_TYPES.get(kind, "application/octet-stream")
                attachments.append(Attachment(content_type=content_type, url=url, filename=item.get("title")))
                lines.append(f"[{kind}] {url}")
            elif item.get("title"):
                lines.append(str(item["title"]))
        return attachments, lines

    def _on_postback(self, entry: dict, event: dict) -> list[ParsedItem]:
        postback = event["postback"]
        text = postback.get("title") or postback.get("payload") or ""
        # Older postbacks carry no mid; sender + timestamp is unique per click.
        provider_id = postback.get("mid") or f"postback:{event['sender']['id']}:{event.get('timestamp')}"
        return [self._inbound(event, str(provider_id), text)]

    def _on_delivery(self, entry: dict, event: dict) -> list[ParsedItem]:
        mids = event["delivery"].get("mids") or []
        return [DeliveryUpdate(channel=self.name, provider_id=str(mid), state="delivered") for mid in mids]

    def _on_read(self, entry: dict, event: dict) -> list[ParsedItem]:
        mid = event["read"].get("mid")
        # Messenger's read receipt has only a watermark (a time), no message id to update.
        if not mid:
            return []
        return [DeliveryUpdate(channel=self.name, provider_id=str(mid), state="read")]

    # -- outbound ------------------------------------------------------------------------

    async def send(self, address: Address, message: OutboundMessage) -> str:
        """Send text chunks then attachments, resuming after `message.parts_sent`; the first new message id."""
        params = window_params(message)
        recipient = {"id": address.contact_id}
        bodies: list[dict[str, Any]] = [{"text": chunk} for chunk in self.chunks(message.text) if chunk]
        for attachment in message.attachments:
            if attachment.url:
                kind = attachment.content_type.split("/")[0]
                kind = kind if kind in {"image", "video", "audio"} else "file"
                bodies.append({"attachment": {"type": kind, "payload": {"url": attachment.url}}})
        if not bodies:
            raise DeliveryError("nothing to send: empty text and no attachment URL", retryable=False, code="empty")

        async def send_body(body: dict[str, Any]) -> str:
            answer = await self.graph.request(
                "POST", "me/messages", json_body={"recipient": recipient, **params, "message": body}
            )
            return str((answer or {}).get("message_id") or "")

        return await send_in_parts(bodies, message, send_body)

    def chunks(self, text: str) -> list[str]:
        """`text` split into messages within the platform's length limits."""
        max_bytes = self.capabilities_max_bytes
        pieces = truncate_for(self.capabilities, text)
        if not max_bytes:
            return pieces
        out: list[str] = []
        for piece in pieces:
            while len(piece.encode()) > max_bytes:
                # Multi-byte scripts: shrink the character limit to the byte budget and split again.
                limit = max(1, len(piece) * max_bytes // len(piece.encode()))
                head, *_ = truncate_for(dataclasses.replace(self.capabilities, max_length=limit), piece)
                out.append(head)
                piece = piece[len(head):].lstrip()
            if piece:
                out.append(piece)
        return out

    async def typing(self, address: Address, on: bool) -> None:
        """Show or hide the typing indicator (best effort: failures are logged, not raised)."""
        action = "typing_on" if on else "typing_off"
        try:
            await self.graph.request(
                "POST", "me/messages",
                json_body={"recipient": {"id": address.contact_id}, "sender_action": action},
            )
        except DeliveryError as exc:
            log.info("%s: %s failed: %s", self.name, action, exc)

    async def contact_name(self, contact_id: str) -> str | None:
        """The contact's display name from the Graph API, cached; None when unavailable."""
        found, name = self.names.get(contact_id)
        if found:
            return name
        try:
            profile = await asyncio.wait_for(
                self.graph.request("GET", contact_id, params={"fields": self.profile_fields}), timeout=self.name_timeout
            )
        except (DeliveryError, asyncio.TimeoutError) as exc:
            log.info("%s: no name for %s: %s", self.name, contact_id, exc)
            if isinstance(exc, DeliveryError) and not exc.retryable:
                self.names.put(contact_id, None)  # no such profile, or no permission to read it
            return None  # a transient failure is not cached: it may succeed next time
        name = self._profile_name(profile or {})
        self.names.put(contact_id, name)
        return name

    def _profile_name(self, profile: dict[str, Any]) -> str | None:
        name = profile.get("name")
        if not name and (profile.get("first_name") or profile.get("last_name")):
            name = " ".join(p for p in (profile.get("first_name"), profile.get("last_name")) if p)
        return name or profile.get("username") or None

    def cached_name(self, contact_id: str) -> tuple[bool, str | None]:
        """(already looked up, name) from the cache, without calling the Graph API."""
        return self.names.get(contact_id)

    async def close(self) -> None:
        """Close the Graph API session."""
        await self.graph.close()
