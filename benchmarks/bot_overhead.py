"""Benchmark: the gateway's own cost per bot turn, model time excluded.

A real server (create_app, SQLite or PostgreSQL) runs OpenAIBot against the zero-latency fake
OpenAI server (tests/fakes/openai_server.py). Each turn is a signed api-channel webhook; the turn
ends when the bot's reply reaches the integrator's callback endpoint. For every turn we measure

- ack: webhook POST -> 202 (verify, parse, dedupe, commit),
- end to end: webhook POST -> reply delivered to the callback (bot turn, fenced write, outbox, send),
- model: time inside `bot.reply` (openai client + HTTP to the fake, which answers at once),

and report overhead = end to end - model. A second run with an in-process bot (no HTTP at all)
shows how much of the model time is the openai client itself.

    PYTHONPATH=. python benchmarks/bot_overhead.py [--conversations 20] [--turns 10]
        [--database-url sqlite:///tmp/bench.db]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import aiohttp
import openai

from benchmarks.harness import Callbacks, serve
from handoff.app import create_app
from handoff.bot.base import Bot, BotReply, Summary, Turn
from handoff.bot.openai_bot import OpenAIBot, RetryPolicy
from handoff.channels.api import sign
from handoff.config import Settings
from tests.fakes.openai_server import FakeOpenAI, text

SECRET = "bench-api-secret"


class TimedBot:
    """Wraps a bot and records how long each reply took."""

    def __init__(self, inner: Bot) -> None:
        self.inner = inner
        self.seconds: list[float] = []

    async def reply(self, history: Sequence[Turn], language: str) -> BotReply:
        start = time.perf_counter()
        try:
            return await self.inner.reply(history, language)
        finally:
            self.seconds.append(time.perf_counter() - start)


class InstantBot:
    """Answers at once, in process: the floor under any model."""

    async def reply(self, history: Sequence[Turn], language: str) -> BotReply:
        return BotReply(text="ok")


class NoSummary:
    async def summarize(self, history: Sequence[Turn], language: str, contact: str | None = None) -> Summary:
        return Summary(subject="-", summary="-")


async def run(bot: Bot, database_url: str, conversations: int, turns: int) -> dict[str, list[float]]:
    """Drive `conversations` x `turns` sequential bot turns; latencies per phase, in seconds."""
    callbacks = Callbacks()
    cb_runner, cb_url = await serve(callbacks.app)
    settings = Settings(database_url=database_url, api_secret=SECRET, api_callback_url=cb_url + "/callback",
                        outbox_base_delay=0.01, outbox_max_delay=0.05)
    timed = TimedBot(bot)
    runner, url = await serve(create_app(settings, bot=timed, summarizer=NoSummary()))
    ack: list[float] = []
    e2e: list[float] = []
    run_id = uuid.uuid4().hex[:6]
    try:
        async with aiohttp.ClientSession() as session:
            for c in range(conversations):
                for t in range(turns):
                    key = f"bench-{run_id}-{c}"
                    body = json.dumps({"id": f"{key}-{t}", "conversation": key,
                                       "contact": {"id": key, "name": "Bench"},
                                       "text": f"Question number {t}: where is my order?"}).encode()
                    arrived = callbacks.expect(f"{key}:bot")
                    start = time.perf_counter()
                    async with session.post(url + "/webhooks/api", data=body,
                                            headers={"X-Handoff-Signature": sign(SECRET, body),
                                                     "Content-Type": "application/json"}) as resp:
                        assert resp.status == 202, await resp.text()
                    ack.append(time.perf_counter() - start)
                    e2e.append(await asyncio.wait_for(arrived, 10) - start)
    finally:
        await runner.cleanup()
        await cb_runner.cleanup()
    return {"ack": ack, "e2e": e2e, "model": timed.seconds,
            "overhead": [e - m for e, m in zip(e2e, timed.seconds, strict=True)]}


def line(label: str, values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return (f"  {label:<24} mean {statistics.mean(values) * 1000:7.2f} ms   "
            f"p50 {statistics.median(values) * 1000:7.2f} ms   p95 {p95 * 1000:7.2f} ms")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=20)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        async with FakeOpenAI(default=text("Your order ships tomorrow.")) as fake:
            client = openai.AsyncOpenAI(api_key="sk-bench", base_url=fake.base_url, max_retries=0)
            model_bot = OpenAIBot(client, model="fake-model", wants_human=None, policy=RetryPolicy())
            for label, bot in (("OpenAIBot -> zero-latency fake", model_bot), ("in-process instant bot", InstantBot())):
                url = args.database_url or f"sqlite://{Path(tmp) / (uuid.uuid4().hex + '.db')}"
                await run(bot, url, 2, 3)  # warm up: migrations, connections, imports
                results = await run(bot, url, args.conversations, args.turns)
                print(f"{label} ({len(results['e2e'])} turns, {url.split(':', 1)[0]}):")
                print(line("webhook ack", results["ack"]))
                print(line("end to end", results["e2e"]))
                print(line("model call (bot.reply)", results["model"]))
                print(line("gateway overhead", results["overhead"]))
            await client.close()


if __name__ == "__main__":
    asyncio.run(main())
