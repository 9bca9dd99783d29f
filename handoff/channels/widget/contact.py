"""The pre-chat form's answers (name, email), kept on the visitor's Contact.

The widget's optional pre-chat form (off by default; the embedding site turns it on with
`data-prechat="name,email"` and marks required fields with `data-prechat-required`) posts
its answers to `POST /widget/contact` before the first message. They fill in the Contact the
visitor's messages are stored under (`ContactIdentity` ("widget", visitor id)), creating it
when the visitor has written nothing yet, so the gateway finds it on the first message. As
the gateway does with what a channel tells, answers only fill a name or email the Contact
lacks: a site-verified user's details are never replaced by what was typed in a form.
"""

from __future__ import annotations

from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from handoff.models import Contact, ContactIdentity


async def save_contact_details(channel: str, visitor_id: str, name: str | None, email: str | None) -> Contact:
    """The visitor's Contact with `name` and `email` filled in where it had none (created if new)."""
    contact = await _existing(channel, visitor_id)
    if contact is None:
        try:
            async with in_transaction():
                contact = await Contact.create(name=name, email=email)
                await ContactIdentity.create(contact=contact, channel=channel, external_id=visitor_id)
            return contact
        except IntegrityError:  # the visitor's first message created it meanwhile
            contact = await _existing(channel, visitor_id)
            assert contact is not None
    if (name and not contact.name) or (email and not contact.email):
        contact.name = contact.name or name
        contact.email = contact.email or email
        await contact.save(update_fields=["name", "email"])
    return contact


async def _existing(channel: str, visitor_id: str) -> Contact | None:
    identity = await ContactIdentity.filter(channel=channel, external_id=visitor_id).select_related("contact").first()
    return identity.contact if identity is not None else None
