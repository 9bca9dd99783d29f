"""create_app(settings): the aiohttp application with its runtime, workers and routes."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

from aiohttp import web

from handoff import db
from handoff.bot.base import Bot, Summarizer
from handoff.bot.factory import build_bot, build_composer, build_summarizer
from handoff.bot.language import preload
from handoff.channels import CHANNEL_CLASSES
from handoff.channels.base import Channel, HasRoutes, Listens, ParsedItem
from handoff.channels.widget import WidgetChannel
from handoff.channels.widget.limits import WidgetLimits
from handoff.config import Settings
from handoff.desk.api import api_middleware
from handoff.desk.labels_api import routes as label_routes
from handoff.desk.notifications import routes as notification_routes
from handoff.desk.canned_api import routes as canned_routes
from handoff.desk.compose_api import routes as compose_routes
from handoff.desk.slack import SlackIntegration
from handoff.group_commit import GROUPS_AT_ONCE, GroupCommit
from handoff.hub import Hub
from handoff.http_errors import json_errors
from handoff.ingest import ingest
from handoff.routes import ALL_ROUTES
from handoff.runtime import RUNTIME, Runtime
from handoff.sweeper import answer_forever, answer_unanswered, presence_forever, sweep_forever
from handoff.web import routes as web_routes
from handoff.web.auth import SIGNIN_LIMITS_PREFIX

log = logging.getLogger(__name__)
CLOSE_FLOOR = 1.0  # seconds each part may take to close even once the stop's deadline has passed
INTEGRATIONS_KEY: web.AppKey[list[SlackIntegration]] = web.AppKey("integrations", list)


def build_channels(settings: Settings) -> dict[str, Channel]:
    """Every channel whose settings are present (a partial configuration raises)."""
    channels: dict[str, Channel] = {}
    for cls in CHANNEL_CLASSES:
        channel = cls.from_settings(settings)
        if channel is not None:
            channels[cls.name] = channel
    return channels


def build_integrations(settings: Settings, rt: Runtime) -> list[SlackIntegration]:
    """Agent-side integrations (Slack) whose settings are present, working on `rt`
    (a partial configuration raises ChannelConfigError)."""
    slack = SlackIntegration.from_settings(settings, rt)
    return [slack] if slack is not None else []


def wire_widget(channels: dict[str, Channel], hub: Hub) -> None:
    """Hand the widget channel (when it runs) the live hub: visitors' typing goes to the desk's
    stream, and with Redis its pushes reach visitors' tabs on the other instances."""
    widget = channels.get(WidgetChannel.name)
    if isinstance(widget, WidgetChannel):
        widget.hub = hub
        widget.listener = lambda kind, data: hub.publish(kind, **data)


def create_app(
    settings: Settings,
    *,
    bot: Bot | None = None,
    summarizer: Summarizer | None = None,
    channels: dict[str, Channel] | Sequence[Channel] | None = None,
    run_migrations: bool = True,
    workers: bool = True,
) -> web.Application:
    """The application. `bot`, `summarizer` and `channels` replace the configured ones
    (tests and embedders); `workers=False` leaves the outbox and sweeper to the caller."""
    if bot is None or summarizer is None:
        bot = bot or build_bot(settings)
        summarizer = summarizer or build_summarizer(settings)
    if channels is None:
        channel_map = build_channels(settings)
    elif isinstance(channels, dict):
        channel_map = dict(channels)
    else:
        channel_map = {c.name: c for c in channels}
    rt = Runtime(settings=settings, channels=channel_map, bot=bot, summarizer=summarizer,
                 hub=Hub(settings.redis_url, logged=True), composer=build_composer(settings),
                 commits=GroupCommit(parallel=1 if settings.database_url.startswith("sqlite") else GROUPS_AT_ONCE))
    wire_widget(channel_map, rt.hub)
    integrations = build_integrations(settings, rt)

    app = web.Application(client_max_size=settings.max_body_bytes, middlewares=[json_errors, api_middleware])
    app[RUNTIME] = rt
    app[INTEGRATIONS_KEY] = integrations
    app.add_routes(ALL_ROUTES)
    app.add_routes([*label_routes, *notification_routes, *canned_routes, *compose_routes])
    app.add_routes(rt.media.routes())
    for part in [*channel_map.values(), *integrations]:
        if isinstance(part, HasRoutes):
            app.add_routes(part.routes())
    signin_limits = WidgetLimits(settings.redis_url, key_prefix=SIGNIN_LIMITS_PREFIX)
    app.add_routes(web_routes(rt.settings, signin_limits))
    app.on_cleanup.append(lambda _app: signin_limits.close())
    app.cleanup_ctx.append(_database(settings, run_migrations))
    app.cleanup_ctx.append(_running(rt, integrations, workers))
    return app


def _database(settings: Settings, run_migrations: bool) -> Any:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        if run_migrations:
            await db.migrate(settings.database_url)
        client = await db.connect(settings.database_url)
        yield
        await db.disconnect(client)

    return ctx


def _running(rt: Runtime, integrations: list[SlackIntegration], workers: bool) -> Any:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        await asyncio.to_thread(preload)
        await rt.hub.start()
        if workers:
            rt.outbox.start()
        for channel in rt.channels.values():
            if isinstance(channel, Listens):
                await channel.start(_deliverer(rt))
        for integration in integrations:
            await integration.start()
        sweepers: list[asyncio.Task[None]] = []
        if workers:
            sweepers = [asyncio.create_task(task(rt)) for task in (sweep_forever, answer_forever, presence_forever)]
            # What the last stop left unanswered, at once (a live turn elsewhere holds its claim).
            await answer_unanswered(rt, grace=0)
        # The ORM's connections live in a context variable: the stop runs in the start's context,
        # wherever the cleanup is called from, so that it can still release claims.
        context = contextvars.copy_context()
        yield
        await asyncio.create_task(_stop(rt, integrations, sweepers), context=context)

    return ctx


async def _stop(rt: Runtime, integrations: list[SlackIntegration], sweepers: list[asyncio.Task[None]]) -> None:
    """Finish acknowledged work by `rt.stop_deadline` (default: `shutdown_timeout` from now) less a
    reserve, then cancel the rest, release this instance's claims and leases and close the parts.

    Bot turns first (the outbox still sends their replies), then the sends in flight; a turn
    cancelled here releases its claim, the outbox releases its own, Slack's poster its lease.
    """
    loop = asyncio.get_running_loop()
    timeout = rt.settings.shutdown_timeout
    deadline = rt.stop_deadline if rt.stop_deadline is not None else loop.time() + timeout
    reserve = min(2.0, timeout / 5)  # for cancelling, releasing and closing
    for sweeper in sweepers:
        sweeper.cancel()
    await asyncio.gather(*sweepers, return_exceptions=True)
    await rt.drain(timeout=max(0.0, deadline - reserve - loop.time()))
    await rt.outbox.stop(grace=max(0.0, deadline - reserve - loop.time()))
    await rt.cancel_tasks()
    # Each close gets what is left before the deadline (at least CLOSE_FLOOR seconds): a part that
    # never finishes closing is logged and left behind, so the stop itself always ends.
    closes: list[tuple[str, Any]] = [(f"slack integration {i}", integration.close)
                                     for i, integration in enumerate(integrations)]
    closes += [(f"channel {name}", channel.close) for name, channel in rt.channels.items()]
    closes.append(("hub", rt.hub.close))
    closes += [(type(client).__name__, client.aclose) for client in (rt.bot, rt.summarizer, rt.composer)
               if getattr(client, "aclose", None) is not None]
    # A connection the stop opened again in this context (the ORM reconnects lazily when another
    # app in the process closed it first) is only visible here: close it, or its SQLite thread
    # outlives the app and keeps the process from exiting.
    closes.append(("database", db.disconnect))
    for what, close in closes:
        try:
            async with asyncio.timeout(max(CLOSE_FLOOR, deadline - loop.time())):
                await close()
        except TimeoutError:
            log.warning("stop: closing the %s did not finish in time; left behind", what)
        except Exception:
            log.exception("stop: closing the %s failed", what)


def _deliverer(rt: Runtime) -> Any:
    async def deliver(item: ParsedItem) -> None:
        await ingest(rt, item)

    return deliver
