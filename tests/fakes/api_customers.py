"""Customers writing through the signed api channel to several handoff instances, the way a
provider delivers webhooks: each message may be posted several times ("copies"), to different
instances, and a post that fails (connection refused, a 5xx, a timeout) is retried on the next
instance until one answers 2xx — the provider's at-least-once delivery.

Each conversation is a burst of `burst` quick messages, each asking a different question of the
bundled demo knowledge (an exact question, so the offline bot answers it, and the answer names
the question: `TOPIC_OF_ANSWER`). `Load.run()` spreads conversations over `spread` seconds
(0: as fast as `concurrency` allows). Times are `time.monotonic()` seconds. The body follows
the api channel's contract (README, "The api channel").
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field
from importlib import resources

import aiohttp

from handoff.channels.api import SIGNATURE_HEADER, sign

_KNOWLEDGE = json.loads(resources.files("handoff.bot").joinpath("knowledge.json").read_text(encoding="utf-8"))
# Topics whose English questions are unmistakable (greetings and thanks are left out).
TOPICS = ("shipping", "returns", "refund", "opening_hours", "payment", "order_tracking", "cancel_order")
QUESTION = {e["topic"]: e["questions"][0] for e in _KNOWLEDGE["entries"] if e["language"] == "en" and e["topic"] in TOPICS}
# Every translation of an answer names its topic: the language detected may pick any of them.
TOPIC_OF_ANSWER = {e["answer"]: e["topic"] for e in _KNOWLEDGE["entries"]}
RETRY_PAUSE = 0.3  # seconds between a failed post and its retry on the next instance


@dataclass
class Sent:
    """One customer message: its provider id, conversation key, topic, and when a post was first acked."""

    id: str
    conversation: str
    topic: str
    acked_at: float | None = None
    posts: int = 0
    failed_posts: int = 0


@dataclass
class Load:
    """Sends conversations' bursts to `urls` (instance base URLs) signed with `secret`."""

    secret: str
    urls: list[str]
    burst: tuple[int, int] = (2, 3)
    copies: tuple[int, int] = (2, 4)
    gap: float = 0.3  # at most this many seconds between a burst's messages, and between copies
    seed: int = 0
    give_up_after: float = 120.0
    messages: list[Sent] = field(default_factory=list)
    _next: int = 0

    def __post_init__(self) -> None:
        self._random = random.Random(self.seed)

    async def run(self, conversations: int, spread: float = 0.0, concurrency: int = 64, prefix: str = "c") -> None:
        """Send `conversations` bursts, started evenly over `spread` seconds, `concurrency` at a time."""
        limit = asyncio.Semaphore(concurrency)
        started = time.monotonic()
        connector = aiohttp.TCPConnector(limit=concurrency * 4)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
            async def one(index: int) -> None:
                await asyncio.sleep(max(0.0, started + spread * index / max(1, conversations) - time.monotonic()))
                async with limit:
                    await self._burst(session, f"{prefix}-{self.seed}-{index}")

            await asyncio.gather(*(one(i) for i in range(conversations)))

    async def _burst(self, session: aiohttp.ClientSession, conversation: str) -> None:
        topics = self._random.sample(TOPICS, self._random.randint(*self.burst))
        posts = []
        for n, topic in enumerate(topics):
            sent = Sent(id=f"{conversation}-m{n}", conversation=conversation, topic=topic)
            self.messages.append(sent)
            posts.append(asyncio.create_task(self._deliver(session, sent)))
            await asyncio.sleep(self._random.uniform(0, self.gap))
        await asyncio.gather(*posts)

    async def _deliver(self, session: aiohttp.ClientSession, sent: Sent) -> None:
        body = json.dumps({"id": sent.id, "conversation": sent.conversation,
                           "contact": {"id": f"contact-{sent.conversation}", "name": "Kim Example"},
                           "text": QUESTION[sent.topic]}).encode()
        copies = self._random.randint(*self.copies)
        first = self._next
        self._next += 1
        delays = [0.0] + [self._random.uniform(0, self.gap * 2) for _ in range(copies - 1)]
        await asyncio.gather(*(self._post_until_acked(session, sent, body, first + i, delay)
                               for i, delay in enumerate(delays)))

    async def _post_until_acked(self, session: aiohttp.ClientSession, sent: Sent, body: bytes,
                                instance: int, delay: float) -> None:
        await asyncio.sleep(delay)
        headers = {SIGNATURE_HEADER: sign(self.secret, body), "Content-Type": "application/json"}
        deadline = time.monotonic() + self.give_up_after
        while time.monotonic() < deadline:
            url = self.urls[instance % len(self.urls)] + "/webhooks/api"
            instance += 1
            sent.posts += 1
            try:
                async with session.post(url, data=body, headers=headers) as resp:
                    if resp.status < 300:
                        now = time.monotonic()
                        sent.acked_at = now if sent.acked_at is None else min(sent.acked_at, now)
                        return
                    if resp.status < 500:
                        raise AssertionError(f"{url} refused {sent.id}: {resp.status} {await resp.text()}")
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass
            sent.failed_posts += 1
            await asyncio.sleep(RETRY_PAUSE)
