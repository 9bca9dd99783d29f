"""Contact names a channel looks up from its provider (Messenger and Instagram: the Graph API
profile), fetched after the webhook is acknowledged.

A webhook's messages are stored at once, with the name the channel already has in its cache;
the lookup runs in the background, so a slow or failing provider never delays the ack nor loses
a message. The name is written only while the contact has none: a name the customer or an agent
already gave is never replaced. The desk hears of it through a `conversation.updated` event.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from tortoise.expressions import Q

from handoff.channels.base import supports
from handoff.events import EventKind
from handoff.models import Contact, ContactIdentity
from handoff.schema import InboundMessage
from handoff.timeline import Pending, publish, transaction

if TYPE_CHECKING:
    from handoff.runtime import Runtime

log = logging.getLogger(__name__)


@runtime_checkable
class NameSource(Protocol):
    """A channel that can tell a contact's display name from its provider."""

    name: str

    def cached_name(self, contact_id: str) -> tuple[bool, str | None]:
        """(already looked up, name) without asking the provider."""

    async def contact_name(self, contact_id: str) -> str | None:
        """The contact's name from the provider; None when unavailable."""


def with_cached_name(channel: object, inbound: InboundMessage) -> InboundMessage:
    """`inbound` with the contact's name filled in from the channel's cache when known."""
    if inbound.contact_name or not supports(channel, NameSource):
        return inbound
    found, name = channel.cached_name(inbound.contact_id)
    return dataclasses.replace(inbound, contact_name=name) if found and name else inbound


def look_up_later(rt: Runtime, channel: object, unnamed: dict[str, int]) -> None:
    """Start a background lookup for each contact id (→ its conversation id) not looked up yet."""
    if not supports(channel, NameSource):
        return
    for contact_id, conversation_id in unnamed.items():
        found, _ = channel.cached_name(contact_id)
        if not found:
            rt.spawn(fill_contact_name(rt, channel, contact_id, conversation_id),
                     name=f"contact-name-{channel.name}-{contact_id}")


async def fill_contact_name(rt: Runtime, channel: NameSource, contact_id: str, conversation_id: int) -> None:
    """Ask the provider for the contact's name and store it if the contact still has none."""
    identity = await ContactIdentity.get_or_none(channel=channel.name, external_id=contact_id).select_related("contact")
    if identity is None or identity.contact.name:
        return
    name = (await channel.contact_name(contact_id) or "").strip()[:200]
    if not name:
        return
    unnamed = Q(name__isnull=True) | Q(name="")
    pending = Pending()
    async with transaction(pending):
        if await Contact.filter(unnamed, id=identity.contact.id).update(name=name):
            pending.add(EventKind.CONVERSATION_UPDATED, conversation_id=conversation_id,
                        contact={"id": identity.contact.id, "name": name})
    await publish(rt, pending)
