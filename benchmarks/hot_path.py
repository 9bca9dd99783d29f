"""handoff's hot path beside the hand-written yardstick (benchmarks/yardstick.py), in one run.

Each server runs as its own process pinned to CPU 0 (`taskset`, when present); this process — the
load generator and the integrator's callback endpoint — pins itself to the other CPUs. Load is
unique signed api-channel messages, each a new conversation asking an FAQ question the offline bot
answers; replies arrive signed at the local callback.

    .venv/bin/python benchmarks/hot_path.py [--messages 2000] [--concurrency 64]
        [--postgres postgres://root@127.0.0.1:5432/test]   # '' to skip PostgreSQL

Printed per server and store: webhooks acknowledged/s and ack p50/p99 at full load (closed loop,
`--concurrency` requests in flight), messages answered end to end/s (first request to last
callback), ack p99 at half of that server's own full-load rate (open loop, fixed arrival rate), and
handoff's figures as ratios of the yardstick's measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import socket
import statistics
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import Callbacks, fresh_database, serve  # noqa: E402
from benchmarks.yardstick import sign  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret"
QUESTIONS = ["How long does shipping take?", "What is your return policy?", "Where is my order?",
             "Do you accept PayPal?", "When are you open?"]


@dataclass
class Figures:
    acked: float  # webhooks acknowledged per second at full load
    ack_p50: float  # ms
    ack_p99: float  # ms
    answered: float  # messages answered end to end per second
    half_p99: float = 0.0  # ms, ack p99 at half of `acked`


def bodies(prefix: str, n: int) -> list[bytes]:
    """`n` unique api-channel messages, each opening its own conversation."""
    return [json.dumps({"id": f"{prefix}-{i}", "conversation": f"{prefix}-conv-{i}", "contact": {"id": f"{prefix}-c{i}"},
                        "text": QUESTIONS[i % len(QUESTIONS)]}).encode() for i in range(n)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pinned(command: list[str]) -> list[str]:
    return ["taskset", "-c", "0", *command] if shutil.which("taskset") and (os.cpu_count() or 1) > 1 else command


@contextlib.asynccontextmanager
async def server(kind: str, database: str, callback: str) -> AsyncIterator[str]:
    """Start `kind` ("handoff" or "yardstick") on a free port; yield its base URL."""
    port = _free_port()
    python = sys.executable
    if kind == "yardstick":
        command = [python, str(ROOT / "benchmarks" / "yardstick.py"), "--port", str(port), "--database", database,
                   "--secret", SECRET, "--callback", callback]
        env = dict(os.environ)
    else:
        command = [python, "-m", "handoff.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
        env = {**os.environ, "HANDOFF_DATABASE_URL": database, "HANDOFF_API_SECRET": SECRET,
               "HANDOFF_API_CALLBACK_URL": callback, "PYTHONPATH": str(ROOT)}
    process = await asyncio.create_subprocess_exec(*_pinned(command), env=env, cwd=str(ROOT),
                                                   stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            for _ in range(600):
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.post(base + "/webhooks/api", data=b"{}") as resp:
                        if resp.status in (400, 401, 422):  # up: it refuses an unsigned body
                            break
                if process.returncode is not None:
                    raise RuntimeError(f"{kind} exited with {process.returncode}")
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"{kind} did not start")
        yield base
    finally:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 20)
        except TimeoutError:
            process.kill()
            await process.wait()


async def _post(session: aiohttp.ClientSession, url: str, body: bytes) -> float:
    started = time.perf_counter()
    async with session.post(url, data=body, headers={"X-Handoff-Signature": sign(SECRET, body),
                                                     "Content-Type": "application/json"}) as resp:
        await resp.read()
        if resp.status != 202:
            raise RuntimeError(f"webhook answered {resp.status}")
    return (time.perf_counter() - started) * 1000


def _p(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0]


async def full_load(url: str, batch: list[bytes], callbacks: Callbacks, concurrency: int) -> Figures:
    """Closed loop: `concurrency` requests in flight until `batch` is sent; then wait for every reply."""
    answered = [callbacks.expect(f"{json.loads(b)['conversation']}:bot") for b in batch]
    queue = list(reversed(batch))
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def worker() -> None:
            while queue:
                latencies.append(await _post(session, url, queue.pop()))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        acked_at = time.perf_counter()
        await asyncio.wait_for(asyncio.gather(*answered), 900)
        done = time.perf_counter()
    return Figures(acked=len(batch) / (acked_at - started), ack_p50=_p(latencies, 50), ack_p99=_p(latencies, 99),
                   answered=len(batch) / (done - started))


async def fixed_rate(url: str, batch: list[bytes], callbacks: Callbacks, rate: float) -> float:
    """Open loop: one request every 1/`rate` s whatever the answers; ack p99 in ms."""
    answered = [callbacks.expect(f"{json.loads(b)['conversation']}:bot") for b in batch]
    latencies: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        started = time.perf_counter()
        tasks = []
        for i, body in enumerate(batch):
            delay = started + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(_post(session, url, body)))
        latencies = list(await asyncio.gather(*tasks))
        await asyncio.wait_for(asyncio.gather(*answered), 900)
    return _p(latencies, 99)


async def measure(kind: str, database_url: str, messages: int, concurrency: int) -> Figures:
    """Full load then half load against a fresh server of `kind` on a fresh database."""
    callbacks = Callbacks()
    sink, sink_base = await serve(callbacks.app)
    try:
        async with fresh_database(database_url) as database, server(kind, database, sink_base + "/callback") as base:
            url = base + "/webhooks/api"
            await full_load(url, bodies(f"{kind}-warm", min(200, messages)), callbacks, concurrency)
            figures = await full_load(url, bodies(f"{kind}-full", messages), callbacks, concurrency)
            half = figures.acked / 2
            figures.half_p99 = await fixed_rate(url, bodies(f"{kind}-half", max(100, int(half * 5))), callbacks, half)
            return figures
    finally:
        await sink.cleanup()


def _row(name: str, f: Figures, base: Figures | None) -> str:
    ratio = f"  ({f.answered / base.answered:.2f}x the yardstick)" if base else ""
    return (f"{name:24} {f.acked:9.0f} {f.ack_p50:8.1f} {f.ack_p99:8.1f} {f.half_p99:9.1f} {f.answered:10.0f}{ratio}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--postgres", default="postgres://root@127.0.0.1:5432/test")
    args = parser.parse_args()
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, set(range(1, os.cpu_count() or 2)))
    stores = [("sqlite", "")] + ([("postgres", args.postgres)] if args.postgres else [])
    print(f"messages={args.messages} concurrency={args.concurrency} servers pinned to CPU 0: "
          f"{bool(shutil.which('taskset'))}")
    print(f"{'':24} {'acked/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'½ p99 ms':>9} {'answered/s':>10}")
    for store, url in stores:
        yardstick = await measure("yardstick", url, args.messages, args.concurrency)
        print(_row(f"yardstick ({store})", yardstick, None), flush=True)
        handoff = await measure("handoff", url, args.messages, args.concurrency)
        print(_row(f"handoff ({store})", handoff, yardstick), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
