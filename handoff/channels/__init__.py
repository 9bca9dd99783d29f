"""The explicit registry of customer channels: name -> channel class (no discovery magic)."""

from __future__ import annotations

from handoff.channels.api import ApiChannel
from handoff.channels.base import Channel
from handoff.channels.email import EmailChannel
from handoff.channels.instagram import InstagramChannel
from handoff.channels.messenger import MessengerChannel
from handoff.channels.telegram import TelegramChannel
from handoff.channels.whatsapp import WhatsAppChannel
from handoff.channels.widget import WidgetChannel

CHANNEL_CLASSES: tuple[type[Channel], ...] = (
    ApiChannel,
    WidgetChannel,
    WhatsAppChannel,
    MessengerChannel,
    InstagramChannel,
    EmailChannel,
    TelegramChannel,
)

CHANNELS: dict[str, type[Channel]] = {c.name: c for c in CHANNEL_CLASSES}
