"""handoff's hot path beside the hand-written yardstick (benchmarks/yardstick.py), in one run.

Each server runs as its own process pinned to CPU 0 (`taskset`, when present); this process — the
load generator and the integrator's callback endpoint — pins itself to the other CPUs. Load is
unique signed api-channel messages, each a new conversation asking an FAQ question the offline bot
answers; replies arrive signed at the local callback.

    .venv/bin/python benchmarks/hot_path.py [--messages 2000] [--concurrency 64]
        [--postgres postgres://root@127.0.0.1:5432/test]   # '' to skip PostgreSQL
        [--synchronous normal|full] [--history 1000000] [--skip-history]

On SQLite both servers run in WAL mode with the same `--synchronous` (default NORMAL, as the
yardstick was written: a commit survives a crash of the process, not of the machine; FULL adds an
fsync per commit). handoff gets it in its database URL (`sqlite://path?synchronous=NORMAL`), and
runs without an access log (`HANDOFF_ACCESS_LOG=off`), as the yardstick does.

Printed per server and store: webhooks acknowledged/s and ack p50/p99 at full load (closed loop,
`--concurrency` requests in flight), messages answered end to end/s (first request to last
callback), ack p99 at half of that server's own maximum rate (the lower of acked/s and answered/s:
above its answered rate a server's backlog grows without bound; open loop, fixed arrival rate), and
handoff's figures as ratios of the yardstick's measured in the same run. Then, for handoff alone:
takeover latency with `--agents` agents clicking Take over on the same conversation at once (p99,
and how many requests won each round — exactly one must), and the median per-message latency
(webhook to callback, one message at a time) on an empty database and on one seeded with
`--history` messages by bulk inserts, and their ratio.

This process's garbage collector is held off while each figure is measured
(`harness.no_collector_pauses`): its full passes stalled every request in flight at once, and the
pause was charged to the server measured.
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

from benchmarks.harness import QUESTIONS, Callbacks, bodies, fresh_database, no_collector_pauses, serve  # noqa: E402
from benchmarks.yardstick import sign  # noqa: E402
from handoff import db  # noqa: E402
from handoff.desk.auth import create_agent  # noqa: E402
from handoff.models import Contact, Conversation, Message, utcnow  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret"
SYNCHRONOUS = {"mode": "NORMAL"}  # SQLite's, for both servers (set from --synchronous)


def _with_synchronous(database: str) -> str:
    return f"{database}?synchronous={SYNCHRONOUS['mode']}" if database.startswith("sqlite://") else database


@dataclass
class Figures:
    acked: float  # webhooks acknowledged per second at full load
    ack_p50: float  # ms
    ack_p99: float  # ms
    answered: float  # messages answered end to end per second
    half_p99: float = 0.0  # ms, ack p99 at half of the rate sustained (the lower of `acked` and `answered`)


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
                   "--secret", SECRET, "--callback", callback, "--synchronous", SYNCHRONOUS["mode"]]
        env = dict(os.environ)
    else:
        command = [python, "-m", "handoff.cli", "serve", "--host", "127.0.0.1", "--port", str(port)]
        # No access log, as the yardstick has none (HANDOFF_ACCESS_LOG).
        env = {**os.environ, "HANDOFF_ACCESS_LOG": "off", "HANDOFF_DATABASE_URL": _with_synchronous(database),
               "HANDOFF_API_SECRET": SECRET,
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
            with no_collector_pauses():
                figures = await full_load(url, bodies(f"{kind}-full", messages), callbacks, concurrency)
            # A server's maximum rate is the one it sustains end to end: above its answered rate
            # it acknowledges faster than it answers and its backlog grows without bound.
            half = min(figures.acked, figures.answered) / 2
            with no_collector_pauses():
                figures.half_p99 = await fixed_rate(url, bodies(f"{kind}-half", max(100, int(half * 5))), callbacks, half)
            return figures
    finally:
        await sink.cleanup()


async def prepare(database: str, agents: int, history: int) -> list[str]:
    """Migrate `database`, add `agents` agents (their API tokens are returned) and `history`
    messages of ended conversations (100 per conversation), inserted in bulk."""
    await db.migrate(database)
    client = await db.connect(database)
    try:
        tokens = [(await create_agent(f"Agent {i}", f"agent{i}-{time.time_ns()}@bench.example"))[1] for i in range(agents)]
        per_conversation = 100
        for start in range(0, history, 100_000):
            n = min(100_000, history - start) // per_conversation
            names = [f"Seeded {start + i}" for i in range(n)]
            await Contact.bulk_create([Contact(name=name) for name in names], batch_size=5000)
            contact_ids = [c.id for c in await Contact.filter(name__in=names).only("id")]  # bulk_create leaves ids unset
            now = utcnow()
            conversations = [Conversation(contact_id=cid, channel="api", external_key=f"seed-{cid}", contact_external_id=f"seed-{cid}",
                                          state="ended", last_activity_at=now, ended_at=now) for cid in contact_ids]
            await Conversation.bulk_create(conversations, batch_size=5000)
            ids = [c.id for c in await Conversation.filter(external_key__in=[f"seed-{cid}" for cid in contact_ids]).only("id")]
            await Message.bulk_create(
                [Message(conversation_id=cid, channel="api", direction="in" if k % 2 == 0 else "out",
                         author_kind="customer" if k % 2 == 0 else "bot", text=QUESTIONS[k % len(QUESTIONS)],
                         provider_id=f"seed-{cid}-{k}" if k % 2 == 0 else None, created_at=now)
                 for cid in ids for k in range(per_conversation)], batch_size=10_000)
        if history:
            # Statistics, and on PostgreSQL the visibility map and a checkpoint, for the new rows now,
            # as a database that grew to this size over time has them: else autovacuum and the
            # checkpointer work through the million rows during the measurement.
            postgres = client.capabilities.dialect == "postgres"
            for statement in ("VACUUM ANALYZE", "CHECKPOINT") if postgres else ("ANALYZE",):
                await client.execute_script(statement)
        return tokens
    finally:
        await db.disconnect(client)


async def bot_conversations(database: str, n: int) -> list[int]:
    """Ids of up to `n` conversations the bot answers (takeover candidates)."""
    client = await db.connect(database)
    try:
        return [c.id for c in await Conversation.filter(state="bot").limit(n).only("id")]
    finally:
        await db.disconnect(client)


async def takeover_race(base: str, tokens: list[str], conversation_ids: list[int]) -> tuple[float, list[int]]:
    """Every agent clicks Take over on each conversation at once: (p99 ms, winners per conversation).
    The first conversation's round is not measured: it opens each agent's connection and first
    request, which an agent's open desk has already made."""
    latencies: list[float] = []
    winners: list[int] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def click(conversation_id: int, token: str) -> bool:
            started = time.perf_counter()
            async with session.post(f"{base}/api/v1/conversations/{conversation_id}/takeover",
                                    headers={"Authorization": f"Bearer {token}"}) as resp:
                await resp.read()
                latencies.append((time.perf_counter() - started) * 1000)
                if resp.status not in (201, 409):
                    raise RuntimeError(f"takeover answered {resp.status}")
                return resp.status == 201

        await asyncio.gather(*(click(conversation_ids[0], token) for token in tokens))
        latencies.clear()
        for conversation_id in conversation_ids[1:]:
            won = await asyncio.gather(*(click(conversation_id, token) for token in tokens))
            winners.append(sum(won))
    return _p(latencies, 99), winners


async def one_at_a_time(url: str, batch: list[bytes], callbacks: Callbacks) -> float:
    """Median ms from posting a message to its reply reaching the callback, one message at a time."""
    times = []
    async with aiohttp.ClientSession() as session:
        for body in batch:
            arrived = callbacks.expect(f"{json.loads(body)['conversation']}:bot")
            started = time.perf_counter()
            await _post(session, url, body)
            times.append((await asyncio.wait_for(arrived, 60) - started) * 1000)
    return statistics.median(times)


async def handoff_only(database_url: str, agents: int, history: int, messages: int) -> None:
    """Takeover under contention, then per-message latency on an empty and a seeded database."""
    callbacks = Callbacks()
    sink, sink_base = await serve(callbacks.app)
    try:
        latency = {}
        for seeded in (0, history):
            async with fresh_database(database_url) as database:
                tokens = await prepare(database, agents if not seeded else 0, seeded)
                async with server("handoff", database, sink_base + "/callback") as base:
                    url = base + "/webhooks/api"
                    await one_at_a_time(url, bodies(f"warm-{seeded}", 50), callbacks)
                    with no_collector_pauses():
                        latency[seeded] = await one_at_a_time(url, bodies(f"seq-{seeded}", messages), callbacks)
                    if not seeded:
                        candidates = await bot_conversations(database, 21)
                        with no_collector_pauses():
                            p99, winners = await takeover_race(base, tokens, candidates)
                        print(f"  takeover, {agents} agents at once: p99 {p99:.1f} ms over {len(winners)} conversations; "
                              f"winners per conversation: {sorted(set(winners))} (exactly one: {set(winners) == {1}})")
        print(f"  per-message latency (median, one at a time): empty {latency[0]:.1f} ms, with {history:,} stored "
              f"{latency[history]:.1f} ms ({latency[history] / latency[0]:.2f}x)", flush=True)
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
    parser.add_argument("--agents", type=int, default=32)
    parser.add_argument("--history", type=int, default=1_000_000)
    parser.add_argument("--sequential", type=int, default=200, help="messages for the one-at-a-time latency")
    parser.add_argument("--synchronous", default="normal", choices=["normal", "full"], help="SQLite's, for both servers")
    parser.add_argument("--skip-history", action="store_true", help="only the throughput table")
    args = parser.parse_args()
    SYNCHRONOUS["mode"] = args.synchronous.upper()
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, set(range(1, os.cpu_count() or 2)))
    stores = [("sqlite", "")] + ([("postgres", args.postgres)] if args.postgres else [])
    print(f"messages={args.messages} concurrency={args.concurrency} servers pinned to CPU 0: "
          f"{bool(shutil.which('taskset'))} SQLite synchronous={SYNCHRONOUS['mode']}")
    print(f"{'':24} {'acked/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'½ p99 ms':>9} {'answered/s':>10}")
    for store, url in stores:
        yardstick = await measure("yardstick", url, args.messages, args.concurrency)
        print(_row(f"yardstick ({store})", yardstick, None), flush=True)
        handoff = await measure("handoff", url, args.messages, args.concurrency)
        print(_row(f"handoff ({store})", handoff, yardstick), flush=True)
        if not args.skip_history:
            await handoff_only(url, args.agents, args.history, args.sequential)


if __name__ == "__main__":
    asyncio.run(main())
