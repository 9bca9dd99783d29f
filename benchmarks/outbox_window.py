"""The outbox's remaining at-least-once window: how long after the provider accepts a message its
acceptance is committed (`outbox._record_sent`: the message sent and its row done, one commit). An instance that dies inside this window has
its message sent again once the claim lapses; after it, never.

Runs the app in process on the api channel against a local callback endpoint that notes the moment
it accepts each message (just before answering 200); the worker notes the moment the acceptance
committed. Prints, per store, the window's percentiles and its share of the whole delivery
(webhook posted -> acceptance committed), both measured in the same run.

    .venv/bin/python benchmarks/outbox_window.py [--messages 300] [--database postgres://root@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import fresh_database, serve  # noqa: E402
from handoff.app import create_app  # noqa: E402
from handoff.bot.base import BotReply, Summary, Turn  # noqa: E402
from handoff.channels.api import sign  # noqa: E402
from handoff.config import Settings  # noqa: E402
from handoff.models import Message, Outbox  # noqa: E402
from handoff.outbox import OutboxWorker  # noqa: E402
from handoff.runtime import RUNTIME  # noqa: E402
from handoff.timeline import Pending  # noqa: E402

SECRET = "bench-secret"


class InstantBot:
    async def reply(self, history: Sequence[Turn], language: str) -> BotReply:
        return BotReply(text="ok")


class NoSummary:
    async def summarize(self, history: Sequence[Turn], language: str) -> Summary:
        return Summary(subject="-", summary="-")


class Provider:
    """The api channel's callback endpoint: notes when it accepted each message id."""

    def __init__(self) -> None:
        self.accepted: dict[int, float] = {}
        self.app = web.Application()
        self.app.router.add_post("/callback", self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        payload = json.loads(await request.read())
        self.accepted[int(payload["id"])] = time.perf_counter()
        return web.json_response({"ok": True})


class ProbedWorker(OutboxWorker):
    """The outbox worker, noting when each acceptance committed."""

    committed: dict[int, float]

    async def _record_sent(self, row: Outbox, message: Message, provider_id: str | None,
                           text: str | None) -> tuple[Pending, str | None]:
        recorded = await super()._record_sent(row, message, provider_id, text)
        self.committed[row.message_id] = time.perf_counter()  # type: ignore[attr-defined]
        return recorded


async def run(database_url: str, messages: int) -> tuple[list[float], list[float]]:
    """Post `messages` customer messages one after another; (windows, deliveries) in seconds."""
    provider = Provider()
    provider_runner, provider_url = await serve(provider.app)
    settings = Settings(database_url=database_url, api_secret=SECRET, api_callback_url=provider_url + "/callback")
    app = create_app(settings, bot=InstantBot(), summarizer=NoSummary())
    rt = app[RUNTIME]
    worker = rt.outbox = ProbedWorker(rt)  # before the app starts it
    worker.committed = {}
    runner, url = await serve(app)
    posted: dict[int, float] = {}
    try:
        async with aiohttp.ClientSession() as session:
            for n in range(messages):
                key = f"window-{uuid.uuid4().hex[:8]}"
                body = json.dumps({"id": key, "conversation": key, "contact": {"id": key}, "text": f"hi {n}"}).encode()
                start = time.perf_counter()
                count = len(worker.committed)
                async with session.post(url + "/webhooks/api", data=body,
                                        headers={"X-Handoff-Signature": sign(SECRET, body)}) as resp:
                    assert resp.status == 202, await resp.text()
                while len(worker.committed) == count:
                    await asyncio.sleep(0.0005)
                message_id = max(worker.committed)
                posted[message_id] = start
    finally:
        await runner.cleanup()
        await provider_runner.cleanup()
    ids = sorted(posted)
    windows = [worker.committed[i] - provider.accepted[i] for i in ids]
    deliveries = [worker.committed[i] - posted[i] for i in ids]
    return windows, deliveries


def line(label: str, values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[max(0, int(len(ordered) * 0.99) - 1)]
    return (f"  {label:<40} p50 {statistics.median(values) * 1000:7.2f} ms   "
            f"p99 {p99 * 1000:7.2f} ms   max {ordered[-1] * 1000:7.2f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--database", default="", help="a postgres:// URL: measure there too (throwaway database)")
    args = parser.parse_args()
    for url in ["", *([args.database] if args.database else [])]:
        async with fresh_database(url) as database_url:
            await run(database_url, 20)  # warm up: migrations, connections, imports
            windows, deliveries = await run(database_url, args.messages)
        print(f"{database_url.split(':', 1)[0]} ({len(windows)} messages):")
        print(line("provider accepted -> acceptance committed", windows))
        print(line("webhook posted -> acceptance committed", deliveries))
        print(f"  window / whole delivery (p50): {statistics.median(windows) / statistics.median(deliveries):.3f}")


if __name__ == "__main__":
    asyncio.run(main())
