"""Shared Meta code for the Messenger and Instagram channels.

Follows the Messenger Platform / Instagram Messaging documentation:
- Webhooks (developers.facebook.com/docs/messenger-platform/webhooks): the GET verification
  handshake (hub.mode, hub.verify_token, hub.challenge) and the X-Hub-Signature-256 header,
  an HMAC-SHA256 of the raw request body keyed with the app secret.
- Webhook events (…/reference/webhook-events): a batched body `{"object", "entry": [{"id",
  "time", "messaging": [event, ...]}]}`; each event has `sender`, `recipient`, `timestamp` and
  one of `message` (text, attachments, `is_echo` + `app_id`, `is_deleted`), `message_edit`
  (`mid`, `text`, `num_edit`), `postback`, `delivery`, `read`, `reaction`, ... A sender may be
  `{"user_ref": ...}` (checkbox plugin) instead of an id. Every notification is answered
  `200 OK`, and events are parsed one by one (an unusable one is skipped, not the batch).
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

from handoff import bodies, metrics
from handoff.channels.base import (
    BadPayload,
    Capabilities,
    ChannelConfigError,
    DeliveryError,
    InvalidSignature,
    ParsedItem,
    UnsupportedEvent,
    parse_retry_after,
    send_in_parts,
    truncate_for,
)
from handoff.schema import (
    Address,
    Attachment,
    DeliveryUpdate,
    InboundMessage,
    MessageDeletion,
    MessageEdit,
    OutboundMessage,
    OutsideReply,
)

if TYPE_CHECKING:
    from handoff.config import Settings

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Hub-Signature-256"
# Graph error codes that mean "slow down / try again" (API throttling, transient errors).
_RETRYABLE_CODES = {1, 2, 4, 17, 32, 341, 613}
_ATTACHMENT_TYPES = {"image": "image/*", "video": "video/*", "audio": "audio/*", "file": "application/octet-stream"}


# Attachment kinds that refer to content on the platform rather than carry a file, and how the
# text of a message names them (Messenger `reel`, `ig_reel`, `fallback`, `template`; Instagram
# `story_mention`, `share`, `ig_post`, `ig_reel`).
SHARE_KINDS = {
    "story_mention": "story mention", "share": "shared post", "ig_post": "shared post",
    "reel": "reel", "ig_reel": "reel", "fallback": "shared link", "template": "shared item",
}
# RFC 2483's type for a list of URIs: a link to the shared content, not a file.
SHARE_CONTENT_TYPE = "text/uri-list"


def _object(event: dict, key: str) -> dict:
    value = event[key]
    if not isinstance(value, dict):
        raise TypeError(f"{key} must be an object")
    return value


def _string(data: Any, key: str) -> str:
    """`data[key]` as text; ids may come as numbers. KeyError/TypeError when absent or not scalar."""
    if not isinstance(data, dict):
        raise TypeError("expected an object")
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, (str, int)) or value == "":
        raise TypeError(f"{key} must be a non-empty string")
    return str(value)


def _optional_string(data: dict, key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"{key} must be a string")
    return value


def _party_id(event: dict, key: str) -> str:
    """The id of the event's `sender` / `recipient`; a party named otherwise (the checkbox
    plugin's `{"user_ref": ...}`) has no conversation to join: UnsupportedEvent."""
    party = event.get(key)
    if not isinstance(party, dict) or party.get("id") in (None, ""):
        raise UnsupportedEvent(f"unknown_{key}")
    return _string(party, "id")


def _sent_at(event: dict) -> float | None:
    timestamp = event.get("timestamp")
    return float(timestamp) / 1000 if isinstance(timestamp, (int, float)) and not isinstance(timestamp, bool) else None


def _share_targets(kind: str, payload: dict, item: dict) -> list[tuple[str | None, str | None]]:
    """(URL, title) of each thing a share attachment points to; a template lists several."""
    if kind == "template":
        holder = payload.get("product") if isinstance(payload.get("product"), dict) else payload
        elements = holder.get("elements") if isinstance(holder.get("elements"), list) else []
        targets = []
        for element in elements:
            if isinstance(element, dict):
                action = element.get("default_action") if isinstance(element.get("default_action"), dict) else {}
                url = element.get("url") or action.get("url") or element.get("image_url")
                targets.append((url if isinstance(url, str) else None, _text_or_none(element.get("title"))))
        return targets or [(None, None)]
    url = payload.get("url") or item.get("url")  # older link shares carry url and title beside the payload
    return [(url if isinstance(url, str) else None, _text_or_none(payload.get("title") or item.get("title")))]


def _text_or_none(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return " ".join(value.split()) or None


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


def load_entries(body: bytes, object_type: str) -> list[Any]:
    """The `entry[]` list of a webhook body for `object_type` ([] for another object).

    BadPayload only when the body is not a Meta webhook at all (not JSON, no entry list); what
    each entry holds is judged event by event (`MetaChannel.parse`).
    """
    try:
        data = bodies.loads(body)
    except ValueError as exc:
        raise BadPayload(f"body is not JSON: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("entry"), list):
        raise BadPayload("expected an object with an entry[] list")
    if data.get("object") != object_type:
        log.info("ignoring webhook for object %r", data.get("object"))
        return []
    return data["entry"]


def window_params(capabilities: Capabilities, message: OutboundMessage, now: float | None = None) -> dict[str, Any]:
    """The Send API `messaging_type` (and `tag`) allowed for `message` within the channel's
    `messaging_window_hours` / `human_window_hours`; DeliveryError if none is."""
    last = message.last_customer_message_at
    window, human_window = capabilities.messaging_window_hours, capabilities.human_window_hours
    if last is None or window is None:
        return {"messaging_type": "RESPONSE"}
    age = (time.time() if now is None else now) - last
    if age <= window * 3600:
        return {"messaging_type": "RESPONSE"}
    hours = int(age // 3600)
    if not message.human:
        raise DeliveryError(
            f"the customer's last message was {hours} h ago: outside the {window:g}-hour messaging window, "
            "only a person's reply (HUMAN_AGENT tag) may still be sent",
            retryable=False,
            code="window",
        )
    if human_window is not None and age <= human_window * 3600:
        return {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
    raise DeliveryError(
        f"the customer's last message was {hours} h ago: beyond the {(human_window or 0) / 24:g}-day HUMAN_AGENT window, "
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

    def __init__(self, *, app_secret: str, verify_token: str, token: str, graph_base: str, app_id: str = "") -> None:
        self.app_secret = app_secret
        self.verify_token = verify_token
        self.app_id = str(app_id or "")
        self.graph = GraphClient(graph_base, token)
        self.names = NameCache()
        self._handlers: dict[str, Callable[[dict], list[ParsedItem]]] = {
            "message": self._on_message,
            "message_edit": self._on_edit,
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
            app_id=settings.meta_app_id,
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

    def ack(self) -> web.Response:
        """200 OK: Meta's webhook reference asks for it for every event notification."""
        return web.json_response({"ok": True}, status=200)

    def parse(self, body: bytes, content_type: str = "application/json") -> list[ParsedItem]:
        """The items of a batched webhook body, in order, each event judged on its own.

        An event that cannot be used (a sender given as `user_ref`, missing fields, wrong types,
        an unsupported message) is logged with its ids only, counted in
        `handoff_webhook_items_skipped_total{channel, reason}` and skipped: the rest of the batch
        is still stored. Our own echoes and reactions give nothing. BadPayload only when the body
        is not a Meta webhook at all.
        """
        items: list[ParsedItem] = []
        for entry in load_entries(body, self.object_type):
            events = entry.get("messaging", []) if isinstance(entry, dict) else None
            if not isinstance(events, list):
                self._skip(entry, "malformed_entry")
                continue
            for event in events:
                items.extend(self._parse_event(event))
        return items

    def _parse_event(self, event: Any) -> list[ParsedItem]:
        if not isinstance(event, dict):
            self._skip(event, "malformed_event")
            return []
        kind = next((k for k in self._handlers if k in event), None)
        if kind is None:
            self._skip(event, "unhandled_event")
            return []
        try:
            return self._handlers[kind](event)
        except UnsupportedEvent as exc:
            self._skip(event, str(exc))
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            self._skip(event, f"malformed_{kind}", type(exc).__name__)
        return []

    def _skip(self, event: Any, reason: str, detail: str = "") -> None:
        # Ids only: the event's text and names stay out of the log.
        fields = event if isinstance(event, dict) else {}
        inner = next((fields[k] for k in self._handlers if isinstance(fields.get(k), dict)), {})
        log.warning("%s: skipped an event (%s%s): keys=%s mid=%s", self.name, reason,
                    f", {detail}" if detail else "", sorted(fields), inner.get("mid"))
        metrics.WEBHOOK_ITEMS_SKIPPED.labels(self.name, reason).inc()

    def _inbound(self, event: dict, provider_id: str, text: str, **extra: Any) -> InboundMessage:
        return InboundMessage(
            channel=self.name,
            provider_id=provider_id,
            contact_id=_party_id(event, "sender"),
            text=text,
            sent_at=_sent_at(event),
            raw=event,
            **extra,
        )

    def _on_message(self, event: dict) -> list[ParsedItem]:
        message = _object(event, "message")
        mid = _string(message, "mid")
        if message.get("is_deleted"):  # unsent by the customer (or, echoed, by the business)
            return [MessageDeletion(channel=self.name, provider_id=mid)]
        if message.get("is_echo"):
            return self._on_echo(event, message, mid)
        if message.get("is_unsupported"):
            raise UnsupportedEvent("unsupported_message")
        attachments, lines = self._attachments(message.get("attachments") or [])
        text = _optional_string(message, "text") or "\n".join(lines)
        # Quick-reply payloads and reply_to references stay in `raw`: the conversation is keyed
        # by the contact, so they are not threading data.
        if not text and not attachments:
            raise UnsupportedEvent("empty_message")
        return [self._inbound(event, mid, text, attachments=tuple(attachments))]

    def _on_echo(self, event: dict, message: dict, mid: str) -> list[ParsedItem]:
        """A message the Page / professional account sent: ours, or written in another app.

        With META_APP_ID set, an echo carrying our app id is ours and dropped here. Any other
        echo (another app's id, or no app id: Instagram echoes carry none) becomes an
        OutsideReply, which `handoff.changes.record_outside_reply` drops when it turns out to
        be ours after all (a provider id we hold, or text we have just sent).
        """
        app_id = message.get("app_id")
        app_id = str(app_id) if app_id not in (None, "") else None
        if app_id is not None and app_id == self.app_id:
            return []
        attachments, lines = self._attachments(message.get("attachments") or [])
        text = _optional_string(message, "text") or "\n".join(lines)
        if not text and not attachments:
            return []  # nothing a person wrote (an echoed sender action, an unsupported share)
        return [OutsideReply(
            channel=self.name,
            provider_id=mid,
            contact_id=_party_id(event, "recipient"),
            text=text,
            app_id=app_id,
            attachments=tuple(attachments),
            sent_at=_sent_at(event),
        )]

    def _on_edit(self, event: dict) -> list[ParsedItem]:
        edit = _object(event, "message_edit")
        return [MessageEdit(channel=self.name, provider_id=_string(edit, "mid"), text=_string(edit, "text"))]

    def _attachments(self, raw: Any) -> tuple[list[Attachment], list[str]]:
        """Files, shares and locations as attachments plus one line of text each.

        Files keep their media type. Story mentions, shared posts, reels, links and templates
        are references to content on the platform: `text/uri-list` attachments named by their
        kind, which the desk shows as links and the bot does not answer as a question.
        """
        attachments: list[Attachment] = []
        lines: list[str] = []
        # Lenient: an attachment of an unknown shape is left out, never the customer's words with it.
        for item in raw if isinstance(raw, list) else []:
            kind = item.get("type") if isinstance(item, dict) else None
            payload = (item.get("payload") or {}) if isinstance(item, dict) else None
            if not isinstance(kind, str) or not isinstance(payload, dict):
                log.info("%s: left out an attachment of an unknown shape", self.name)
                continue
            if kind == "location" and isinstance(payload.get("coordinates"), dict):
                coords = payload["coordinates"]
                lines.append(f"Location: {coords.get('lat')}, {coords.get('long')}")
            elif kind in SHARE_KINDS:
                label = SHARE_KINDS[kind]
                for url, title in _share_targets(kind, payload, item):
                    share = Attachment(content_type=SHARE_CONTENT_TYPE, url=url, filename=(title or label.capitalize())[:100])
                    # An Instagram post share comes twice, as `share` and as `ig_post` (with the caption).
                    same = next((i for i, a in enumerate(attachments) if url and a.url == url), None)
                    if same is None:
                        attachments.append(share)
                        lines.append(f"[{label}] {url}" if url else f"[{label}]")
                    elif title:
                        attachments[same] = share
            elif isinstance(payload.get("url"), str):
                content_type = _ATTACHMENT_TYPES.get(kind, "application/octet-stream")
                attachments.append(Attachment(content_type=content_type, url=payload["url"],
                                              filename=_text_or_none(item.get("title"))))
                lines.append(f"[{kind}] {payload['url']}")
            elif _text_or_none(item.get("title")):
                lines.append(str(_text_or_none(item["title"])))
        return attachments, lines

    def _on_postback(self, event: dict) -> list[ParsedItem]:
        postback = _object(event, "postback")
        sender = _party_id(event, "sender")
        text = _optional_string(postback, "title") or _optional_string(postback, "payload") or ""
        # Older postbacks carry no mid; sender + timestamp is unique per click.
        provider_id = _optional_string(postback, "mid") or f"postback:{sender}:{event.get('timestamp')}"
        return [self._inbound(event, provider_id, text)]

    def _on_delivery(self, event: dict) -> list[ParsedItem]:
        mids = _object(event, "delivery").get("mids") or []
        if not isinstance(mids, list):
            raise TypeError("delivery.mids must be a list")
        return [DeliveryUpdate(channel=self.name, provider_id=str(mid), state="delivered") for mid in mids]

    def _on_read(self, event: dict) -> list[ParsedItem]:
        mid = _object(event, "read").get("mid")
        # Messenger's read receipt has only a watermark (a time), no message id to update.
        if not mid:
            return []
        return [DeliveryUpdate(channel=self.name, provider_id=str(mid), state="read")]

    # -- outbound ------------------------------------------------------------------------

    async def send(self, address: Address, message: OutboundMessage) -> str:
        """Send text chunks then attachments, resuming after `message.parts_sent`; the first new message id."""
        params = window_params(self.capabilities, message)
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

    async def typing(self, address: Address, on: bool, name: str | None = None) -> None:
        """Show or hide the typing indicator (`sender_action`; Meta shows no name; best effort:
        failures are logged, not raised)."""
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
