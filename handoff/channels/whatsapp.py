"""WhatsApp channel through Twilio's Programmable Messaging.

Docs followed: twilio.com/docs/messaging/guides/webhook-request (the form-encoded inbound
webhook: Body, From "whatsapp:+…", ProfileName, WaId, MessageSid, NumMedia/MediaUrlN/
MediaContentTypeN, Latitude/Longitude/Address/Label, ButtonText), twilio.com/docs/messaging/
guides/track-outbound-message-status (status callbacks: MessageStatus, ErrorCode),
twilio.com/docs/usage/webhooks/webhooks-security (X-Twilio-Signature over the public URL and
the sorted form parameters, checked with the twilio package's RequestValidator) and
twilio.com/docs/whatsapp/key-concepts (the 24-hour customer service window: outside it free
text fails with error 63016 and only approved templates, sent by Content SID, are delivered).

Outside the window a message is sent as the template `TWILIO_TEMPLATE_SID` with the text as
its variable {{1}}; without a template it fails visibly (non-retryable, code 63016).
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import json
import logging
import time
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import aiohttp
from aiohttp import web
from multidict import MultiDict
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

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
MAX_MEDIA = 10  # a WhatsApp message carries at most 10 media (MediaUrl0..MediaUrl9)

SIGNATURE_HEADER = "X-Twilio-Signature"
WEBHOOK_PATH = "/webhooks/whatsapp"
_STATES = {
    "accepted": "queued", "scheduled": "queued", "queued": "queued", "sending": "queued",
    "sent": "sent", "delivered": "delivered", "read": "read",
    "failed": "failed", "undelivered": "undelivered", "canceled": "failed",
}
_ERRORS = {
    "63016": "outside the 24-hour WhatsApp window: only an approved template can be sent",
    "21211": "the phone number is not valid",
    "63003": "the number is not reachable on WhatsApp",
    "63024": "the recipient is not a valid WhatsApp user",
}
# The response headers of the last Twilio call made in the current task (for Retry-After).
_LAST_HEADERS: contextvars.ContextVar[Any] = contextvars.ContextVar("twilio_last_headers", default=None)


class _HttpClient(AsyncTwilioHttpClient):
    """Twilio's async HTTP client, remembering response headers (TwilioRestException drops them)."""

    async def request(self, method: str, url: str, *args: Any, auth: Any = None, headers: Any = None, **kwargs: Any) -> Any:
        if auth is not None:
            # aiohttp deprecates its BasicAuth object, which twilio still builds: send the header.
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            headers = {**(headers or {}), "Authorization": f"Basic {token}"}
        response = await super().request(method, url, *args, headers=headers, **kwargs)
        _LAST_HEADERS.set(response.headers)
        return response


def _number(address: str) -> str:
    return address.removeprefix("whatsapp:")


def _first(value: str | None) -> str | None:
    return value.split(",")[0].strip() if value else None


class WhatsAppChannel:
    """WhatsApp conversations with customers through a Twilio WhatsApp sender."""

    name: ClassVar[str] = "whatsapp"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_length=1600, attachments=True, messaging_window_hours=24, delivery_receipts=True
    )
    send_timeout: float = 15.0

    def __init__(
        self,
        *,
        account_sid: str,
        auth_token: str,
        number: str,
        public_url: str,
        api_base: str = "",
        template_sid: str = "",
    ) -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.number = _number(number)
        self.public_url = public_url.rstrip("/")
        self.api_base = api_base.rstrip("/")
        self.template_sid = template_sid
        self.validator = RequestValidator(auth_token)
        self._client: Client | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> WhatsAppChannel | None:
        """The channel when Twilio is configured; None when off; ChannelConfigError when partial."""
        required = {
            "TWILIO_ACCOUNT_SID": settings.twilio_account_sid,
            "TWILIO_AUTH_TOKEN": settings.twilio_auth_token,
            "TWILIO_WHATSAPP_NUMBER": settings.twilio_whatsapp_number,
        }
        if not any(required.values()):
            return None
        missing = [env for env, value in required.items() if not value]
        if missing:
            raise ChannelConfigError(f"the whatsapp channel needs {', '.join(missing)}")
        return cls(
            account_sid=settings.twilio_account_sid,
            auth_token=settings.twilio_auth_token,
            number=settings.twilio_whatsapp_number,
            public_url=settings.public_url,
            api_base=settings.twilio_api_base,
            template_sid=settings.twilio_template_sid,
        )

    # -- inbound -------------------------------------------------------------------------

    def _urls(self, request: web.Request) -> list[str]:
        """The public URLs Twilio may have signed: settings, then X-Forwarded-* from the proxy."""
        urls = [self.public_url + request.path_qs]
        proto = _first(request.headers.get("X-Forwarded-Proto"))
        host = _first(request.headers.get("X-Forwarded-Host"))
        if proto or host:
            base = urlsplit(self.public_url)
            prefix = base.path.rstrip("/")
            urls.append(f"{proto or base.scheme}://{host or base.netloc}{prefix}{request.path_qs}")
        return urls

    async def verify(self, request: web.Request, body: bytes) -> None:
        """Raise InvalidSignature unless X-Twilio-Signature signs the public URL and the form."""
        signature = request.headers.get(SIGNATURE_HEADER)
        if not signature:
            raise InvalidSignature(f"missing {SIGNATURE_HEADER}")
        try:
            params = MultiDict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except UnicodeDecodeError:
            raise InvalidSignature("body is not UTF-8 form data") from None
        for url in self._urls(request):
            if self.validator.validate(url, params, signature):
                return
        raise InvalidSignature(f"{SIGNATURE_HEADER} does not match {self._urls(request)[0]}")

    def sign(self, body: bytes, url: str, content_type: str = "application/x-www-form-urlencoded") -> dict[str, str]:
        """The headers Twilio would send when posting `body` to `url` (replay and tests)."""
        params = MultiDict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        return {
            "Content-Type": content_type,
            SIGNATURE_HEADER: self.validator.compute_signature(url, params),
            "I-Twilio-Idempotency-Token": "replay",
            "User-Agent": "TwilioProxy/1.1",
        }

    def ack(self) -> web.Response:
        """Twilio expects TwiML: an empty <Response/> sends no automatic reply."""
        return web.Response(
            text='<?xml version="1.0" encoding="UTF-8"?><Response/>', content_type="text/xml"
        )

    def parse(self, body: bytes, content_type: str = "application/x-www-form-urlencoded") -> list[ParsedItem]:
        """An inbound message or a status callback from a form body; unknown forms give []."""
        try:
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=bool(body)))
        except (UnicodeDecodeError, ValueError) as exc:
            raise BadPayload(f"body is not form data: {exc}") from None
        sid = form.get("MessageSid") or form.get("SmsSid")
        if not sid:
            raise BadPayload("form has no MessageSid")
        status = form.get("MessageStatus") or ""
        if status and status != "received":
            return self._status(sid, status, form)
        if not form.get("From"):
            raise BadPayload("form has no From")
        return [self._message(sid, form)]

    def _status(self, sid: str, status: str, form: dict[str, str]) -> list[ParsedItem]:
        state = _STATES.get(status)
        if state is None:
            log.info("whatsapp: ignoring status %r for %s", status, sid)
            return []
        code = form.get("ErrorCode") or None
        error = form.get("ErrorMessage") or (_ERRORS.get(code, f"Twilio error {code}") if code else None)
        return [DeliveryUpdate(channel=self.name, provider_id=sid, state=state, error_code=code, error=error)]

    def _message(self, sid: str, form: dict[str, str]) -> InboundMessage:
        attachments = []
        # NumMedia counts the MediaUrlN fields; reading the fields themselves needs no trust in the count.
        for i in range(MAX_MEDIA):
            url = form.get(f"MediaUrl{i}")
            if url:
                content_type = form.get(f"MediaContentType{i}") or "application/octet-stream"
                attachments.append(Attachment(content_type=content_type, url=url))
        text = form.get("Body") or form.get("ButtonText") or ""
        if form.get("Latitude") and form.get("Longitude"):
            place = ", ".join(p for p in (form.get("Label"), form.get("Address")) if p)
            where = f"Location: {form['Latitude']}, {form['Longitude']}" + (f" ({place})" if place else "")
            text = f"{text}\n{where}" if text else where
        return InboundMessage(
            channel=self.name,
            provider_id=sid,
            contact_id=_number(form["From"]),
            contact_name=form.get("ProfileName") or None,
            text=text,
            attachments=tuple(attachments),
            raw=form,
        )

    # -- outbound ------------------------------------------------------------------------

    def client(self) -> Client:
        """The twilio REST client (async HTTP), pointed at TWILIO_API_BASE when set."""
        if self._client is None:
            client = Client(self.account_sid, self.auth_token, http_client=_HttpClient())
            if self.api_base:
                client.edge = client.region = None
                client.api.base_url = self.api_base  # the Api domain builds every Messages URL from it
            self._client = client
        return self._client

    async def send(self, address: Address, message: OutboundMessage) -> str:
        """Send text chunks (media on the last), resuming after `message.parts_sent`; or,
        outside the 24-hour window, the configured template when nothing was sent yet."""
        last, window = message.last_customer_message_at, self.capabilities.messaging_window_hours
        if last is not None and window is not None and time.time() - last > window * 3600 and not message.parts_sent:
            return await self._send_template(address, message, reason=f"last customer message {int((time.time() - last) // 3600)} h ago")
        media = [a.url for a in message.attachments if a.url]
        chunks = truncate_for(self.capabilities, message.text) or [""]
        parts: list[dict[str, Any]] = [{"body": chunk} for chunk in chunks]
        if media:
            parts[-1]["media_url"] = media
        try:
            return await send_in_parts(parts, message, lambda params: self._create(address, params))
        except DeliveryError as exc:
            if exc.code == "63016" and exc.parts_sent == 0:
                return await self._send_template(address, message, reason="Twilio error 63016")
            raise

    async def _send_template(self, address: Address, message: OutboundMessage, *, reason: str) -> str:
        if not self.template_sid:
            raise DeliveryError(
                f"not sent: outside the 24-hour WhatsApp window ({reason}) and no approved template "
                "is configured (TWILIO_TEMPLATE_SID); the customer must write first",
                retryable=False,
                code="63016",
            )
        variables = json.dumps({"1": message.text[: self.capabilities.max_length]})
        return await self._create(address, {"content_sid": self.template_sid, "content_variables": variables})

    async def _create(self, address: Address, params: dict[str, Any]) -> str:
        _LAST_HEADERS.set(None)
        try:
            # asyncio.timeout (not wait_for) keeps this task's context, where _LAST_HEADERS is set.
            async with asyncio.timeout(self.send_timeout):
                created = await self.client().messages.create_async(
                    to=f"whatsapp:{address.contact_id}",
                    from_=f"whatsapp:{self.number}",
                    status_callback=self.public_url + WEBHOOK_PATH,
                    **params,
                )
        except TwilioRestException as exc:
            raise self._error(exc) from exc
        except asyncio.TimeoutError as exc:
            raise DeliveryError("Twilio did not answer in time", retryable=True, code="timeout") from exc
        except (aiohttp.ClientError, TwilioException, OSError) as exc:
            raise DeliveryError(f"Twilio unreachable: {exc!r}", retryable=True, code="network") from exc
        return str(created.sid)

    def _error(self, exc: TwilioRestException) -> DeliveryError:
        code = str(exc.code) if exc.code is not None else str(exc.status)
        reason = _ERRORS.get(code) or exc.msg or f"HTTP {exc.status}"
        headers = _LAST_HEADERS.get() or {}
        retry_after = None
        try:
            retry_after = parse_retry_after(headers.get("Retry-After"))
        except ValueError:
            pass
        if exc.status == 429 or code == "20429" or exc.status >= 500:
            return DeliveryError(f"Twilio: {reason}", retryable=True, retry_after=retry_after, code=code)
        return DeliveryError(f"Twilio error {code}: {reason}", retryable=False, code=code)

    async def close(self) -> None:
        """Close the twilio HTTP session."""
        if self._client is not None:
            await self._client.http_client.close()
            self._client = None
