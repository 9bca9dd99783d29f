"""The generic signed HTTP `api` channel (DESIGN.md §6), for integrators.

Inbound: `POST /webhooks/api` with `X-Handoff-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>`
and `{"id", "conversation", "contact": {"id", "name"?}, "text", "attachments"?}`, where each
attachment is `{"url": "https://...", "content_type"?, "filename"?, "size"?}` (the text may be empty
when files come). Outbound: the same signature on a JSON POST to HANDOFF_API_CALLBACK_URL; files an
agent sends arrive as `name: URL` lines in the text, which any receiver can show, and as
`"attachments": [{"url", "filename", "content_type", "size"}]` for receivers that handle files.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, ClassVar

import aiohttp
from aiohttp import web

from handoff import bodies
from handoff.channels.base import (
    BadPayload,
    Capabilities,
    ChannelConfigError,
    DeliveryError,
    InvalidSignature,
    parse_retry_after,
)
from handoff.config import Settings
from handoff.media import attachment_json
from handoff.schema import Address, Attachment, InboundMessage, OutboundMessage

SIGNATURE_HEADER = "X-Handoff-Signature"
MAX_ID = 255
MAX_TEXT = 10_000
MAX_ATTACHMENTS = 10
MAX_URL = 2048


def sign(secret: str, body: bytes) -> str:
    """The signature header value for a body: `sha256=<hex>`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class ApiChannel:
    """Signed JSON in, signed JSON callbacks out."""

    name: ClassVar[str] = "api"
    capabilities: ClassVar[Capabilities] = Capabilities(max_length=MAX_TEXT)

    def __init__(self, secret: str, callback_url: str = "") -> None:
        self.secret = secret
        self.callback_url = callback_url
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiChannel | None:
        """On when HANDOFF_API_SECRET is set; the callback URL needs the secret to sign with."""
        if not settings.api_secret:
            if settings.api_callback_url:
                raise ChannelConfigError("HANDOFF_API_CALLBACK_URL is set but HANDOFF_API_SECRET is missing")
            return None
        return cls(settings.api_secret, settings.api_callback_url)

    def sign_headers(self, body: bytes) -> dict[str, str]:
        """The headers a sender attaches to a body."""
        return {SIGNATURE_HEADER: sign(self.secret, body), "Content-Type": "application/json"}

    def sign(self, body: bytes, url: str = "", content_type: str = "application/json") -> dict[str, str]:
        """The headers an integrator would send with `body` (used by `handoff replay`)."""
        return self.sign_headers(body)

    async def verify(self, request: web.Request, body: bytes) -> None:
        """Reject a missing or forged signature (constant-time compare)."""
        given = request.headers.get(SIGNATURE_HEADER, "")
        if not given or not hmac.compare_digest(given.strip().lower().encode(), sign(self.secret, body).encode()):
            raise InvalidSignature("missing or invalid X-Handoff-Signature")

    def parse(self, body: bytes, content_type: str = "application/json") -> list[InboundMessage]:
        """One message per request; every field is checked."""
        try:
            data = bodies.loads(body)
        except ValueError as exc:
            raise BadPayload(f"body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise BadPayload("body must be a JSON object")
        message_id = _text_field(data, "id", MAX_ID)
        conversation = _text_field(data, "conversation", MAX_ID)
        contact = data.get("contact")
        if not isinstance(contact, dict):
            raise BadPayload("contact must be an object with an id")
        contact_id = _text_field(contact, "id", MAX_ID, where="contact.")
        name = contact.get("name")
        if name is not None and not isinstance(name, str):
            raise BadPayload("contact.name must be a string")
        attachments = _attachments(data.get("attachments"))
        text = data.get("text", "" if attachments else None)
        if not isinstance(text, str) or not (text.strip() or attachments):
            raise BadPayload("text must be a non-empty string (or empty with attachments)")
        if len(text) > MAX_TEXT:
            raise BadPayload(f"text is longer than {MAX_TEXT} characters")
        return [
            InboundMessage(
                channel=self.name,
                provider_id=message_id,
                contact_id=contact_id,
                conversation_key=conversation,
                contact_name=(name or None) and name[:200],
                text=text,
                attachments=attachments,
                raw=data,
            )
        ]

    async def send(self, address: Address, message: OutboundMessage) -> str:
        """POST the message, signed, to the callback URL."""
        if not self.callback_url:
            raise DeliveryError("HANDOFF_API_CALLBACK_URL is not set", retryable=False)
        payload: dict[str, Any] = {
            "id": str(message.id),
            "conversation": address.conversation_key,
            "kind": message.kind,
            "text": message.text,
        }
        if message.notice:
            payload["status"] = message.notice
        if message.author_name:
            payload["author"] = message.author_name
        if message.attachments:
            payload["attachments"] = [attachment_json(a) for a in message.attachments]
        body = json.dumps(payload).encode()
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        try:
            async with self._session.post(self.callback_url, data=body, headers=self.sign_headers(body)) as resp:
                if resp.status < 300:
                    return f"api-out-{message.id}"
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                retryable = resp.status == 429 or resp.status >= 500
                raise DeliveryError(f"callback answered HTTP {resp.status}", retryable=retryable,
                                    retry_after=retry_after, code=str(resp.status))
        except aiohttp.ClientError as exc:
            raise DeliveryError(f"callback unreachable: {exc}", retryable=True) from exc

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()


def _text_field(data: dict[str, Any], key: str, limit: int, where: str = "") -> str:
    value = data.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise BadPayload(f"{where}{key} must be a non-empty string")
    if len(value) > limit:
        raise BadPayload(f"{where}{key} is longer than {limit} characters")
    return value


def _attachments(value: Any) -> tuple[Attachment, ...]:
    """The optional `attachments` list, each checked: an http(s) URL and optional name, type, size."""
    if value is None:
        return ()
    if not isinstance(value, list) or len(value) > MAX_ATTACHMENTS:
        raise BadPayload(f"attachments must be a list of at most {MAX_ATTACHMENTS} objects")
    found = []
    for index, item in enumerate(value):
        where = f"attachments[{index}]."
        if not isinstance(item, dict):
            raise BadPayload(f"attachments[{index}] must be an object with a url")
        url = item.get("url")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")) or len(url) > MAX_URL:
            raise BadPayload(f"{where}url must be an http(s) URL of at most {MAX_URL} characters")
        content_type, filename, size = item.get("content_type"), item.get("filename"), item.get("size")
        if content_type is not None and not isinstance(content_type, str):
            raise BadPayload(f"{where}content_type must be a string")
        if filename is not None and not isinstance(filename, str):
            raise BadPayload(f"{where}filename must be a string")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise BadPayload(f"{where}size must be a whole number of bytes")
        found.append(Attachment(content_type=(content_type or "application/octet-stream")[:100], url=url,
                                filename=filename[:200] if filename else None, size=size))
    return tuple(found)
