"""One mailbox reader at a time (issue 12 item 7): two instances' IMAP loops share a database
lease on both stores; one reads, the other waits; when the reader dies without a word, the other
takes over once the lease expires, and no email is stored twice."""

from __future__ import annotations

import asyncio
from typing import Any

from handoff import gateway
from handoff.channels.email import EmailChannel
from handoff.models import Message
from handoff.schema import InboundMessage
from tests.channels.test_email import all_seen, crlf, fixture, imap_channel
from tests.fakes.dovecot import Dovecot, dovecot, dovecot_server, wait_for  # noqa: F401

TTL = 1.0


def reader(server: Dovecot) -> EmailChannel:
    channel = imap_channel(server)
    channel.lease_ttl = TTL
    return channel


async def test_one_reader_at_a_time_and_failover(rt: Any, dovecot: Dovecot) -> None:  # noqa: F811
    delivered: dict[str, list[str]] = {"a": [], "b": []}

    def deliver_as(name: str) -> Any:
        async def deliver(item: InboundMessage) -> None:
            await gateway.receive(rt, item)
            delivered[name].append(item.provider_id)
        return deliver

    a, b = reader(dovecot), reader(dovecot)
    await a.start(deliver_as("a"))
    await asyncio.wait_for(a.loop.reading.wait(), 10)
    await b.start(deliver_as("b"))
    try:
        for name in ("question__plain.eml", "question__html_only.eml"):
            await dovecot.append(crlf(fixture(name)))
        await wait_for(lambda: all_seen(dovecot, 2), timeout=15)
        await asyncio.sleep(TTL)  # b keeps trying the lease meanwhile
        assert len(delivered["a"]) == 2 and delivered["b"] == [] and not b.loop.reading.is_set()

        # a dies without releasing its lease (no close): b takes over once it expires
        assert a._task is not None
        a._task.cancel()
        await asyncio.gather(a._task, return_exceptions=True)
        for name in ("question__iso_8859_1.eml", "question__attachment.eml"):
            await dovecot.append(crlf(fixture(name)))
        await asyncio.wait_for(b.loop.reading.wait(), 3 * TTL)
        await wait_for(lambda: all_seen(dovecot, 4), timeout=15)
    finally:
        await b.close()
        await a.close()
    assert len(delivered["b"]) == 2
    ids = [*delivered["a"], *delivered["b"]]
    assert len(set(ids)) == 4
    for provider_id in ids:  # stored once each
        assert await Message.filter(channel="email", provider_id=provider_id).count() == 1
