"""The Telegram channel: a bot talking to customers through the Telegram Bot API.

Follows core.telegram.org/bots/api:
- setWebhook with `secret_token`: every update is POSTed to `/webhooks/telegram` with the header
  `X-Telegram-Bot-Api-Secret-Token` (compared in constant time; the channel refuses to start
  without `TELEGRAM_WEBHOOK_SECRET`). A body is one `Update` (`update_id` and one of `message`,
  `edited_message`, ...); Telegram retries an update until it gets a 2xx, with the same
  `update_id` and message, so the message's id (`<chat.id>:<message_id>`) is stored once.
- Message: `message_id`, `from` (User: `id`, `first_name`, `last_name`, `username`), `chat`
  (`id`), `date` (Unix seconds), `text`, or `caption` with `photo` (PhotoSize sizes, largest
  last), `document` / `audio` / `voice` / `video` (`file_id`, `file_name`, `mime_type`,
  `file_size`), or `location` (`latitude`, `longitude`). `edited_message` is a MessageEdit.
- sendMessage / sendPhoto / sendDocument (files by URL: Telegram fetches our media URLs),
  sendChatAction `typing`; errors `{"ok": false, "error_code", "description", "parameters":
  {"retry_after"}}` (see telegram_api).

Files customers send arrive as file ids that only the bot token can download, and the token
must never reach an agent's browser or the database. A file is therefore stored as a URL of our
own, `<public URL>/telegram/files/<file_id>?sig=<HMAC of the id>`, which this channel serves by
downloading the file from Telegram (getFile) as it is asked for; the signature keeps the route
from fetching ids nobody sent us.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import mimetypes
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from aiohttp import web

from handoff import bodies, metrics
from handoff.channels.base import (
    BadPayload,
    Capabilities,
    ChannelConfigError,
    DeliveryError,
    InvalidSignature,
    ParsedItem,
    channel_settings,
    env_setting,
    send_in_parts,
    truncate_for,
)
from handoff.channels.telegram_api import BotApi
from handoff.media import CHUNK_BYTES, INLINE_TYPES
from handoff.schema import Address, Attachment, InboundMessage, MessageEdit, OutboundMessage

if TYPE_CHECKING:
    from handoff.config import Settings

log = logging.getLogger(__name__)

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
FILES_PATH = "/telegram/files/"
# Message fields that carry one file, and the type assumed when Telegram names none.
FILE_KINDS = {"document": "application/octet-stream", "audio": "audio/mpeg", "voice": "audio/ogg",
              "video": "video/mp4"}


@dataclass(frozen=True)
class TelegramSettings:
    """The channel's environment variables (README, Configuration)."""

    bot_token: str = env_setting("TELEGRAM_BOT_TOKEN")
    webhook_secret: str = env_setting("TELEGRAM_WEBHOOK_SECRET")
    api_base: str = env_setting("TELEGRAM_API_BASE", "https://api.telegram.org")


class TelegramChannel:
    """Telegram bot: verify and parse updates, send messages and files, show typing, serve files."""

    name: ClassVar[str] = "telegram"
    capabilities: ClassVar[Capabilities] = Capabilities(max_length=4096, attachments=True)

    def __init__(self, config: TelegramSettings, public_url: str) -> None:
        self.secret = config.webhook_secret
        self.public_url = public_url.rstrip("/")
        self.api = BotApi(config.api_base, config.bot_token)

    @classmethod
    def from_settings(cls, settings: Settings) -> TelegramChannel | None:
        """On when TELEGRAM_BOT_TOKEN is set; ChannelConfigError without TELEGRAM_WEBHOOK_SECRET
        (updates could not be authenticated), or with the secret but no token."""
        config = channel_settings(TelegramSettings, settings)
        if not config.bot_token and not config.webhook_secret:
            return None
        missing = [name for name, value in (("TELEGRAM_BOT_TOKEN", config.bot_token),
                                            ("TELEGRAM_WEBHOOK_SECRET", config.webhook_secret)) if not value]
        if missing:
            raise ChannelConfigError(f"telegram: {', '.join(missing)} missing")
        return cls(config, settings.public_url)

    async def verify(self, request: web.Request, body: bytes) -> None:
        """Raise InvalidSignature unless X-Telegram-Bot-Api-Secret-Token is the webhook secret."""
        given = request.headers.get(SECRET_HEADER, "")
        if not given or not hmac.compare_digest(given.encode(), self.secret.encode()):
            raise InvalidSignature(f"missing or invalid {SECRET_HEADER}")

    def sign(self, body: bytes, url: str = "", content_type: str = "application/json") -> dict[str, str]:
        """The headers Telegram sends with an update (used by `handoff replay`)."""
        return {SECRET_HEADER: self.secret, "Content-Type": "application/json"}

    def parse(self, body: bytes, content_type: str = "application/json") -> list[ParsedItem]:
        """The message or edit in one Update; other updates, and messages with nothing we can
        show (stickers, polls...), are skipped and counted."""
        try:
            update = bodies.loads(body)
        except ValueError as exc:
            raise BadPayload(f"body is not valid JSON: {exc}") from None
        if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
            raise BadPayload("body must be a Telegram Update with an update_id")
        try:
            if isinstance(update.get("message"), dict):
                return self._message(update["message"])
            if isinstance(update.get("edited_message"), dict):
                return self._edit(update["edited_message"])
            reason = "unhandled_update"
        except (KeyError, TypeError, ValueError) as exc:
            reason = f"malformed_update:{type(exc).__name__}"
        log.warning("telegram: skipped update %s (%s): keys=%s", update["update_id"], reason, sorted(update))
        metrics.WEBHOOK_ITEMS_SKIPPED.labels(self.name, reason.split(":")[0]).inc()
        return []

    def _message(self, message: dict[str, Any]) -> list[ParsedItem]:
        sender = message["from"]
        attachments = self._attachments(message)
        text = message.get("text") or message.get("caption") or ""
        location = message.get("location")
        if isinstance(location, dict):
            text = f"Location: {float(location['latitude'])}, {float(location['longitude'])}"
        if not isinstance(text, str) or not (text or attachments):
            raise ValueError("no text, file or location")
        name = " ".join(str(sender[k]) for k in ("first_name", "last_name") if sender.get(k)) or sender.get("username")
        return [InboundMessage(
            channel=self.name,
            provider_id=_message_id(message),
            contact_id=str(int(sender["id"])),
            conversation_key=str(int(message["chat"]["id"])),
            contact_name=name or None,
            text=text,
            attachments=tuple(attachments),
            sent_at=float(message["date"]) if isinstance(message.get("date"), int) else None,
            raw=message,
        )]

    def _edit(self, message: dict[str, Any]) -> list[ParsedItem]:
        text = message.get("text") or message.get("caption")
        if not isinstance(text, str) or not text:
            raise ValueError("an edit without text")
        return [MessageEdit(channel=self.name, provider_id=_message_id(message), text=text)]

    def _attachments(self, message: dict[str, Any]) -> list[Attachment]:
        found = []
        photo = message.get("photo")
        if isinstance(photo, list) and photo:
            largest = photo[-1]  # PhotoSize list, smallest first
            found.append(Attachment(content_type="image/jpeg", url=self.file_url(largest["file_id"]),
                                    filename="photo.jpg", size=largest.get("file_size")))
        for kind, default_type in FILE_KINDS.items():
            item = message.get(kind)
            if isinstance(item, dict):
                found.append(Attachment(content_type=item.get("mime_type") or default_type,
                                        url=self.file_url(item["file_id"]), filename=item.get("file_name") or kind,
                                        size=item.get("file_size")))
        return found

    def file_url(self, file_id: str) -> str:
        """Our URL for a file the customer sent (served by `serve_file`; no token in it)."""
        return f"{self.public_url}{FILES_PATH}{quote(file_id, safe='')}?sig={self._file_signature(file_id)}"

    def _file_signature(self, file_id: str) -> str:
        return hmac.new(self.secret.encode(), file_id.encode(), hashlib.sha256).hexdigest()[:32]

    async def send(self, address: Address, message: OutboundMessage) -> str:
        """sendMessage for each text part, then sendPhoto (images) or sendDocument per file, to the
        conversation's chat; resumes after `message.parts_sent`. The id is `<chat id>:<message_id>`."""
        chat_id = address.conversation_key or address.contact_id
        parts: list[tuple[str, dict[str, Any]]] = [
            ("sendMessage", {"chat_id": chat_id, "text": chunk})
            for chunk in (truncate_for(self.capabilities, message.text) if message.text else [])]
        for file in message.attachments:
            if file.url:
                method, field = ("sendPhoto", "photo") if file.content_type in INLINE_TYPES else ("sendDocument", "document")
                parts.append((method, {"chat_id": chat_id, field: file.url}))
        if not parts:
            raise DeliveryError("nothing to send: no text and no file with a URL", retryable=False)

        async def send_part(part: tuple[str, dict[str, Any]]) -> str:
            result = await self.api.call(*part)
            if not isinstance(result, dict) or not isinstance(result.get("message_id"), int):
                raise DeliveryError(f"Telegram {part[0]}: the answer names no message_id", retryable=False)
            return f"{chat_id}:{result['message_id']}"

        return await send_in_parts(parts, message, send_part)

    async def typing(self, address: Address, on: bool, name: str | None = None) -> None:
        """sendChatAction `typing` (Telegram shows it for 5 s or until the next message, so `on=False`
        sends nothing; no name is shown). Best effort: failures are logged, not raised."""
        if not on:
            return
        try:
            await self.api.call("sendChatAction", {"chat_id": address.conversation_key or address.contact_id,
                                                   "action": "typing"})
        except DeliveryError as exc:
            log.info("telegram: sendChatAction failed: %s", exc)

    def routes(self) -> list[web.RouteDef]:
        """GET /telegram/files/{file_id}?sig=…: a file a customer sent, fetched from Telegram."""
        return [web.get(FILES_PATH + "{file_id}", self.serve_file)]

    async def serve_file(self, request: web.Request) -> web.StreamResponse:
        """Stream the file from Telegram: images inline, anything else as a download, sandboxed
        like the media store; 404 for a wrong signature, 502 when Telegram does not give it."""
        file_id = request.match_info["file_id"]
        if not hmac.compare_digest(request.query.get("sig", "").encode(), self._file_signature(file_id).encode()):
            return web.json_response({"error": "no such file"}, status=404)
        try:
            path, upstream = await self.api.open_file(file_id)
        except DeliveryError as exc:
            return web.json_response({"error": str(exc)}, status=502)
        try:
            content_type = mimetypes.guess_type(path)[0] or ""
            inline = content_type in INLINE_TYPES
            filename = re.sub(r"[^A-Za-z0-9._-]", "_", path.rsplit("/", 1)[-1])
            response = web.StreamResponse(headers={
                "Content-Type": content_type if inline else "application/octet-stream",
                "Content-Disposition": f'{"inline" if inline else "attachment"}; filename="{filename}"',
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "sandbox; default-src 'none'",
                "Cache-Control": "private, max-age=3600",
            })
            await response.prepare(request)
            async for chunk in upstream.content.iter_chunked(CHUNK_BYTES):
                await response.write(chunk)
            await response.write_eof()
            return response
        finally:
            upstream.release()

    async def close(self) -> None:
        """Close the Bot API session."""
        await self.api.close()


def _message_id(message: dict[str, Any]) -> str:
    """A message's id across chats: Telegram numbers messages per chat."""
    return f"{int(message['chat']['id'])}:{int(message['message_id'])}"
