"""End-to-end answered rate of 1 and of 3 `handoff serve` instances on PostgreSQL + Redis, against
the same load in one run: signed api-channel webhooks (each a new conversation asking an FAQ
question the offline bot answers), spread round-robin over the instances, until every reply has
reached the local callback receiver.

    .venv/bin/python benchmarks/instances.py [--conversations 600] [--concurrency 32] [--sizes 1,3]

It starts its own PostgreSQL cluster (initdb into /tmp) and redis-server on free ports
(tests/fakes/processes.py, shared with the fault suite), a fresh database per size, and real
`handoff serve` processes. Rates are customer messages answered per second, from the first
webhook sent to the last reply received; the ratio is the larger cluster's rate over one
instance's. The load generator and the receiver share this process, and everything shares the
machine's cores: read the ratio, not the absolute figures.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import serve  # noqa: E402
from tests.fakes.api_customers import Load  # noqa: E402
from tests.fakes.api_receiver import CallbackReceiver  # noqa: E402
from tests.fakes.processes import Cluster, PostgresServer, RedisServer  # noqa: E402

SECRET = "bench-secret"


async def answered_rate(pg: PostgresServer, redis: RedisServer, size: int, conversations: int,
                        concurrency: int) -> float:
    """Messages answered end to end per second by `size` instances on a fresh database."""
    receiver = CallbackReceiver(SECRET)
    runner, base = await serve(receiver.app)
    with tempfile.TemporaryDirectory(prefix="handoff-bench-") as tmp:
        cluster = Cluster(await pg.create_database(), redis.url, base + "/callback", SECRET, size, Path(tmp))
        try:
            await cluster.start()
            load = Load(SECRET, cluster.urls, burst=(1, 1), copies=(1, 1), seed=size)
            started = time.monotonic()
            await load.run(conversations, concurrency=concurrency, prefix=f"bench{size}")
            await receiver.wait_for(lambda received: len(received) >= conversations, timeout=600)
            return conversations / (max(receiver.arrived_at) - started)
        finally:
            cluster.stop()
            await runner.cleanup()


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--sizes", default="1,3", help="instance counts to compare, the first is the base")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    pg, redis = PostgresServer().init(), RedisServer()
    pg.start()
    redis.start()
    try:
        rates = {size: await answered_rate(pg, redis, size, args.conversations, args.concurrency) for size in sizes}
    finally:
        redis.destroy()
        pg.destroy()
    print(f"conversations={args.conversations} concurrency={args.concurrency} database=postgres redis=on")
    for size, rate in rates.items():
        print(f"{size} instance{'s' if size > 1 else ' '} answered end to end {rate:8.1f} msg/s"
              f"  ({rate / rates[sizes[0]]:.2f}x {sizes[0]} instance)")


if __name__ == "__main__":
    asyncio.run(main())
