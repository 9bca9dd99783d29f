"""What the benchmarks share: serving an aiohttp app on a free local port, the integrator's
callback endpoint that tells when a reply arrived, and a throwaway database for a run (a
re-used database would answer the benchmark's message ids as duplicates)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
from aiohttp import web


@contextlib.contextmanager
def no_collector_pauses() -> object:
    """While a measurement runs, this process (the load generator, the callback endpoint) does
    not stop for the garbage collector: what it holds is frozen out of the collector's passes and
    collection is off until the block ends. A full pass of this process stalled every request in
    flight at once (takeover p99 of 70 ms where the server answered in 15), charged to the server
    measured."""
    gc.collect()
    gc.freeze()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
        gc.unfreeze()


# Questions the offline bot answers from its FAQ: every benchmark's customers ask these.
QUESTIONS = ["How long does shipping take?", "What is your return policy?", "Where is my order?",
             "Do you accept PayPal?", "When are you open?"]


def bodies(prefix: str, n: int) -> list[bytes]:
    """`n` unique api-channel messages, each opening its own conversation and asking an FAQ question."""
    return [json.dumps({"id": f"{prefix}-{i}", "conversation": f"{prefix}-conv-{i}", "contact": {"id": f"{prefix}-c{i}"},
                        "text": QUESTIONS[i % len(QUESTIONS)]}).encode() for i in range(n)]


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Run `app` on a free local port; returns its runner and base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


class Callbacks:
    """The integrator's api-channel callback endpoint: records when each conversation's reply arrived."""

    def __init__(self) -> None:
        self.arrivals: dict[str, asyncio.Future[float]] = {}
        self.app = web.Application()
        self.app.router.add_post("/callback", self._handle)

    def expect(self, key: str) -> asyncio.Future[float]:
        """A future of the arrival time (perf_counter) of the message `"<conversation>:<kind>"`."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.arrivals[key] = future
        return future

    async def _handle(self, request: web.Request) -> web.Response:
        payload = json.loads(await request.read())
        future = self.arrivals.get(f"{payload['conversation']}:{payload['kind']}")
        if future is not None and not future.done():
            future.set_result(time.perf_counter())
        return web.json_response({"ok": True})


@contextlib.asynccontextmanager
async def fresh_database(url: str = "") -> AsyncIterator[str]:
    """Yield the URL of an empty database: SQLite in a temporary folder, or, for a
    `postgres://` URL, a new database on that server, dropped afterwards."""
    if not url.startswith(("postgres://", "postgresql://")):
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite://{Path(tmp) / 'bench.db'}"
        return
    server, _ = url.rsplit("/", 1)
    name = f"handoff_bench_{uuid.uuid4().hex[:8]}"
    admin = url.replace("postgres://", "postgresql://", 1)
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        yield f"{server}/{name}"
    finally:
        conn = await asyncpg.connect(admin)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()
