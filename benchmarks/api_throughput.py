"""End-to-end api-channel throughput: signed webhook -> stored -> offline bot -> reply
delivered to a local callback receiver, next to a bare aiohttp handler in the same run.

    .venv/bin/python benchmarks/api_throughput.py [--messages 500] [--concurrency 16]
        [--database postgres://root@127.0.0.1:5432/test]

With a postgres:// URL a throwaway database is created on that server and dropped after;
benchmarks/queries_per_message.py shows the SQL each answered message costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import Callbacks, bodies, fresh_database, serve  # noqa: E402
from handoff.app import create_app  # noqa: E402
from handoff.channels.api import sign  # noqa: E402
from handoff.config import Settings  # noqa: E402

SECRET = "bench-secret"


async def _fire(url: str, bodies: list[bytes], concurrency: int, signed: bool) -> float:
    queue = list(reversed(bodies))
    async with aiohttp.ClientSession() as session:
        async def worker() -> None:
            while queue:
                body = queue.pop()
                headers = {"X-Handoff-Signature": sign(SECRET, body)} if signed else {}
                async with session.post(url, data=body, headers=headers) as resp:
                    assert resp.status == 202, await resp.text()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started


async def bare_rps(bodies: list[bytes], concurrency: int) -> float:
    """Requests per second of an aiohttp handler that only reads the body and answers 202."""
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"ok": True}, status=202)

    app = web.Application()
    app.router.add_post("/hook", handler)
    runner, base = await serve(app)
    try:
        return len(bodies) / await _fire(base + "/hook", bodies, concurrency, signed=False)
    finally:
        await runner.cleanup()


async def handoff_mps(bodies: list[bytes], concurrency: int, database_url: str) -> tuple[float, float]:
    """(webhooks acknowledged per second, messages answered end to end per second)."""
    callbacks = Callbacks()
    answered = [callbacks.expect(f"{json.loads(body)['conversation']}:bot") for body in bodies]
    sink_runner, sink_base = await serve(callbacks.app)
    settings = Settings(database_url=database_url, api_secret=SECRET, api_callback_url=sink_base + "/callback")
    runner, base = await serve(create_app(settings))
    try:
        started = time.perf_counter()
        acked = await _fire(base + "/webhooks/api", bodies, concurrency, signed=True)
        await asyncio.wait_for(asyncio.gather(*answered), 600)
        total = time.perf_counter() - started
        return len(bodies) / acked, len(bodies) / total
    finally:
        await runner.cleanup()
        await sink_runner.cleanup()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--database", default="")
    args = parser.parse_args()
    batch = bodies("bench", args.messages)
    async with fresh_database(args.database) as database:
        bare = await bare_rps(batch, args.concurrency)
        acked, answered = await handoff_mps(batch, args.concurrency, database)
    print(f"messages={args.messages} concurrency={args.concurrency} database={database.split(':')[0]}")
    print(f"bare aiohttp handler          {bare:8.1f} req/s")
    print(f"handoff webhooks acknowledged {acked:8.1f} msg/s  ({acked / bare:.3f} of bare)")
    print(f"handoff answered end to end   {answered:8.1f} msg/s  ({answered / bare:.3f} of bare)")


if __name__ == "__main__":
    asyncio.run(main())
