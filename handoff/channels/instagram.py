"""Instagram channel (Instagram Messaging through the Messenger Platform).

Docs followed: developers.facebook.com/docs/instagram-platform/webhooks (handshake, signature,
`instagram` webhook object, messaging notification examples) and
…/docs/instagram-platform/instagram-api-with-instagram-login/messaging-api (Send API,
sender_action, HUMAN_AGENT tag). Shared code lives in `handoff/channels/meta.py`; Instagram
differs in its `instagram` object, the Instagram access token, profile fields (name, username),
echoes arriving with the `messages` field and without an app id, story mentions and post/reel
shares, and read receipts (`messaging_seen`) that name the message id. Instagram has no delivery
receipts.
"""

from __future__ import annotations

from typing import ClassVar

from handoff.channels.base import Capabilities
from handoff.channels.meta import MetaChannel


class InstagramChannel(MetaChannel):
    """Direct messages to an Instagram professional account."""

    name: ClassVar[str] = "instagram"
    object_type: ClassVar[str] = "instagram"
    token_setting: ClassVar[str] = "instagram_access_token"
    profile_fields: ClassVar[str] = "name,username"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_length=1000,
        attachments=True,
        messaging_window_hours=24,
        human_window_hours=24 * 7,
        delivery_receipts=True,
    )
    # The Send API limits Instagram text to 1000 bytes of UTF-8, not characters.
    capabilities_max_bytes: ClassVar[int | None] = 1000
