"""A local fake of the Slack Web API methods handoff calls, reached through the real slack-sdk client.

Speaks Slack's wire format (https://api.slack.com/web): `POST /api/<method>` with a Bearer
token and a JSON, form or query body; answers `{"ok": true, ...}` or `{"ok": false, "error": ...}`,
and HTTP 429 with Retry-After when a test asks for rate limiting. Every call is recorded with its
arguments and arrival time. It also serves Socket Mode: `apps.connections.open` hands out a
WebSocket URL on this server, and `push()` sends an envelope to the connected client.
Files: `files.info` answers a file object (https://api.slack.com/types/file) whose
`url_private_download` is on this server; that URL serves the bytes only with the bot token as a
Bearer header and, like Slack, answers anything else with its HTML sign-in page (HTTP 200).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web

TEAM_ID = "T0HANDOFF"
BOT_USER_ID = "UBOTHANDOFF"
BOT_ID = "BHANDOFF"


@dataclass
class Call:
    """One recorded Web API call."""

    method: str
    args: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


class FakeSlack:
    """State and handlers of the fake. Run it with `aiohttp_server(fake.app)`; its URL + "/api/" is SLACK_API_BASE."""

    def __init__(self, token: str = "xoxb-test-token") -> None:
        self.token = token
        self.calls: list[Call] = []
        self.users: dict[str, dict[str, Any]] = {}
        self.channels: dict[str, dict[str, Any]] = {"C0SUPPORT": {"id": "C0SUPPORT", "name": "support"}}
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}
        self._limits: dict[str, list[float]] = {}
        self._ts = itertools.count(1)
        self.sockets: list[web.WebSocketResponse] = []
        self.socket_acks: list[dict[str, Any]] = []
        self.files: dict[str, dict[str, Any]] = {}
        self.downloads: list[dict[str, str]] = []
        self._errors: dict[str, list[str]] = {}
        self._refusals: list[tuple[str, str, str]] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/api/{method}", self._handle)
        self.app.router.add_get("/socket", self._socket)
        self.app.router.add_get("/files-pri/{team_file}/download/{name}", self._download)

    # -- test controls -------------------------------------------------------------------
    def add_user(self, user_id: str, *, name: str, email: str | None = None, is_bot: bool = False,
                 display_name: str | None = None) -> None:
        """Make users.info know a user (`display_name` "" is a profile that has none, as Slack allows)."""
        profile = {"real_name": name, "display_name": name if display_name is None else display_name}
        if email:
            profile["email"] = email
        self.users[user_id] = {"id": user_id, "team_id": TEAM_ID, "name": name, "real_name": name,
                               "is_bot": is_bot, "profile": profile}

    def add_file(self, file_id: str, *, name: str, content: bytes, mimetype: str, user: str = "U0ALICE") -> None:
        """Make files.info know a file and its private download URL serve `content`."""
        self.files[file_id] = {"name": name, "content": content, "mimetype": mimetype, "user": user}

    def fail(self, method: str, error: str, *, times: int = 1) -> None:
        """Answer the next `times` calls of `method` with `{"ok": false, "error": error}`."""
        self._errors.setdefault(method, []).extend([error] * times)

    def refuse(self, method: str, error: str, *, text_containing: str) -> None:
        """Always answer `method` calls whose `text` contains `text_containing` with `{"ok": false, "error": error}`
        (Slack refusing one message for what it says, e.g. `msg_too_long`, on every retry)."""
        self._refusals.append((method, text_containing, error))

    def rate_limit(self, method: str, *, times: int = 1, retry_after: float = 1) -> None:
        """Answer the next `times` calls of `method` with HTTP 429 and Retry-After."""
        self._limits.setdefault(method, []).extend([retry_after] * times)

    def of(self, method: str) -> list[Call]:
        """The recorded calls of one method."""
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, method: str, count: int = 1, timeout: float = 10.0, **match: Any) -> list[Call]:
        """Wait until at least `count` calls of `method` whose args contain `match` were recorded."""
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.of(method) if all(c.args.get(k) == v for k, v in match.items())]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} {match}: {len(found)} calls, wanted {count}; got {self.calls}")
            await asyncio.sleep(0.02)

    async def push(self, envelope: dict[str, Any]) -> None:
        """Send a Socket Mode envelope to every connected client."""
        for ws in self.sockets:
            await ws.send_str(json.dumps(envelope))

    # -- wire ----------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            if request.content_type == "application/json":
                args.update(await request.json())
            else:
                args.update(dict(await request.post()))
        auth = request.headers.get("Authorization", "")
        self.calls.append(Call(method, args))
        if self._limits.get(method):
            retry_after = self._limits[method].pop(0)
            return web.json_response({"ok": False, "error": "ratelimited"}, status=429,
                                     headers={"Retry-After": str(int(retry_after))})
        expected = "xapp-" if method == "apps.connections.open" else self.token
        if not auth.startswith("Bearer ") or not auth[7:].startswith(expected):
            return web.json_response({"ok": False, "error": "invalid_auth"})
        if self._errors.get(method):
            return web.json_response({"ok": False, "error": self._errors[method].pop(0)})
        refused = next((e for m, part, e in self._refusals if m == method and part in str(args.get("text", ""))), None)
        if refused:
            return web.json_response({"ok": False, "error": refused})
        handler = getattr(self, "_" + method.replace(".", "_"), None)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        return web.json_response(handler(args, request))

    def _next_ts(self) -> str:
        return f"{1700000000 + next(self._ts)}.000100"

    def _auth_test(self, args: dict[str, Any], request: web.Request) -> dict[str, Any]:
        return {"ok": True, "url": "https://acme.slack.com/", "team": "Acme", "team_id": TEAM_ID,
                "user": "handoff", "user_id": BOT_USER_ID, "bot_id": BOT_ID}

    def _resolve(self, channel: str) -> str | None:
        if channel in self.channels:
            return channel
        name = channel.lstrip("#")
        return next((c["id"] for c in self.channels.values() if c["name"] == name), None)

    def _chat_postMessage(self, args: dict[str, Any], request: web.Request) -> dict[str, Any]:
        channel = self._resolve(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        ts = self._next_ts()
        message = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": ts,
                   "text": args.get("text", ""), "blocks": args.get("blocks")}
        if args.get("thread_ts"):
            message["thread_ts"] = args["thread_ts"]
        self.messages[(channel, ts)] = message
        return {"ok": True, "channel": channel, "ts": ts, "message": message}

    def _chat_update(self, args: dict[str, Any], request: web.Request) -> dict[str, Any]:
        channel = self._resolve(str(args.get("channel", "")))
        key = (channel or "", str(args.get("ts", "")))
        if key not in self.messages:
            return {"ok": False, "error": "message_not_found"}
        self.messages[key].update({"text": args.get("text", ""), "blocks": args.get("blocks")})
        return {"ok": True, "channel": key[0], "ts": key[1], "text": args.get("text", "")}

    def _chat_postEphemeral(self, args: dict[str, Any], request: web.Request) -> dict[str, Any]:
        if self._resolve(str(args.get("channel", ""))) is None:
            return {"ok": False, "error": "channel_not_found"}
        if not args.get("user"):
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "message_ts": self._next_ts()}

    def _users_info(self, args: dict[str, Any], request: web.Request) -> dict[str, Any]:
        user = self.users.get(str(args.get("user", "")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": user}

    def _views_open(self, args: dict[str, Any], request: web.Request) -> dict[str, Any]:
        if not args.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        view = args.get("view")
        if isinstance(view, str):
            view = json.loads(view)
        return {"ok": True, "view": {"id": f"V{next(self._ts):08d}", **(view or {})}}

    def _conversations_info(self, args: dict[str, Any], request: web.Request) -> dict[str, Any]:
        channel = self._resolve(str(args.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": self.channels[channel]}

    def _files_info(self, args: dict[str, Any], request: web.Request) -> dict[str, Any]:
        file_id = str(args.get("file", ""))
        stored = self.files.get(file_id)
        if stored is None:
            return {"ok": False, "error": "file_not_found"}
        name = stored["name"]
        private = request.url.with_path(f"/files-pri/{TEAM_ID}-{file_id}/{name}").with_query({})
        download = private.with_path(f"/files-pri/{TEAM_ID}-{file_id}/download/{name}")
        extension = name.rsplit(".", 1)[-1] if "." in name else "binary"
        file = {
            "id": file_id, "created": 1700000100, "timestamp": 1700000100, "name": name, "title": name,
            "mimetype": stored["mimetype"], "filetype": extension, "pretty_type": extension.upper(),
            "user": stored["user"], "user_team": TEAM_ID, "editable": False, "size": len(stored["content"]),
            "mode": "hosted", "is_external": False, "external_type": "", "is_public": False,
            "public_url_shared": False, "display_as_bot": False, "username": "",
            "url_private": str(private), "url_private_download": str(download),
            "permalink": f"https://acme.slack.com/files/{stored['user']}/{file_id}/{name}",
            "has_rich_preview": False, "file_access": "visible",
        }
        return {"ok": True, "file": file, "comments": [], "response_metadata": {"next_cursor": ""}}

    async def _download(self, request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        self.downloads.append({"path": request.path, "authorization": auth})
        file_id = request.match_info["team_file"].removeprefix(f"{TEAM_ID}-")
        stored = self.files.get(file_id)
        if auth != f"Bearer {self.token}" or stored is None:
            sign_in = "<!DOCTYPE html><html><head><title>Slack</title></head><body>Sign in to Slack</body></html>"
            return web.Response(text=sign_in, content_type="text/html")
        return web.Response(body=stored["content"], content_type=stored["mimetype"],
                            headers={"Content-Disposition": f'attachment; filename="{stored["name"]}"'})

    def _apps_connections_open(self, args: dict[str, Any], request: web.Request) -> dict[str, Any]:
        url = request.url.with_scheme("ws").with_path("/socket").with_query({})
        return {"ok": True, "url": str(url)}

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1}))
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self.socket_acks.append(json.loads(msg.data))
        finally:
            self.sockets.remove(ws)
        return ws
