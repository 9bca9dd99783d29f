"""Graceful shutdown of a real `handoff serve` process (issue 12, item 6), on SQLite and
PostgreSQL: on SIGTERM it stops accepting, lets a send in flight finish within the deadline,
cancels what is still stuck then, releases its outbox claims so that another instance sends at
once, closes its database connections, and exits 0 — always within HANDOFF_SHUTDOWN_TIMEOUT."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from handoff.channels.api import sign
from handoff.models import Message, Outbox
from handoff.runtime import RUNTIME
from tests.conftest import API_SECRET, api_body, settle

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 4.0  # HANDOFF_SHUTDOWN_TIMEOUT of the served process
EXIT_SLACK = 2.0  # a process's own exit (the interpreter's teardown) after its deadline


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Served:
    """A `handoff serve` subprocess on the test database, posting api callbacks to `callback_url`."""

    def __init__(self, db_url: str, callback_url: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "HANDOFF_DATABASE_URL": db_url,
                    "HANDOFF_PORT": str(self.port), "HANDOFF_API_SECRET": API_SECRET,
                    "HANDOFF_API_CALLBACK_URL": callback_url, "HANDOFF_SHUTDOWN_TIMEOUT": str(TIMEOUT),
                    "HANDOFF_MEDIA_DIR": str(log.parent / "media")}
        self.log = log
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        with open(self.log, "wb") as out:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "handoff.cli", "serve", cwd=self.log.parent, env=self.env,
                stdout=out, stderr=asyncio.subprocess.STDOUT)
        async with aiohttp.ClientSession() as session:
            for _ in range(300):
                try:
                    async with session.get(f"{self.url}/healthz") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                assert self.process.returncode is None, self.log.read_text()
                await asyncio.sleep(0.05)
        raise AssertionError("the server did not start: " + self.log.read_text())

    async def say(self, text: str, conversation: str) -> int:
        body = api_body(text, conversation=conversation)
        async with aiohttp.ClientSession() as session, session.post(
                f"{self.url}/webhooks/api", data=body, headers={"X-Handoff-Signature": sign(API_SECRET, body)}) as resp:
            return resp.status

    async def terminate(self) -> tuple[int, float]:
        """SIGTERM; returns the exit code and the seconds it took to exit."""
        assert self.process is not None
        loop = asyncio.get_running_loop()
        sent = loop.time()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(self.process.wait(), TIMEOUT + EXIT_SLACK + 5)
        except TimeoutError:
            self.process.kill()
            raise AssertionError("still running well past its deadline: " + self.log.read_text()) from None
        return code, loop.time() - sent


async def database_sessions(db_url: str) -> int:
    """Connections to this PostgreSQL database other than the asking one (0 on SQLite)."""
    if not db_url.startswith("postgres"):
        return 0
    conn = await asyncpg.connect(db_url.replace("postgres://", "postgresql://", 1))
    try:
        return await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                   "AND pid <> pg_backend_pid()")
    finally:
        await conn.close()


async def test_sigterm_lets_a_send_in_flight_finish_and_exits_0(db_url: str, callback: Any, tmp_path: Path) -> None:
    before = await database_sessions(db_url)
    server = Served(db_url, callback.url, tmp_path / "serve.log")
    await server.start()
    gate = callback.hold("inflight")
    assert await server.say("hello", "inflight") == 202
    await callback.wait_until_held()
    terminating = asyncio.create_task(server.terminate())
    await asyncio.sleep(TIMEOUT / 4)  # the provider answers while the server is stopping
    gate.set()
    code, took = await terminating
    log = server.log.read_text()
    assert (code, took < TIMEOUT + EXIT_SLACK) == (0, True), log
    assert "Traceback" not in log, log
    assert len(callback.for_conversation("inflight")) == 1  # the offline bot's greeting, once
    assert await database_sessions(db_url) == before, "a connection outlived the process"


async def test_sigterm_with_a_provider_that_never_answers_exits_in_time_and_releases_the_claim(
        db_url: str, callback: Any, tmp_path: Path, aiohttp_client: Any, app_factory: Any) -> None:
    before = await database_sessions(db_url)
    server = Served(db_url, callback.url, tmp_path / "serve.log")
    await server.start()
    callback.hold("stuck")  # never opened for this process's request
    assert await server.say("hello", "stuck") == 202
    await callback.wait_until_held()
    code, took = await server.terminate()
    log = server.log.read_text()
    assert (code, took < TIMEOUT + EXIT_SLACK) == (0, True), log
    assert "Traceback" not in log and "not released" not in log, log
    assert await database_sessions(db_url) == before, "a connection outlived the process"

    callback.gates.clear()
    other = await aiohttp_client(app_factory())  # another instance, with the default 15 s claims
    rt = other.app[RUNTIME]
    row = await Outbox.get()
    assert (row.status, row.claimed_by) == ("sending", None)  # released, not left to expire
    await settle(rt, timeout=5)  # well within the 15 s a held claim would have lasted
    reply = await Message.get(author_kind="bot")
    assert [m["text"] for m in callback.for_conversation("stuck")] == [reply.text]
    assert reply.delivery_status == "sent"


async def test_a_part_that_never_finishes_closing_does_not_hold_the_stop(
        aiohttp_server: Any, app_factory: Any, settings: Any, caplog: Any) -> None:
    """The stop bounds each close by what is left of the deadline: a channel or hub whose close
    never returns is logged and left behind, and the parts after it are still closed."""
    app = app_factory(settings=settings.model_copy(update={"shutdown_timeout": 1.0}))
    server = await aiohttp_server(app)
    rt = server.app[RUNTIME]
    closed: list[str] = []

    async def never() -> None:
        await asyncio.Event().wait()

    async def bot_close() -> None:
        closed.append("bot")

    rt.hub.close = never  # type: ignore[method-assign]
    rt.bot.aclose = bot_close  # type: ignore[attr-defined]
    loop = asyncio.get_running_loop()
    started = loop.time()
    with caplog.at_level("WARNING", logger="handoff.app"):
        await asyncio.wait_for(server.close(), 10)  # without the bound, the close never returns
    took = loop.time() - started
    assert took < 1.0 + 1.0 + 1.5, took  # the timeout, one CLOSE_FLOOR for the hub, slack
    assert closed == ["bot"]  # a part after the stuck one was still closed
    assert "closing the hub did not finish in time" in caplog.text


async def test_a_stop_that_blocks_past_the_deadline_is_cut_short_by_the_hard_exit(
        db_url: str, callback: Any, tmp_path: Path) -> None:
    """Whatever holds the stop (here the cleanup blocks the event loop itself, so nothing on the
    loop can end it), the process exits 1 at HANDOFF_SHUTDOWN_TIMEOUT and says why."""
    patch = tmp_path / "patch"
    patch.mkdir()
    # Loaded by the served interpreter at start-up (sitecustomize on its path): its cleanup blocks.
    (patch / "sitecustomize.py").write_text(
        "import time\nfrom aiohttp import web\n\n\n"
        "async def _blocking_cleanup(self):\n    time.sleep(60)\n\n\n"
        "web.AppRunner.cleanup = _blocking_cleanup\n")
    server = Served(db_url, callback.url, tmp_path / "serve.log")
    server.env["PYTHONPATH"] = f"{patch}{os.pathsep}{ROOT}"
    await server.start()
    code, took = await server.terminate()
    log = server.log.read_text()
    assert (code, took < TIMEOUT + EXIT_SLACK) == (1, True), (took, log)
    assert f"shutdown did not finish within {TIMEOUT}s: exiting now" in log, log
