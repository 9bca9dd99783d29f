"""Facebook Messenger channel (Messenger Platform webhooks and Send API).

Docs followed: developers.facebook.com/docs/messenger-platform/webhooks (handshake and
X-Hub-Signature-256), …/reference/webhook-events (messages, messaging_postbacks,
message_deliveries, message_reads, message_echoes with their `app_id`, message_edits) and
…/reference/send-api.
Everything shared with Instagram lives in `handoff/channels/meta.py`; Messenger differs in its
`page` webhook object, the Page access token, delivery receipts carrying `delivery.mids`, and
read receipts carrying only a watermark (which therefore update nothing).
"""

from __future__ import annotations

from typing import ClassVar

from handoff.channels.base import Capabilities
from handoff.channels.meta import MetaChannel


class MessengerChannel(MetaChannel):
    """Messenger conversations with the customers of a Facebook Page."""

    name: ClassVar[str] = "messenger"
    object_type: ClassVar[str] = "page"
    token_setting: ClassVar[str] = "messenger_page_token"
    profile_fields: ClassVar[str] = "name"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_length=2000,
        attachments=True,
        messaging_window_hours=24,
        human_window_hours=24 * 7,
        delivery_receipts=True,
    )
