"""`supports(channel, Protocol)`: typing's isinstance answer for a channel's optional abilities,
computed once per channel class."""

from __future__ import annotations

import pytest

from handoff.channels import CHANNEL_CLASSES
from handoff.channels.base import (Acknowledges, CapsBotReplies, Handshake, HasRoutes, Listens, ShowsTyping, Signs,
                                   supports)
from handoff.contact_names import NameSource

PROTOCOLS = (Acknowledges, CapsBotReplies, Handshake, HasRoutes, Listens, ShowsTyping, Signs, NameSource)


@pytest.mark.parametrize("cls", CHANNEL_CLASSES, ids=lambda c: c.name)
def test_every_channel_is_answered_as_isinstance_answers(cls):
    channel = object.__new__(cls)  # the abilities are the class's: no settings needed
    for protocol in PROTOCOLS:
        assert supports(channel, protocol) == isinstance(channel, protocol), protocol.__name__
        assert supports(object.__new__(cls), protocol) == isinstance(channel, protocol)


def test_a_class_with_the_method_supports_it_and_one_without_does_not():
    class Typing:
        async def typing(self, address, on, name=None) -> None: ...

    class Silent:
        pass

    assert supports(Typing(), ShowsTyping) and supports(Typing(), ShowsTyping)
    assert not supports(Silent(), ShowsTyping) and not supports(Silent(), ShowsTyping)
    assert not supports(Typing(), Acknowledges)


def test_email_caps_bot_replies_by_its_class():
    from handoff.channels.email import EmailChannel

    assert supports(object.__new__(EmailChannel), CapsBotReplies)  # the cap is asked of the class (turn._capped)
