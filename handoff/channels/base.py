"""The Channel protocol every customer channel implements, its optional hooks, and its errors.

A channel is provider edge code only: it verifies and parses provider requests into
`ParsedItem`s, and sends `OutboundMessage` to an `Address`. It never imports the gateway or
the desk. Besides the five members of `Channel`, a channel may offer the optional hooks below
(`Handshake`, `Acknowledges`, `Signs`, `ShowsTyping`, `Listens`, `CapsBotReplies`, `HasRoutes`); each is looked
up with isinstance in the one place that uses it. docs/channels.md lists them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar, runtime_checkable

from aiohttp import web

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


class InvalidSignature(Exception):
    """The request's signature is missing, forged or stale (answered 401/403)."""


class BadPayload(ValueError):
    """The request body cannot be parsed as this provider's format (answered 400)."""


class UnsupportedEvent(Exception):
    """A well-formed event the channel does not handle (logged, answered 2xx)."""


class ChannelConfigError(Exception):
    """A channel has some but not all of its required settings."""


class NotDelivered(Exception):
    """By its configuration the channel delivers this message nowhere (the api channel without
    HANDOFF_API_CALLBACK_URL): the outbox marks it `skipped` with this reason, not failed, and
    it stays on the timeline and in the API."""


class DeliveryError(Exception):
    """Sending failed. `retryable` failures are retried by the outbox with backoff.

    `retry_after` (seconds) comes from the provider's Retry-After when it sent one;
    `code` is the provider's error code (Twilio 63016, Meta 10, HTTP status...);
    `parts_sent` is how many parts of a split message the provider had accepted before it.
    """

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        retry_after: float | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.code = code
        self.parts_sent = 0


@dataclass(frozen=True)
class Capabilities:
    """What a channel can show; the outbox renders what it lacks as plain text.

    `max_length` is in characters. `messaging_window_hours` is how long after the customer's
    last message the provider lets any message through (Meta and WhatsApp: 24);
    `human_window_hours` how long a person's reply may still be sent after that (Meta's
    HUMAN_AGENT tag: 168); None means no window. `notice_style` "mail" sends only the
    notices that make sense as an email of their own (see handoff.notices.MAIL_NOTICES);
    the others stay on the timeline, marked skipped. `delivery_receipts` says the provider posts
    receipts for sent messages (a receipt may then arrive before the send answers: the outbox
    looks for kept ones only on such channels; the sweeper applies any left over either way).
    """

    max_length: int = 4096
    attachments: bool = False
    messaging_window_hours: float | None = None
    human_window_hours: float | None = None
    notice_style: str = "chat"
    delivery_receipts: bool = False


# What a channel's parse() yields; handoff.ingest routes each kind.
ParsedItem = InboundMessage | DeliveryUpdate | MessageEdit | MessageDeletion | OutsideReply


@runtime_checkable
class Channel(Protocol):
    """A customer channel: verify and parse inbound webhooks, send outbound messages."""

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    @classmethod
    def from_settings(cls, settings: Settings) -> Channel | None:
        """The configured channel, None when its settings are absent; raises ChannelConfigError when partial."""

    async def verify(self, request: web.Request, body: bytes) -> None:
        """Raise InvalidSignature unless the request is authentic (constant-time compares)."""

    def parse(self, body: bytes, content_type: str) -> list[ParsedItem]:
        """Pure: the messages and receipts in a verified body; echoes and unknown events give []."""

    async def send(self, address: Address, message: OutboundMessage) -> str:
        """Deliver one message; return the provider's message id; raise DeliveryError on failure.

        A message sent as several provider messages resumes after `message.parts_sent` and
        reports each accepted part to `message.on_part_sent` (see `send_in_parts`).
        """

    async def close(self) -> None:
        """Release clients and sessions."""


Deliver = Callable[[ParsedItem], Awaitable[None]]


@runtime_checkable
class Handshake(Protocol):
    """A provider that checks the webhook URL with a GET first (Meta's hub.challenge)."""

    async def handshake(self, request: web.Request) -> web.StreamResponse:
        """Answer `GET /webhooks/<name>`; used by handoff.routes."""


@runtime_checkable
class Acknowledges(Protocol):
    """A provider that expects its own answer to a stored webhook (Meta 200, Twilio empty TwiML)."""

    def ack(self) -> web.Response:
        """The response once every item is stored; without this hook: 202 `{"ok": true}`."""


@runtime_checkable
class Signs(Protocol):
    """A channel whose recorded webhooks `handoff replay` can sign as the provider would."""

    def sign(self, body: bytes, url: str, content_type: str) -> dict[str, str]:
        """The headers the provider would send with `body` posted to `url` (its public URL)."""


@runtime_checkable
class ShowsTyping(Protocol):
    """A channel that can show "typing…" to the customer: the bot's, while it thinks, and an agent's."""

    async def typing(self, address: Address, on: bool, name: str | None = None) -> None:
        """Show (on) or hide the indicator; `name` is the agent's, None for the bot. Best effort:
        a provider error is logged, never raised."""


@runtime_checkable
class Listens(Protocol):
    """A channel with its own inbound transport (the widget's sockets, IMAP): started with the app."""

    async def start(self, deliver: Deliver) -> None:
        """Start receiving; hand each parsed item to `deliver` (which stores and routes it)."""


@runtime_checkable
class CapsBotReplies(Protocol):
    """A channel where a machine may answer the bot (email's autoresponders): the bot sends at most
    `bot_replies_per_hour` replies to one contact address in any hour (0: no cap)."""

    bot_replies_per_hour: int


@runtime_checkable
class HasRoutes(Protocol):
    """A channel that serves HTTP routes besides `/webhooks/<name>` (widget assets, file proxies)."""

    def routes(self) -> list[web.RouteDef]:
        """The routes, added to the application once."""


def supports(channel: object, protocol: type) -> bool:
    """`isinstance(channel, protocol)` for one of the runtime-checkable protocols above, answered
    once per channel class: typing's check inspects every member on every call (~6 µs, several
    times per message). The protocol's members must come from the class (methods, class
    attributes), as they do for every channel."""
    key = (type(channel), protocol)
    found = _SUPPORTED.get(key)
    if found is None:
        found = _SUPPORTED[key] = isinstance(channel, protocol)
    return found


_SUPPORTED: dict[tuple[type, type], bool] = {}  # (channel class, protocol): `supports`'s answers


def webhook_response(channel: Channel) -> web.Response:
    """The acknowledgement a provider expects once a webhook is stored."""
    if supports(channel, Acknowledges):
        return channel.ack()
    return web.json_response({"ok": True}, status=202)


def env_setting(name: str, default: str = "") -> Any:
    """A field of a channel's settings dataclass read from the environment variable `name`."""
    return field(default=default, metadata={"env": name})


SettingsT = TypeVar("SettingsT")


def channel_settings(cls: type[SettingsT], settings: Settings) -> SettingsT:
    """`cls` (a dataclass of `env_setting` fields, declared in the channel's module) filled from
    the environment `settings` was read from (`Settings.extra`); unset or empty keeps the default."""
    values = {f.name: settings.extra[f.metadata["env"]] for f in fields(cls)  # type: ignore[arg-type]
              if settings.extra.get(f.metadata["env"])}
    return cls(**values)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header given in seconds; None when absent or unreadable."""
    try:
        return max(0.0, float(value)) if value else None
    except ValueError:
        return None


def truncate_for(capabilities: Capabilities, text: str) -> list[str]:
    """Split text into chunks that fit the channel's maximum message length."""
    limit = capabilities.max_length
    if len(text) <= limit:
        return [text]
    chunks: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit)
        if cut < limit // 2:
            cut = rest.rfind(" ", 0, limit)
        if cut < limit // 2:
            cut = limit
        chunks.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    if rest:
        chunks.append(rest)
    return chunks


def file_links(attachments: Iterable[Attachment]) -> str:
    """Files as lines of text, `name: URL`, for where they cannot travel as files."""
    return "\n".join(f"{a.filename or 'Attachment'}: {a.url}" for a in attachments if a.url)


def with_file_links(capabilities: Capabilities, message: OutboundMessage) -> OutboundMessage:
    """`message` as a channel without attachments can show it: its files become links in the text
    (the list stays on the message, for a channel that passes it on as data, like the api callback)."""
    if capabilities.attachments or not message.attachments:
        return message
    links = file_links(message.attachments)
    text = f"{message.text}\n\n{links}" if message.text and links else message.text or links
    return dataclasses.replace(message, text=text)


Part = TypeVar("Part")


async def send_in_parts(parts: Sequence[Part], message: OutboundMessage,
                        send_part: Callable[[Part], Awaitable[str]]) -> str:
    """Send `parts` in order, skipping the `message.parts_sent` already accepted; the first new part's id.

    Every accepted part but the last is reported to `message.on_part_sent` before the next
    one is sent, so a retry (or a restart) never sends a part twice. A DeliveryError leaves
    with `parts_sent` set to the number of parts the provider holds.
    """
    first = ""
    for index in range(message.parts_sent, len(parts)):
        try:
            provider_id = await send_part(parts[index])
        except DeliveryError as exc:
            exc.parts_sent = index
            raise
        first = first or provider_id
        if index + 1 < len(parts) and message.on_part_sent is not None:
            await message.on_part_sent(index + 1, provider_id)
    return first
