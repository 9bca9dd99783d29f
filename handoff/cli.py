"""The `handoff` command: serve, agents add, replay.

`serve` stops gracefully on SIGTERM or SIGINT, within `HANDOFF_SHUTDOWN_TIMEOUT` seconds: it stops
accepting connections, gives requests in flight up to half of that, then the app's cleanup
(`app._stop`) finishes bot turns and sends, cancels the rest, releases claims and leases and
closes the database. Should anything hang past the deadline, the process exits at once (status 1).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import os
import signal
import sys
import threading
from pathlib import Path

import aiohttp
from aiohttp import web
from tortoise.exceptions import IntegrityError

from handoff import db
from handoff.access_log import server_options
from handoff.app import create_app
from handoff.channels import CHANNELS
from handoff.channels.base import Signs
from handoff.config import Settings
from handoff.desk.auth import create_agent
from handoff.runtime import RUNTIME
from handoff.web.auth import first_agent_link, hash_password

log = logging.getLogger(__name__)
CONTENT_TYPES = {".json": "application/json", ".txt": "application/x-www-form-urlencoded"}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `handoff` console script."""
    parser = argparse.ArgumentParser(prog="handoff", description="AI in front, humans on call.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the server (applies migrations first)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    agents = commands.add_parser("agents", help="manage agents")
    agent_commands = agents.add_subparsers(dest="agents_command", required=True)
    add = agent_commands.add_parser("add", help="create an agent and print its API token once")
    add.add_argument("--name", required=True)
    add.add_argument("--email", required=True)
    add.add_argument("--password", default=None, help="also allow desk sign-in with this password")
    replay = commands.add_parser("replay", help="sign a webhooks/<channel>/ fixture and post it")
    replay.add_argument("file", type=Path)
    replay.add_argument("--to", required=True, help="base URL of a running server, e.g. http://localhost:8080")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("tortoise").setLevel(logging.WARNING)  # its start/stop lines are noise here
    settings = Settings.from_env()
    try:
        if args.command == "serve":
            return _serve(settings, args.host, args.port)
        if args.command == "agents":
            return asyncio.run(_add_agent(settings, args.name, args.email, args.password))
        return asyncio.run(_replay(settings, args.file, args.to))
    except CommandError as exc:
        print(f"handoff: {exc}", file=sys.stderr)
        return 2


class CommandError(Exception):
    """A user error the command reports without a traceback."""


def _serve(settings: Settings, host: str | None, port: int | None) -> int:
    app = create_app(settings)
    app.on_startup.append(_announce_first_agent(settings))
    host, port = host or settings.host, port or settings.port
    try:
        return asyncio.run(_run(app, host, port, settings.shutdown_timeout, settings.access_log))
    except OSError as exc:  # the address is taken (another server runs there) or not ours to bind
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None


async def _run(app: web.Application, host: str, port: int, timeout: float, access_log: bool = True) -> int:
    """Serve until SIGTERM or SIGINT, then stop within `timeout` seconds (see the module doc)."""
    loop = asyncio.get_running_loop()
    runner = web.AppRunner(app, shutdown_timeout=timeout / 2, **server_options(access_log))
    await runner.setup()  # the app's start-up, in this task: the cleanup below runs in its context
    # What start-up built (modules, catalogs, the ORM's metadata) lives as long as the process:
    # left out of the collector's full passes, which otherwise stall the event loop for ~100 ms
    # over it every few seconds under load (benchmarks/hot_path.py's takeover latency).
    gc.freeze()
    try:
        await web.TCPSite(runner, host, port).start()
        print(f"======== Running on http://{host}:{port} ========\n(Press CTRL+C to quit)", flush=True)
        stop = asyncio.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await stop.wait()
        log.info("stopping: acknowledged work has %ss", timeout)
        _exit_after(timeout)
        app[RUNTIME].stop_deadline = loop.time() + timeout
    finally:
        await runner.cleanup()
    log.info("stopped")
    return 0


def _exit_after(timeout: float) -> None:
    """Exit the process at once after `timeout` seconds, whatever is still running or joining then
    (a daemon thread: it fires even while the interpreter waits on a stuck thread at exit)."""
    def exit_now() -> None:
        log.error("shutdown did not finish within %ss: exiting now", timeout)
        logging.shutdown()
        os._exit(1)

    timer = threading.Timer(timeout, exit_now)
    timer.daemon = True
    timer.start()


def _announce_first_agent(settings: Settings):  # type: ignore[no-untyped-def]
    async def announce(app: object) -> None:
        link = await first_agent_link(settings)
        if link:
            print(f"\n  No agents yet. Sign in to the desk (one-time link): {link}\n", flush=True)

    return announce


async def _add_agent(settings: Settings, name: str, email: str, password: str | None) -> int:
    await db.migrate(settings.database_url)
    client = await db.connect(settings.database_url)
    try:
        agent, token = await create_agent(name, email)
        if password:
            agent.password_hash = hash_password(password)
            await agent.save(update_fields=["password_hash"])
    except IntegrityError:
        raise CommandError(f"an agent with email {email} already exists") from None
    finally:
        await db.disconnect(client)
    print(f"agent {agent.id} {agent.name} <{agent.email}>")
    print(f"API token (shown once): {token}")
    return 0


async def _replay(settings: Settings, path: Path, base_url: str) -> int:
    if not path.is_file():
        raise CommandError(f"{path} is not a file")
    name = path.parent.name
    channel_class = CHANNELS.get(name)
    if channel_class is None or not issubclass(channel_class, Signs):
        raise CommandError(f"{name!r} has no signed webhook to replay (expected webhooks/<channel>/<file>)")
    channel = channel_class.from_settings(settings)
    if channel is None:
        raise CommandError(f"the {name} channel is not configured: set its secrets in the environment")
    body = path.read_bytes()
    content_type = CONTENT_TYPES.get(path.suffix, "application/json")
    url = base_url.rstrip("/") + f"/webhooks/{name}"
    # Signed for the public URL the provider would have called (Twilio signs the URL), posted to --to.
    public_url = settings.public_url.rstrip("/") + f"/webhooks/{name}"
    headers = channel.sign(body, public_url, content_type)  # type: ignore[attr-defined]
    headers.setdefault("Content-Type", content_type)
    try:
        async with aiohttp.ClientSession() as session, session.post(url, data=body, headers=headers) as resp:
            text = await resp.text()
    except (aiohttp.ClientError, ValueError) as exc:  # no server there, or not an http(s) URL
        raise CommandError(f"could not post to {url}: {exc}") from None
    finally:
        await channel.close()
    print(f"{resp.status} {text[:500]}")
    return 0 if resp.status < 400 else 1


if __name__ == "__main__":
    sys.exit(main())
