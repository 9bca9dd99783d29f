"""Channel tests, plus the end-to-end checks every messaging channel runs through the app."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from handoff.models import Conversation, Message, Outbox
from handoff.schema import PartSent
from tests.conftest import settle

Post = Callable[[bytes], Awaitable[Any]]


async def full_cycle(client: Any, rt: Any, make_agent: Any, channel: str, post: Post,
                     first: bytes, second: bytes, first_text: str, second_text: str,
                     sent: Callable[[], list[str]]) -> None:
    """customer -> bot -> takeover -> agent reply -> allow AI -> bot again, through /webhooks/<channel>."""
    agent, headers = await make_agent("Ana")
    assert (await post(first)).status in (200, 202)
    await settle(rt)
    assert sent() == [f"echo: {first_text}"]

    [conversation] = await Conversation.filter(channel=channel)
    response = await client.post(f"/api/v1/conversations/{conversation.id}/takeover", headers=headers)
    assert response.status == 201, await response.text()
    ticket = await response.json()
    await settle(rt)
    response = await client.post(f"/api/v1/tickets/{ticket['id']}/messages", json={"text": "Hi, Ana here."}, headers=headers)
    assert response.status == 201, await response.text()
    await settle(rt)
    assert "Hi, Ana here." in sent()

    response = await client.post(f"/api/v1/tickets/{ticket['id']}/allow-ai", headers=headers)
    assert response.status == 200, await response.text()
    await settle(rt)
    assert (await Conversation.get(id=conversation.id)).state == "bot"
    assert (await post(second)).status in (200, 202)
    await settle(rt)
    assert sent()[-1] == f"echo: {second_text}"
    assert await Message.filter(conversation_id=conversation.id, author_kind="customer").count() == 2


async def replayed_four_times(rt: Any, channel: str, post: Post, body: bytes, provider_id: str) -> None:
    """The same webhook 4x in a row, then 4x at once: every answer 2xx, one message stored."""
    for _ in range(4):
        assert (await post(body)).status in (200, 202)
    responses = await asyncio.gather(*(post(body) for _ in range(4)))
    assert all(r.status in (200, 202) for r in responses)
    await settle(rt)
    assert await Message.filter(channel=channel, provider_id=provider_id).count() == 1


async def nothing_stored() -> bool:
    """True when no message has been stored."""
    return await Message.all().count() == 0


async def long_reply_resumed(rt: Any, post: Post, body: bytes, parts: list[str],
                             accepted: Callable[[], list[str]]) -> Message:
    """A bot reply sent in `parts` whose second part fails once: the customer gets every part
    exactly once, in order, and the reply ends `sent` after two attempts."""
    assert len(parts) > 1
    assert (await post(body)).status in (200, 202)
    await settle(rt)
    assert accepted() == parts
    reply = await Message.get(author_kind="bot")
    assert reply.delivery_status == "sent" and reply.delivery_error is None
    row = await Outbox.get(message_id=reply.id)
    assert (row.status, row.attempts, row.parts_sent) == ("done", 2, 1)
    return reply


def part_recorder() -> tuple[list[tuple[int, str]], PartSent]:
    """A list, and an `on_part_sent` callback that appends (parts sent, provider id) to it."""
    progress: list[tuple[int, str]] = []

    async def on_part_sent(parts: int, provider_id: str) -> None:
        progress.append((parts, provider_id))

    return progress, on_part_sent
