"""The hot path's yardstick: the same durable job as handoff's api channel, written by hand.

What a minimal honest implementation must do per message, and nothing more: verify the
HMAC-SHA256 signature (`X-Handoff-Signature: sha256=<hex>`), parse the JSON, store the message
once (`INSERT ... ON CONFLICT DO NOTHING` on the unique (channel, provider id)), commit, answer 202;
then, for a new message, store the reply with its outbox row, commit, POST it signed to the
callback URL, mark the outbox row delivered, commit. Three commits per answered message.

    python benchmarks/yardstick.py --port 8099 --database sqlite:///tmp/y.db \
        --secret S --callback http://127.0.0.1:9000/callback

`--database` is `sqlite://<path>` (aiosqlite, one connection, as handoff uses; WAL, and
`--synchronous` NORMAL unless told FULL: an fsync per commit) or `postgres://...` (an asyncpg pool). The answer is a lookup in a small FAQ table, standing in for
handoff's offline bot. benchmarks/hot_path.py runs it beside handoff under the same load.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
from typing import Any, Protocol

import aiohttp
import aiosqlite
import asyncpg
from aiohttp import web

FAQ = {
    "shipping": "Standard shipping takes 3-5 business days.",
    "return": "You can return any item within 30 days.",
    "order": "You can track your order from the link in your confirmation email.",
    "paypal": "Yes, we accept PayPal.",
    "open": "We are open Monday to Friday, 9:00-18:00.",
}

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS message (id {pk}, channel TEXT NOT NULL, provider_id TEXT,
       conversation TEXT NOT NULL, author TEXT NOT NULL, text TEXT NOT NULL, UNIQUE (channel, provider_id))""",
    "CREATE TABLE IF NOT EXISTS outbox (id {pk}, message_id INTEGER NOT NULL, status TEXT NOT NULL)",
]


def answer_to(text: str) -> str:
    """The FAQ answer whose key the question mentions, else a fallback."""
    lowered = text.lower()
    return next((reply for key, reply in FAQ.items() if key in lowered), "Let me check that for you.")


def sign(secret: str, body: bytes) -> str:
    """`sha256=<hex HMAC>` of `body`, as handoff's api channel signs."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class Store(Protocol):
    async def inbound(self, provider_id: str, conversation: str, text: str) -> bool: ...
    async def reply(self, conversation: str, text: str) -> int: ...
    async def delivered(self, outbox_id: int) -> None: ...


class SqliteStore:
    """One aiosqlite connection (its own thread), explicit transactions."""

    def __init__(self, conn: aiosqlite.Connection) -> None:
        self.conn = conn
        self.lock = asyncio.Lock()  # one transaction at a time on the one connection

    @classmethod
    async def open(cls, path: str, synchronous: str = "NORMAL") -> SqliteStore:
        conn = await aiosqlite.connect(path, isolation_level=None)
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute(f"PRAGMA synchronous={'FULL' if synchronous.upper() == 'FULL' else 'NORMAL'}")
        for statement in SCHEMA:
            await conn.execute(statement.format(pk="INTEGER PRIMARY KEY"))
        return cls(conn)

    async def inbound(self, provider_id: str, conversation: str, text: str) -> bool:
        async with self.lock:
            cursor = await self.conn.execute(
                "INSERT INTO message (channel, provider_id, conversation, author, text) VALUES ('api', ?, ?, 'customer', ?)"
                " ON CONFLICT DO NOTHING", (provider_id, conversation, text))
            return cursor.rowcount == 1  # autocommit: the statement is its own committed transaction

    async def reply(self, conversation: str, text: str) -> int:
        async with self.lock:
            await self.conn.execute("BEGIN")
            cursor = await self.conn.execute(
                "INSERT INTO message (channel, conversation, author, text) VALUES ('api', ?, 'bot', ?)", (conversation, text))
            outbox = await self.conn.execute("INSERT INTO outbox (message_id, status) VALUES (?, 'pending')",
                                             (cursor.lastrowid,))
            await self.conn.execute("COMMIT")
            return int(outbox.lastrowid or 0)

    async def delivered(self, outbox_id: int) -> None:
        async with self.lock:
            await self.conn.execute("UPDATE outbox SET status = 'delivered' WHERE id = ?", (outbox_id,))


class PostgresStore:
    """An asyncpg pool."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def open(cls, url: str) -> PostgresStore:
        pool = await asyncpg.create_pool(url.replace("postgres://", "postgresql://", 1), min_size=2, max_size=10)
        async with pool.acquire() as conn:
            for statement in SCHEMA:
                await conn.execute(statement.format(pk="BIGSERIAL PRIMARY KEY"))
        return cls(pool)

    async def inbound(self, provider_id: str, conversation: str, text: str) -> bool:
        status = await self.pool.execute(
            "INSERT INTO message (channel, provider_id, conversation, author, text) VALUES ('api', $1, $2, 'customer', $3)"
            " ON CONFLICT DO NOTHING", provider_id, conversation, text)
        return status.endswith(" 1")

    async def reply(self, conversation: str, text: str) -> int:
        async with self.pool.acquire() as conn, conn.transaction():
            message_id = await conn.fetchval(
                "INSERT INTO message (channel, conversation, author, text) VALUES ('api', $1, 'bot', $2) RETURNING id",
                conversation, text)
            return int(await conn.fetchval(
                "INSERT INTO outbox (message_id, status) VALUES ($1, 'pending') RETURNING id", message_id))

    async def delivered(self, outbox_id: int) -> None:
        await self.pool.execute("UPDATE outbox SET status = 'delivered' WHERE id = $1", outbox_id)


def build_app(store: Store, secret: str, callback: str) -> web.Application:
    """The yardstick's one route, `POST /webhooks/api`, and its reply pipeline."""
    tasks: set[asyncio.Task[None]] = set()
    session: dict[str, aiohttp.ClientSession] = {}

    async def answer(conversation: str, text: str) -> None:
        reply = answer_to(text)
        outbox_id = await store.reply(conversation, reply)
        body = json.dumps({"id": str(outbox_id), "conversation": conversation, "kind": "bot", "text": reply}).encode()
        async with session["http"].post(callback, data=body, headers={
                "X-Handoff-Signature": sign(secret, body), "Content-Type": "application/json"}) as resp:
            await resp.read()
            if resp.status < 300:
                await store.delivered(outbox_id)

    async def webhook(request: web.Request) -> web.Response:
        body = await request.read()
        if not hmac.compare_digest(sign(secret, body), request.headers.get("X-Handoff-Signature", "")):
            return web.json_response({"error": "invalid signature"}, status=401)
        try:
            data: dict[str, Any] = json.loads(body)
            provider_id, conversation, text = str(data["id"]), str(data["conversation"]), str(data["text"])
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "bad payload"}, status=400)
        if await store.inbound(provider_id, conversation, text):
            task = asyncio.create_task(answer(conversation, text))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        return web.json_response({"ok": True}, status=202)

    async def open_session(app: web.Application) -> Any:
        session["http"] = aiohttp.ClientSession()
        yield
        await session["http"].close()

    app = web.Application()
    app.router.add_post("/webhooks/api", webhook)
    app.cleanup_ctx.append(open_session)
    return app


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database", required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--callback", required=True)
    parser.add_argument("--synchronous", default="NORMAL", choices=["NORMAL", "FULL", "normal", "full"])
    args = parser.parse_args()
    store: Store
    if args.database.startswith(("postgres://", "postgresql://")):
        store = await PostgresStore.open(args.database)
    else:
        store = await SqliteStore.open(args.database.removeprefix("sqlite://"), args.synchronous)
    runner = web.AppRunner(build_app(store, args.secret, args.callback), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main())
