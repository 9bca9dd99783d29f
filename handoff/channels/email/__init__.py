"""The email channel: IMAP in (a pull loop started by the core), SMTP out.

Mail arrives through `imap.ImapLoop` (not through a webhook: `verify` refuses every request),
is normalized by `parse.parse_email` and handed to the core's `deliver`; replies leave
through `smtp.send_message` with our own Message-ID, which the core stores as the provider
id so the customer's answer threads back into the same conversation.

Settings: IMAP_HOST/PORT/USER/PASSWORD (IMAP_TLS, default on), SMTP_HOST/PORT/USER/PASSWORD
(SMTP_TLS = starttls | tls | none), HANDOFF_EMAIL_FROM ("Acme Support <help@acme.test>") and
HANDOFF_EMAIL_CA_FILE (a PEM file of CAs trusted besides the system's, for servers with a
private CA; certificates are always verified).
Files from our media store (what agents attach) travel inside the email, up to
MAX_ATTACHED_BYTES per message; any other file travels as a link. Files customers email
(attachments, inline `cid:` images, attached emails) are saved into the media store, up to
HANDOFF_EMAIL_MAX_ATTACHMENT_BYTES each, and stored with their `/media/…` URL; a larger one is
listed without a URL, noted "not kept: too large".

One instance at a time reads the mailbox (a database lease, `imap.ImapLoop`), so several
instances do not fetch every email each; IMAP_LEASE_TTL seconds after the reader dies another
takes over. The bot sends at most HANDOFF_EMAIL_BOT_REPLIES_PER_HOUR replies to one address in
any hour (`CapsBotReplies`), so not even a responder that ignores RFC 3834 can loop with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, ClassVar

from aiohttp import web

from handoff.channels.base import (
    Capabilities,
    ChannelConfigError,
    DeliveryError,
    InvalidSignature,
    ParsedItem,
)
from handoff.channels.email.imap import ImapConfig, ImapLoop, Unprocessable
from handoff.channels.email.parse import parse_email
from handoff.channels.email.smtp import TLS_MODES, SmtpConfig, build_message, send_message
from handoff.channels.email.tls import client_context
from handoff.lease import Lease
from handoff.media import MediaStore, StoredFile
from handoff.schema import Address, Attachment, InboundMessage, OutboundMessage

if TYPE_CHECKING:
    from handoff.config import Settings

log = logging.getLogger(__name__)

MAX_ATTACHED_BYTES = 20 * 1024 * 1024
TOO_LARGE = "not kept: too large"
Deliver = Callable[[ParsedItem], Awaitable[object]]

# setting attribute -> environment variable, for error messages
_REQUIRED = {
    "imap_host": "IMAP_HOST",
    "imap_user": "IMAP_USER",
    "imap_password": "IMAP_PASSWORD",
    "smtp_host": "SMTP_HOST",
    "email_from": "HANDOFF_EMAIL_FROM",
}
_OPTIONAL = {"smtp_user": "SMTP_USER", "smtp_password": "SMTP_PASSWORD"}


class EmailChannel:
    """Customer email over IMAP and SMTP, threaded by Message-ID."""

    name: ClassVar[str] = "email"
    capabilities: ClassVar[Capabilities] = Capabilities(max_length=100_000, attachments=True, notice_style="mail")
    bot_replies_per_hour: int = 10  # CapsBotReplies (a class attribute too: `supports` asks the class)

    def __init__(self, imap: ImapConfig, smtp: SmtpConfig, media: MediaStore | None = None, *,
                 max_attachment_bytes: int = 10 * 1024 * 1024, bot_replies_per_hour: int = 10,
                 lease_ttl: float | None = None) -> None:
        self.imap = imap
        self.smtp = smtp
        self.media = media
        self.max_attachment_bytes = max_attachment_bytes
        self.bot_replies_per_hour = bot_replies_per_hour
        self.lease_ttl = lease_ttl  # None: every instance reads (no lease)
        self.loop: ImapLoop | None = None
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> EmailChannel | None:
        """The channel when IMAP, SMTP and the From address are configured; None when none is."""
        names = {**_REQUIRED, **_OPTIONAL}
        present = {attr for attr in names if getattr(settings, attr)}
        if not present:
            return None
        missing = [env for attr, env in _REQUIRED.items() if attr not in present]
        if bool(settings.smtp_user) != bool(settings.smtp_password):
            missing.append("SMTP_PASSWORD" if settings.smtp_user else "SMTP_USER")
        if missing:
            raise ChannelConfigError("email channel is partly configured; missing " + ", ".join(missing))
        tls = (settings.smtp_tls or "starttls").lower()
        if tls not in TLS_MODES:
            raise ChannelConfigError(f"SMTP_TLS must be one of {', '.join(TLS_MODES)}, got {settings.smtp_tls!r}")
        from_name, from_address = SmtpConfig.parse_from(settings.email_from)
        if "@" not in from_address:
            raise ChannelConfigError(f"HANDOFF_EMAIL_FROM is not an email address: {settings.email_from!r}")
        if settings.email_ca_file:
            try:
                client_context(settings.email_ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise ChannelConfigError(f"HANDOFF_EMAIL_CA_FILE is not a readable PEM file: {exc}") from exc
        imap = ImapConfig(
            host=settings.imap_host, port=settings.imap_port, user=settings.imap_user,
            password=settings.imap_password, tls=settings.imap_tls, ca_file=settings.email_ca_file,
            mailbox=settings.imap_mailbox,
            poll_interval=settings.imap_poll_interval, quarantine=settings.imap_quarantine,
        )
        smtp = SmtpConfig(
            host=settings.smtp_host, port=settings.smtp_port, user=settings.smtp_user,
            password=settings.smtp_password, tls=tls, from_address=from_address, from_name=from_name,
            ca_file=settings.email_ca_file,
            **({"id_secret": settings.secret_key} if settings.secret_key else {}),
        )
        return cls(imap, smtp, MediaStore.from_settings(settings),
                   max_attachment_bytes=settings.email_max_attachment_bytes,
                   bot_replies_per_hour=settings.email_bot_replies_per_hour, lease_ttl=settings.imap_lease_ttl)

    async def verify(self, request: web.Request, body: bytes) -> None:
        """Email never arrives by webhook: every request is refused."""
        raise InvalidSignature("the email channel reads its mailbox over IMAP; it takes no webhooks")

    def parse(self, body: bytes, content_type: str = "message/rfc822") -> list[ParsedItem]:
        """The message in one raw RFC 5322 email ([] for our own mail; auto-replies and bounces
        marked `automated`), its files still carried as bytes."""
        return list(parse_email(body, own_addresses=frozenset({self.smtp.from_address.lower()})))

    async def send(self, address: Address, message: OutboundMessage) -> str:
        """Send one reply in the conversation's thread; return its Message-ID."""
        message = await self._with_stored_files(message)
        try:
            msg = build_message(self.smtp, address, message)
        except (ValueError, TypeError) as exc:
            raise DeliveryError(f"cannot build email: {exc}", retryable=False, code="invalid") from exc
        await send_message(self.smtp, msg)
        return str(msg["Message-ID"])

    async def _with_stored_files(self, message: OutboundMessage) -> OutboundMessage:
        """`message` with the bytes of every file of ours that fits in the size budget."""
        if self.media is None:
            return message
        budget = MAX_ATTACHED_BYTES
        files: list[Attachment] = []
        for attachment in message.attachments:
            stored = self.media.for_url(attachment.url) if attachment.data is None else None
            if stored is not None and stored.size <= budget:
                budget -= stored.size
                attachment = dataclasses.replace(attachment, data=await asyncio.to_thread(self.media.read, stored))
            files.append(attachment)
        return dataclasses.replace(message, attachments=tuple(files))

    async def start(self, deliver: Deliver) -> None:
        """Start the IMAP loop; each message is marked seen only after `deliver` committed it."""

        async def handle(raw: bytes) -> None:
            try:
                items = self.parse(raw)
            except Exception as exc:  # a message we cannot parse must not block the mailbox
                log.exception("email: unparseable message")
                raise Unprocessable(f"unparseable: {type(exc).__name__}") from exc
            for item in items:
                await deliver(await self._with_kept_files(item))

        lease = None
        if self.lease_ttl:
            lease = Lease(f"email-imap:{self.imap.user}@{self.imap.host}:{self.imap.port}/{self.imap.mailbox}"[:255],
                          ttl=self.lease_ttl)
        self.loop = ImapLoop(self.imap, handle, lease)
        self._task = asyncio.create_task(self.loop.run(), name="email-imap")

    async def _with_kept_files(self, item: ParsedItem) -> ParsedItem:
        """`item` with each emailed file saved into the media store and carried by its URL; a file
        over the size limit is listed without bytes or URL, noted TOO_LARGE."""
        if not isinstance(item, InboundMessage) or not item.attachments:
            return item
        files = []
        limit = min(self.max_attachment_bytes, self.media.max_bytes) if self.media else 0
        for attachment in item.attachments:
            if attachment.data is None or self.media is None:
                files.append(dataclasses.replace(attachment, data=None))
            elif len(attachment.data) > limit:
                files.append(dataclasses.replace(attachment, data=None, note=TOO_LARGE))
            else:
                stored = await self._save(attachment)
                files.append(self.media.attach(stored))
        return dataclasses.replace(item, attachments=tuple(files))

    async def _save(self, attachment: Attachment) -> StoredFile:
        assert self.media is not None and attachment.data is not None
        data = attachment.data

        async def chunks() -> AsyncIterator[bytes]:
            yield data

        return await self.media.save(chunks(), filename=attachment.filename or "attachment",
                                     content_type=attachment.content_type, owner={"channel": self.name})

    async def close(self) -> None:
        """Stop the IMAP loop and give up the mailbox lease, so another instance reads at once."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.loop is not None and self.loop.lease is not None:
            try:
                await self.loop.lease.release()
            except Exception:  # the database may be gone already at shutdown: the lease then expires
                log.debug("email: mailbox lease not released", exc_info=True)
