"""Benchmark: verified-and-stored WhatsApp (Twilio) webhooks per second, and p99 ack latency,
next to a bare aiohttp handler measured in the same run with the same client.

Each request is a distinct, correctly signed Twilio form body (X-Twilio-Signature over the public
URL), so every one goes through signature verification, parsing, deduplication and the database
commit before the empty TwiML ack. The scripted echo bot answers each one, and the replies go
to a local fake Twilio API through the outbox while the benchmark runs.

    PYTHONPATH=. python benchmarks/whatsapp_webhooks.py [--requests 2000] [--concurrency 32]
        [--database-url sqlite:///tmp/bench.db]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from handoff.app import create_app
from handoff.channels.whatsapp import WhatsAppChannel
from handoff.config import Settings
from tests.fakes.bots import EchoBot, FixedSummarizer
from tests.fakes.twilio_api import FakeTwilio

AC = "AC" + "0" * 32
TOKEN = "bench-auth-token"


def body(i: int) -> bytes:
    """A Twilio inbound WhatsApp form body, unique per i (100 customers, many messages each)."""
    number = f"+55119{i % 100:08d}"
    return urlencode({
        "SmsMessageSid": f"SM{i:032x}", "NumMedia": "0", "ProfileName": f"Customer {i % 100}",
        "MessageType": "text", "SmsSid": f"SM{i:032x}", "WaId": number[1:], "SmsStatus": "received",
        "Body": f"Hello, this is message {i}", "To": "whatsapp:+14155238886", "NumSegments": "1",
        "ReferralNumMedia": "0", "MessageSid": f"SM{i:032x}", "AccountSid": AC,
        "From": f"whatsapp:{number}", "ApiVersion": "2010-04-01",
    }).encode()


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Run `app` on a free local port."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


async def drive(url: str, requests: list[tuple[bytes, dict[str, str]]], concurrency: int) -> tuple[float, list[float], int]:
    """POST every request with `concurrency` workers; (seconds, latencies, failures)."""
    latencies: list[float] = []
    failures = 0
    queue = iter(requests)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal failures
        for data, headers in queue:
            start = time.perf_counter()
            async with session.post(url, data=data, headers=headers) as resp:
                await resp.read()
                if resp.status != 200:
                    failures += 1
            latencies.append(time.perf_counter() - start)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return time.perf_counter() - start, latencies, failures


def report(label: str, seconds: float, latencies: list[float], failures: int) -> None:
    """Print one result line."""
    ordered = sorted(latencies)
    p99 = ordered[int(len(ordered) * 0.99) - 1] * 1000
    print(f"{label:<34} {len(latencies) / seconds:>9.0f} req/s   p50 {statistics.median(ordered) * 1000:6.1f} ms"
          f"   p99 {p99:6.1f} ms   non-200: {failures}")


async def bare_app() -> web.Application:
    """The baseline: read the body, answer empty TwiML."""
    async def handler(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text='<?xml version="1.0" encoding="UTF-8"?><Response/>', content_type="text/xml")

    app = web.Application()
    app.router.add_post("/webhooks/whatsapp", handler)
    return app


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()

    async with FakeTwilio(AC, TOKEN) as fake:
        bare_runner, bare_url = await serve(await bare_app())
        with tempfile.TemporaryDirectory() as tmp:
            db = args.database_url or f"sqlite://{Path(tmp) / 'bench.db'}"
            settings = Settings(
                database_url=db, public_url="https://bench.example.com", twilio_account_sid=AC,
                twilio_auth_token=TOKEN, twilio_whatsapp_number="+14155238886", twilio_api_base=fake.url,
            )
            channel = WhatsAppChannel.from_settings(settings)
            assert channel is not None
            signed_url = settings.public_url + "/webhooks/whatsapp"
            requests = [(b, channel.sign(b, signed_url)) for b in map(body, range(args.requests))]
            runner, url = await serve(create_app(settings, bot=EchoBot(), summarizer=FixedSummarizer()))
            try:
                # Warm up both servers (connections, caches, first migrations/queries).
                await drive(bare_url + "/webhooks/whatsapp", requests[:50], 4)
                await drive(url + "/webhooks/whatsapp", [(body(10**9 + i), channel.sign(body(10**9 + i), signed_url)) for i in range(50)], 4)
                print(f"{args.requests} requests, concurrency {args.concurrency}, database {db.split(':')[0]}")
                report("bare aiohttp handler", *await drive(bare_url + "/webhooks/whatsapp", requests, args.concurrency))
                report("handoff /webhooks/whatsapp", *await drive(url + "/webhooks/whatsapp", requests, args.concurrency))
                report("handoff, same bodies replayed", *await drive(url + "/webhooks/whatsapp", requests, args.concurrency))
            finally:
                await runner.cleanup()
                await bare_runner.cleanup()
                await channel.close()


if __name__ == "__main__":
    asyncio.run(main())
