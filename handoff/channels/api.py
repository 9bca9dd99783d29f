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
import logging
from typing import Annotated, Any, ClassVar

import aiohttp
from aiohttp import web
from pydantic import AfterValidator, BaseModel, Field, StrictInt, StrictStr, StringConstraints, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from handoff import bodies
from handoff.channels.base import (
    BadPayload,
    Capabilities,
    ChannelConfigError,
    DeliveryError,
    InvalidSignature,
    NotDelivered,
    parse_retry_after,
)
from handoff.config import Settings
from handoff.media import attachment_json
from handoff.schema import Address, Attachment, InboundMessage, OutboundMessage

log = logging.getLogger(__name__)

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
        if not settings.api_callback_url:
            log.warning("api channel: HANDOFF_API_CALLBACK_URL is not set: replies are kept on the "
                        "timeline (marked skipped), not posted anywhere")
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
        """One message per request, validated as `ApiMessage`; BadPayload naming the first field at fault."""
        try:
            data = bodies.loads(body)
        except ValueError as exc:
            raise BadPayload(f"body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise BadPayload("body must be a JSON object")
        try:
            message = ApiMessage.model_validate(data)
        except ValidationError as exc:
            raise BadPayload(_first_error(exc)) from None
        name = message.contact.name
        return [
            InboundMessage(
                channel=self.name,
                provider_id=message.id,
                contact_id=message.contact.id,
                conversation_key=message.conversation,
                contact_name=(name or None) and name[:200],
                text=message.text or "",
                attachments=tuple(a.attachment() for a in message.attachments or ()),
                raw=data,
            )
        ]

    async def send(self, address: Address, message: OutboundMessage) -> str:
        """POST the message, signed, to the callback URL."""
        if not self.callback_url:
            raise NotDelivered("not sent: HANDOFF_API_CALLBACK_URL is not set")
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


def _identifier(value: str | int) -> str:
    """An id or key: a non-blank string (a whole number is taken as its digits) of at most MAX_ID characters."""
    text = str(value)
    if not text.strip():
        raise PydanticCustomError("blank", "must be a non-empty string")
    if len(text) > MAX_ID:
        raise PydanticCustomError("too_long", "is longer than {limit} characters", {"limit": MAX_ID})
    return text


Identifier = Annotated[StrictStr | StrictInt, AfterValidator(_identifier)]


class ApiContact(BaseModel):
    """`contact`: the customer's id in the integrator's system and an optional display name."""

    id: Identifier
    name: StrictStr | None = None


class ApiAttachment(BaseModel):
    """One of `attachments`: an http(s) URL and an optional type, file name and size in bytes."""

    url: Annotated[StrictStr, StringConstraints(pattern=r"^https?://", max_length=MAX_URL)]
    content_type: StrictStr | None = None
    filename: StrictStr | None = None
    size: Annotated[StrictInt, Field(ge=0)] | None = None

    def attachment(self) -> Attachment:
        """The attachment as the core stores it (missing type: application/octet-stream)."""
        return Attachment(content_type=(self.content_type or "application/octet-stream")[:100], url=self.url,
                          filename=self.filename[:200] if self.filename else None, size=self.size)


class ApiMessage(BaseModel):
    """The body of `POST /webhooks/api`; unknown fields are ignored (kept in `raw`)."""

    id: Identifier
    conversation: Identifier
    contact: ApiContact
    attachments: Annotated[list[ApiAttachment], Field(max_length=MAX_ATTACHMENTS)] | None = None
    text: Any = None

    @model_validator(mode="after")
    def _text_or_files(self) -> ApiMessage:
        text = self.text if "text" in self.model_fields_set else ("" if self.attachments else None)
        if not isinstance(text, str) or not (text.strip() or self.attachments):
            raise PydanticCustomError("text", "text must be a non-empty string (or empty with attachments)")
        if len(text) > MAX_TEXT:
            raise PydanticCustomError("text", "text is longer than {limit} characters", {"limit": MAX_TEXT})
        return self


_ATTACHMENT_FIELD_ERRORS = {
    "url": f"must be an http(s) URL of at most {MAX_URL} characters",
    "content_type": "must be a string",
    "filename": "must be a string",
    "size": "must be a whole number of bytes",
}


def _first_error(error: ValidationError) -> str:
    """The message integrators have always been sent for the first problem (`contact.id must be a
    non-empty string`, `attachments[0].url must be an http(s) URL of at most 2048 characters`)."""
    first = error.errors(include_url=False)[0]
    loc = [part for part in first["loc"] if not (isinstance(part, str) and (part in {"str", "int"} or "[" in part))]
    kind = first["type"]
    match loc:
        case []:
            return str(first["msg"])  # the text rule, checked on the whole message
        case ["contact"]:
            return "contact must be an object with an id"
        case ["contact", "name"]:
            return "contact.name must be a string"
        case ["attachments"]:
            return f"attachments must be a list of at most {MAX_ATTACHMENTS} objects"
        case ["attachments", int(index)]:
            return f"attachments[{index}] must be an object with a url"
        case ["attachments", int(index), str(field), *_]:
            return f"attachments[{index}].{field} {_ATTACHMENT_FIELD_ERRORS[field]}"
    where = ".".join(str(part) for part in loc)
    return f"{where} {first['msg']}" if kind in {"blank", "too_long"} else f"{where} must be a non-empty string"
