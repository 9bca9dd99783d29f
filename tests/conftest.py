"""Shared fixtures: every storage test runs on SQLite and on PostgreSQL.

PostgreSQL: one fresh database per test session (created from 127.0.0.1:5432/test,
dropped at the end), migrated once and truncated before each test.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from handoff import db
from handoff.app import create_app
from handoff.channels.api import sign
from handoff.config import Settings
from handoff.desk.auth import create_agent
from handoff.runtime import RUNTIME, Runtime
from tests.fakes.api_receiver import CallbackReceiver
from tests.fakes.bots import EchoBot, FixedSummarizer

PG_ADMIN_DSN = os.environ.get("HANDOFF_TEST_PG", "postgres://root@127.0.0.1:5432/test")
API_SECRET = "test-api-secret"


def _pg_url(name: str) -> str:
    base = PG_ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base}/{name}"


@pytest.fixture(scope="session")
def postgres_url() -> Any:
    """A migrated PostgreSQL database private to this test session."""
    name = f"handoff_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"

    async def create() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        await db.migrate(_pg_url(name))

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    _run_in_thread(create())
    yield _pg_url(name)
    _run_in_thread(drop())


def _run_in_thread(coro: Any) -> None:
    """Run a coroutine to completion on its own loop (fixtures may be set up inside a running loop)."""
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, coro).result()


async def _truncate(url: str) -> None:
    conn = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        tables = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'tortoise%'")
        names = ", ".join(f'"{t["tablename"]}"' for t in tables)
        await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def db_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A clean database URL: a new SQLite file, or the session's PostgreSQL truncated."""
    if request.param == "sqlite":
        return f"sqlite://{tmp_path / 'handoff.db'}"
    url = request.getfixturevalue("postgres_url")
    await _truncate(url)
    return url


@pytest.fixture
async def callback(aiohttp_server: Any) -> CallbackReceiver:
    """The integrator's endpoint that receives api-channel callbacks."""
    receiver = CallbackReceiver(API_SECRET)
    server = await aiohttp_server(receiver.app)
    receiver.url = str(server.make_url("/callback"))  # type: ignore[attr-defined]
    return receiver


@pytest.fixture
def settings(db_url: str, callback: CallbackReceiver, tmp_path: Path) -> Settings:
    """Settings for a test server: the api channel on, fast retries, files in a temporary folder."""
    return Settings(
        database_url=db_url,
        media_dir=str(tmp_path / "media"),
        api_secret=API_SECRET,
        api_callback_url=callback.url,  # type: ignore[attr-defined]
        outbox_base_delay=0.01,
        outbox_max_delay=0.05,
        outbox_max_attempts=3,
        public_url="http://testserver",
    )


@pytest.fixture
def bot() -> EchoBot:
    """The scripted bot the test app answers with."""
    return EchoBot()


@pytest.fixture
def app_factory(settings: Settings, bot: EchoBot) -> Callable[..., web.Application]:
    """Builds apps on the test settings; keyword arguments override create_app's."""
    def make(**overrides: Any) -> web.Application:
        options: dict[str, Any] = {"bot": bot, "summarizer": FixedSummarizer()}
        options.update(overrides)
        return create_app(options.pop("settings", settings), **options)

    return make


@pytest.fixture
async def client(aiohttp_client: Any, app_factory: Callable[..., web.Application]) -> TestClient:
    """An HTTP client for a started test app."""
    return await aiohttp_client(app_factory())


@pytest.fixture
def rt(client: TestClient) -> Runtime:
    """The started app's runtime."""
    return client.app[RUNTIME]


@pytest.fixture
def make_agent(client: TestClient) -> Callable[..., Any]:
    """Creates an agent; returns (agent, auth headers)."""
    async def make(name: str = "Ana", email: str | None = None) -> tuple[Any, dict[str, str]]:
        agent, token = await create_agent(name, email or f"{name.lower()}-{uuid.uuid4().hex[:6]}@example.com")
        return agent, {"Authorization": f"Bearer {token}"}

    return make


def api_body(text: str, conversation: str = "c1", message_id: str | None = None,
             contact: str = "u1", name: str | None = "Customer") -> bytes:
    """A signed-able api-channel webhook body."""
    return json.dumps({
        "id": message_id or uuid.uuid4().hex,
        "conversation": conversation,
        "contact": {"id": contact, "name": name},
        "text": text,
    }).encode()


@pytest.fixture
def say(client: TestClient) -> Callable[..., Any]:
    """Posts a signed customer message to /webhooks/api; returns the response."""
    async def post(text: str, **kwargs: Any) -> Any:
        body = api_body(text, **kwargs)
        return await client.post("/webhooks/api", data=body,
                                 headers={"X-Handoff-Signature": sign(API_SECRET, body),
                                          "Content-Type": "application/json"})

    return post


async def settle(rt: Runtime, timeout: float = 10.0) -> None:
    """Wait until background tasks finish and the outbox has delivered or given up on everything."""
    from handoff.models import Outbox

    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        await rt.drain(timeout=max(0.1, deadline - loop.time()))
        await rt.outbox.run_once()
        busy = await Outbox.filter(status__in=("pending", "sending", "accepted")).exists()
        if not busy and not rt._tasks:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the system did not settle in time")
