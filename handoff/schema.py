"""The provider-neutral shapes that cross the edge between channels and the core.

Channels turn provider payloads into `InboundMessage` / `DeliveryUpdate` and deliver
`OutboundMessage` to an `Address`; the gateway and the desk never see provider formats.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from handoff import storable

OutboundKind = Literal["bot", "agent", "notice"]
# Called with (parts the provider now holds, provider id of the part just accepted).
PartSent = Callable[[int, str], Awaitable[None]]
DeliveryState = Literal["queued", "sent", "delivered", "read", "failed", "undelivered"]


_TEXT_TYPES = frozenset({"str", "str | None", "DeliveryState"})


def _make_storable(item: Any) -> None:
    """Replace, in place, every text and JSON field of a frozen inbound dataclass by its storable
    form (see `handoff.storable`); `raw` (the provider payload, never stored) is left alone.

    A text field given a number holds its decimal digits; given anything else that is not text
    (true, an object, a list: a payload not in the provider's format) it raises ValueError, which
    the webhook answers with a 400 before anything is stored.
    """
    for spec in fields(item):
        value = getattr(item, spec.name)
        if spec.name == "raw" or value is None:
            continue
        if spec.type in _TEXT_TYPES and not isinstance(value, str):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                raise ValueError(f"{type(item).__name__}.{spec.name} must be text, not {type(value).__name__}")
            value = str(value)
            object.__setattr__(item, spec.name, value)
        if isinstance(value, (str, dict)):
            cleaned = storable.json_value(value)
            if cleaned is not value:
                object.__setattr__(item, spec.name, cleaned)


@dataclass(frozen=True)
class Attachment:
    """A file a customer or agent sent: a URL the channel can fetch, or inline bytes.

    `note` says why a file the customer sent has no URL (e.g. "not kept: too large").
    """

    content_type: str
    url: str | None = None
    filename: str | None = None
    size: int | None = None
    data: bytes | None = field(default=None, repr=False)
    note: str | None = None

    def __post_init__(self) -> None:
        _make_storable(self)


@dataclass(frozen=True)
class Address:
    """Where a conversation's outbound messages go on its channel.

    `contact_id` is the customer's id on the channel (phone number, PSID, email address,
    visitor id); `conversation_key` is the channel's own conversation key; `thread` holds
    channel-specific threading data (email Message-IDs and subject, for instance).
    """

    channel: str
    contact_id: str
    conversation_key: str
    thread: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InboundMessage:
    """One customer message, normalized.

    `provider_id` is unique per channel and is the deduplication key for provider retries.
    `conversation_key` groups messages into one conversation on that channel (defaults to
    the contact id: one running conversation per customer per channel).
    `automated` marks a message a machine sent (an auto-reply, a bounce, bulk mail): it is
    stored and shown, and the bot never answers it (so no reply loop can form).
    """

    channel: str
    provider_id: str
    contact_id: str
    text: str
    contact_name: str | None = None
    contact_email: str | None = None
    conversation_key: str | None = None
    attachments: tuple[Attachment, ...] = ()
    thread: dict[str, Any] = field(default_factory=dict)
    sent_at: float | None = None
    automated: bool = False
    raw: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        _make_storable(self)

    @property
    def key(self) -> str:
        """The conversation key this message belongs to on its channel."""
        return self.conversation_key or self.contact_id


@dataclass(frozen=True)
class DeliveryUpdate:
    """A provider's receipt for a message we sent (Twilio status callback, Meta delivery/read)."""

    channel: str
    provider_id: str
    state: DeliveryState
    error_code: str | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        _make_storable(self)


@dataclass(frozen=True)
class MessageEdit:
    """The customer changed the text of a message they sent (Meta's `message_edit`).

    `provider_id` names the edited message; `text` is its new text.
    """

    channel: str
    provider_id: str
    text: str

    def __post_init__(self) -> None:
        _make_storable(self)


@dataclass(frozen=True)
class MessageDeletion:
    """The customer unsent a message (Meta's `message.is_deleted`); `provider_id` names it."""

    channel: str
    provider_id: str

    def __post_init__(self) -> None:
        _make_storable(self)


@dataclass(frozen=True)
class OutsideReply:
    """A reply the business sent to the customer from outside handoff: the provider's own app
    (the Instagram app, Meta Business Suite), seen as an echo carrying another app's id.

    It is stored as an outgoing message by a person, and a person has stepped in.
    """

    channel: str
    provider_id: str
    contact_id: str
    text: str
    app_id: str | None = None
    attachments: tuple[Attachment, ...] = ()
    sent_at: float | None = None

    def __post_init__(self) -> None:
        _make_storable(self)


@dataclass(frozen=True)
class OutboundMessage:
    """One message to a customer: a bot reply, an agent reply or a notice.

    `notice` names the notice event ("waiting", "agent_joined", "transferred", "ai_resumed")
    so channels with status events (the widget) can render it as such; `text` is always set
    and is what text-only channels send. `human` marks replies written by a person, which
    some providers allow in a longer messaging window (Meta's HUMAN_AGENT tag).

    A channel that splits a message into several provider messages (long text, then
    attachments) skips the first `parts_sent` parts, which the provider accepted in an earlier
    attempt, and awaits `on_part_sent` after each accepted part but the last, so that a retry
    resumes there (see `channels.base.send_in_parts`).
    """

    id: int
    kind: OutboundKind
    text: str
    conversation_id: int
    author_name: str | None = None
    notice: str | None = None
    attachments: tuple[Attachment, ...] = ()
    last_customer_message_at: float | None = None
    parts_sent: int = 0
    on_part_sent: PartSent | None = field(default=None, repr=False, compare=False)

    @property
    def human(self) -> bool:
        """True when a person wrote this message."""
        return self.kind == "agent"
