"""Slack as an agent-side desk: tickets are threads, buttons and thread replies drive the desk.

`SlackIntegration` is built by `handoff.app` (with the runtime) when Slack is configured. It
serves Slack's three request URLs (Events API, interactivity, slash commands — or the same
payloads over Socket Mode), follows the live hub to mirror tickets into the configured channel
through a durable, rate-limited poster, and calls `handoff.transitions` for everything agents do
in Slack.
Settings: SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET, SLACK_CHANNEL; optional SLACK_APP_TOKEN
(Socket Mode) and SLACK_API_BASE (another Web API host, for tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncConnectionErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from handoff import bodies, storable, transitions
from handoff.backoff import forever
from handoff.bodies import read_body
from handoff.channels.base import ChannelConfigError, InvalidSignature
from handoff.config import Settings
from handoff.desk.slack import actions, events
from handoff.desk.slack.mirror import Mirror
from handoff.desk.slack.names import SlackNames
from handoff.desk.slack.poster import Poster
from handoff.desk.slack.socket_mode import SocketTransport
from handoff.desk.slack.verify import SlackVerifier
from handoff.lease import Lease
from handoff.models import Agent, Message
from handoff.runtime import Runtime

log = logging.getLogger(__name__)


class SlackIntegration:
    """The Slack app: request URLs, Socket Mode, the hub mirror and the poster."""

    name = "slack"

    def __init__(self, *, bot_token: str, signing_secret: str, channel: str, api_base: str = "",
                 app_token: str = "", max_body_bytes: int = 1024 * 1024, rt: Runtime | None = None) -> None:
        kwargs: dict[str, Any] = {"token": bot_token, "retry_handlers": [AsyncConnectionErrorRetryHandler()]}
        if api_base:
            kwargs["base_url"] = api_base if api_base.endswith("/") else api_base + "/"
        self.client = AsyncWebClient(**kwargs)
        self.names = SlackNames(self.client)
        self.api_base = api_base
        self.verifier = SlackVerifier(signing_secret)
        self.channel = channel
        self.app_token = app_token
        self.max_body_bytes = max_body_bytes
        self.team_id = ""
        self.bot_user_id = ""
        self.bot_id = ""
        self.rt = rt  # the running system the agents' actions go to; None only for a bare client (tests)
        self.mirror = Mirror(self)
        self.poster = Poster(self.mirror.perform, lease=Lease("slack-poster"))
        self.socket: SocketTransport | None = None
        self._hub_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._thread_locks: dict[tuple[str, str], asyncio.Lock] = {}

    @classmethod
    def from_settings(cls, settings: Settings, rt: Runtime | None = None) -> SlackIntegration | None:
        """The integration (working on `rt`) when Slack is configured, None when it is not;
        ChannelConfigError when partly configured."""
        values = {
            "SLACK_BOT_TOKEN": settings.slack_bot_token,
            "SLACK_SIGNING_SECRET": settings.slack_signing_secret,
            "SLACK_CHANNEL": settings.slack_channel,
        }
        if not any(values.values()) and not settings.slack_app_token:
            return None
        required = dict(values)
        if settings.slack_app_token:
            # Socket Mode requests come over an authenticated WebSocket, not signed HTTP.
            required.pop("SLACK_SIGNING_SECRET")
        missing = [name for name, value in required.items() if not value]
        if missing:
            raise ChannelConfigError(f"Slack is partly configured: set {', '.join(missing)} (or unset all SLACK_*)")
        return cls(
            bot_token=settings.slack_bot_token,
            signing_secret=settings.slack_signing_secret,
            channel=settings.slack_channel,
            api_base=settings.slack_api_base,
            app_token=settings.slack_app_token,
            max_body_bytes=settings.max_body_bytes,
            rt=rt,
        )

    # -- lifecycle -----------------------------------------------------------------------
    def routes(self) -> list[web.RouteDef]:
        """Slack's request URLs: Event Subscriptions, Interactivity and the slash command."""
        return [
            web.post("/slack/events", self.http_events),
            web.post("/slack/interactions", self.http_interactions),
            web.post("/slack/commands", self.http_commands),
        ]

    async def start(self) -> None:
        """Learn who we are in Slack, follow the live hub, start the poster (and Socket Mode).

        Requires the runtime given at construction (RuntimeError without one)."""
        if self.rt is None:
            raise RuntimeError("SlackIntegration.start needs the runtime it was built with")
        await self.identify()
        ready = asyncio.Event()
        self._hub_task = asyncio.create_task(self._follow_hub(ready), name="slack-hub")
        waiter = asyncio.create_task(ready.wait())
        await asyncio.wait({self._hub_task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        await self.mirror.catch_up()  # what happened while no instance was mirroring
        self.poster.start()
        if self.app_token:
            self.socket = SocketTransport(self)
            await self.socket.connect()

    async def identify(self) -> None:
        """auth.test: our team id and bot user (to recognise our own posts)."""
        try:
            me = await self.client.auth_test()
        except SlackApiError as error:
            log.error("Slack auth.test failed (%s); check SLACK_BOT_TOKEN", error.response.get("error"))
            return
        self.team_id = str(me.get("team_id") or "")
        self.bot_user_id = str(me.get("user_id") or "")
        self.bot_id = str(me.get("bot_id") or "")

    async def close(self) -> None:
        """Stop Socket Mode, the hub follower, the poster and pending work."""
        if self.socket is not None:
            await self.socket.close()
        if self._hub_task is not None:
            self._hub_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._hub_task
        await self.poster.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        session = getattr(self.client, "session", None)
        if session is not None:
            await session.close()

    async def _follow_hub(self, ready: asyncio.Event) -> None:
        async def follow() -> None:
            async with self.rt.hub.subscribe() as stream:
                ready.set()
                async for event in stream:
                    try:
                        await self.mirror.on_event(event)
                    except Exception:
                        log.exception("slack mirror failed on %s", event.get("kind"))

        await forever(follow, "slack hub subscription", logger=log)

    # -- helpers for handlers ------------------------------------------------------------
    def thread_lock(self, channel: str, thread_ts: str) -> asyncio.Lock:
        """The lock that keeps one thread's replies in order."""
        key = (channel, thread_ts)
        lock = self._thread_locks.get(key)
        if lock is None:
            lock = self._thread_locks[key] = asyncio.Lock()
        return lock

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run work after the ack: on the runtime (shutdown waits for it), or on our own tasks
        for a bare client."""
        if self.rt is not None:
            self.rt.spawn(self._logged(coro))
            return
        task = asyncio.create_task(self._logged(coro))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _logged(coro: Coroutine[Any, Any, Any]) -> Any:
        try:
            return await coro
        except Exception:
            log.exception("slack background work failed")
            return None

    async def ephemeral(self, channel: str, user: str, text: str, *, thread_ts: str | None = None) -> None:
        """Tell one Slack user something only they see (chat.postEphemeral)."""
        kwargs: dict[str, Any] = {"channel": channel or self.channel, "user": user, "text": text}
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        try:
            await self.client.chat_postEphemeral(**kwargs)
        except SlackApiError as error:
            log.warning("chat.postEphemeral failed: %s", error.response.get("error"))

    async def reply(self, ticket_id: int, agent: Agent, text: str, *, internal: bool = False,
                    attachments: list[dict[str, Any]] | None = None) -> Message:
        """An agent's Slack thread reply (or note) on a ticket, kept from being echoed back into Slack."""
        return await transitions.reply(self.rt, ticket_id, agent, text, internal=internal,
                                      attachments=attachments, origin="slack")

    # -- HTTP transport ------------------------------------------------------------------
    async def _verified_body(self, request: web.Request) -> bytes:
        body = await read_body(request, self.max_body_bytes)
        self.verifier.verify(body, request.headers)
        return body

    async def http_events(self, request: web.Request) -> web.Response:
        """POST /slack/events: the Events API request URL; JSON 400 unless the body is an object
        whose `event` (https://api.slack.com/apis/events-api#callback-field), when present, is one."""
        try:
            body = await self._verified_body(request)
            data = bodies.loads(body)
        except InvalidSignature as error:
            return web.json_response({"error": str(error)}, status=401)
        except ValueError as error:
            return web.json_response({"error": f"malformed JSON: {error}"}, status=400)
        if not isinstance(data, dict):
            return web.json_response({"error": "body must be a JSON object"}, status=400)
        if data.get("event") is not None and not isinstance(data["event"], dict):
            return web.json_response({"error": "event must be an object"}, status=400)
        retry = request.headers.get("X-Slack-Retry-Num", "")
        number = int(retry) if retry.isascii() and retry.isdigit() else None
        answer = await events.handle_body(self, storable.json_value(data), number)
        return web.json_response(answer)

    async def http_interactions(self, request: web.Request) -> web.Response:
        """POST /slack/interactions: the Interactivity request URL (form field `payload`, JSON)."""
        try:
            body = await self._verified_body(request)
            form = dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
            payload = storable.json_value(bodies.loads(form["payload"]))
            if not isinstance(payload, dict):
                raise ValueError("not an object")
        except InvalidSignature as error:
            return web.json_response({"error": str(error)}, status=401)
        except (KeyError, ValueError, UnicodeDecodeError):
            return web.json_response({"error": "malformed interaction payload"}, status=400)
        answer = await actions.handle_interaction(self, payload)
        return web.json_response(answer) if answer else web.Response(status=200)

    async def http_commands(self, request: web.Request) -> web.Response:
        """POST /slack/commands: the slash command request URL (form encoded)."""
        try:
            body = await self._verified_body(request)
            form = storable.json_value(dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True)))
        except InvalidSignature as error:
            return web.json_response({"error": str(error)}, status=401)
        except (ValueError, UnicodeDecodeError):
            return web.json_response({"error": "malformed command"}, status=400)
        return web.json_response(await actions.handle_command(self, form))
