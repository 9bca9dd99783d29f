"""A local fake of the Meta Graph API endpoints the Messenger and Instagram channels use.

It speaks the Send API wire format (`POST /{version}/me/messages?access_token=…` with a JSON
`recipient` / `messaging_type` / `tag` / `message` or `sender_action`, answering
`{"recipient_id", "message_id"}`), the profile lookup (`GET /{version}/{id}?fields=…`), and
Graph errors (`{"error": {"message", "type", "code", "error_subcode", "fbtrace_id"}}`).
It records every request and what it accepted (what the customer sees), and can be scripted to
answer 429 with Retry-After, 5xx, slowly, held until released, or with window errors (code 10,
subcode 2018278) — for any call, for message sends only, or for profile lookups. Like Meta, it
can POST a webhook about a message it accepts (a Messenger `delivery` or Instagram `read`
receipt), signed with `X-Hub-Signature-256`, before the Send API call answers. Point the
channels at it with `META_GRAPH_BASE=fake.url + "/v21.0"`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from tests.fakes.server import LocalServer


class Hold:
    """Keeps a scripted answer back until `release()`; `reached` is set once a request waits on it."""

    def __init__(self) -> None:
        self.reached = asyncio.Event()
        self._released = asyncio.Event()

    def release(self) -> None:
        """Let the held request be answered."""
        self._released.set()

    async def wait(self) -> None:
        """Wait (in the fake's handler) until released."""
        self.reached.set()
        await self._released.wait()


@dataclass
class Reply:
    """One scripted answer: HTTP status, Graph error code/subcode, headers, delay, hold."""

    status: int = 200
    code: int | None = None
    subcode: int | None = None
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    hold: Hold | None = None


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    json: Any


class FakeGraph(LocalServer):
    """An aiohttp server speaking the Graph Send API; use `async with FakeGraph(token=...) as fake`."""

    def __init__(self, token: str = "test-page-token", profiles: dict[str, dict] | None = None) -> None:
        self.token = token
        self.profiles: dict[str, dict] = profiles or {}
        self.requests: list[Recorded] = []
        self.script: deque[Reply] = deque()
        self.message_script: deque[Reply] = deque()
        self.profile_script: deque[Reply] = deque()
        self.accepted: list[tuple[str, dict]] = []
        self.webhooks_first: deque[tuple[str, str, list[bytes]]] = deque()
        self.webhook_statuses: list[int] = []
        self._ids = itertools.count(1)

    # scripting ---------------------------------------------------------------------------
    def then(self, reply: Reply, times: int = 1) -> FakeGraph:
        """Answer the next `times` Send API calls with `reply`."""
        self.script.extend([reply] * times)
        return self

    def messages_then(self, *replies: Reply) -> FakeGraph:
        """Answer the next message sends (not sender actions) with `replies`, in order."""
        self.message_script.extend(replies)
        return self

    def rate_limited(self, retry_after: float = 1, times: int = 1) -> FakeGraph:
        """Answer HTTP 429 with Retry-After (Graph code 613, calls exceeded)."""
        return self.then(Reply(429, 613, None, "Calls to this api have exceeded the rate limit.", {"Retry-After": str(retry_after)}), times)

    def server_error(self, status: int = 500, times: int = 1) -> FakeGraph:
        """Answer a 5xx (Graph code 2, temporary)."""
        return self.then(Reply(status, 2, None, "An unexpected error has occurred. Please retry your request later."), times)

    def window_closed(self, times: int = 1) -> FakeGraph:
        """Answer code 10 / subcode 2018278: sent outside the allowed window."""
        return self.then(Reply(400, 10, 2018278, "(#10) This message is sent outside of allowed window."), times)

    def slow(self, seconds: float, times: int = 1) -> FakeGraph:
        """Answer successfully after `seconds`."""
        return self.then(Reply(delay=seconds), times)

    def webhook_first(self, url: str, app_secret: str, *bodies: bytes, mid: str = "m_fake000001") -> FakeGraph:
        """On the next accepted message send, POST these webhook bodies to `url`, signed with
        `app_secret` as Meta signs them, before answering; `mid` in a body becomes the new
        message id (as in webhooks/messenger/delivery__mids.json)."""
        self.webhooks_first.append((url, app_secret, [b.replace(mid.encode(), b"\0") for b in bodies]))
        return self

    async def _post_webhooks(self, mid: str) -> None:
        url, secret, bodies = self.webhooks_first.popleft()
        async with aiohttp.ClientSession() as session:
            for template in bodies:
                body = template.replace(b"\0", mid.encode())
                digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
                async with session.post(url, data=body, headers={
                        "Content-Type": "application/json", "X-Hub-Signature-256": "sha256=" + digest}) as response:
                    self.webhook_statuses.append(response.status)

    @property
    def sent(self) -> list[Recorded]:
        """The Send API calls that carried a message (not sender actions), in order."""
        return [r for r in self.requests if r.method == "POST" and isinstance(r.json, dict) and "message" in r.json]

    @property
    def actions(self) -> list[str]:
        """The sender_action values received, in order."""
        return [r.json["sender_action"] for r in self.requests if isinstance(r.json, dict) and "sender_action" in r.json]

    # server ------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        try:
            body = await request.json() if request.can_read_body else None
        except ValueError:
            body = None
        self.requests.append(Recorded(request.method, request.path, dict(request.query), body))
        if request.query.get("access_token") != self.token:
            return _error(400, 190, None, "Invalid OAuth access token - Cannot parse access token")
        tail = request.match_info["tail"]
        if request.method == "POST" and tail.endswith("me/messages"):
            return await self._send(body)
        if request.method == "GET":
            return await self._profile(tail.rsplit("/", 1)[-1], request.query.get("fields", ""))
        return _error(400, 100, None, "Unsupported request")

    async def _send(self, body: Any) -> web.Response:
        carries_message = isinstance(body, dict) and "message" in body
        script = self.message_script if carries_message and self.message_script else self.script
        reply = script.popleft() if script else Reply()
        await _delay(reply)
        if reply.status >= 300:
            return _error(reply.status, reply.code, reply.subcode, reply.message, reply.headers)
        if not isinstance(body, dict) or "id" not in (body.get("recipient") or {}):
            return _error(400, 100, None, "(#100) The parameter recipient is required")
        recipient = body["recipient"]["id"]
        if "sender_action" in body:
            return web.json_response({"recipient_id": recipient})
        mid = f"m_fake{next(self._ids):06d}"
        self.accepted.append((mid, body["message"]))
        if self.webhooks_first:
            await self._post_webhooks(mid)
        return web.json_response({"recipient_id": recipient, "message_id": mid})

    async def _profile(self, user_id: str, fields: str) -> web.Response:
        reply = self.profile_script.popleft() if self.profile_script else Reply()
        await _delay(reply)
        if reply.status >= 300:
            return _error(reply.status, reply.code, reply.subcode, reply.message, reply.headers)
        profile = self.profiles.get(user_id)
        if profile is None:
            return _error(400, 100, 33, "Unsupported get request. Object does not exist")
        wanted = [f for f in fields.split(",") if f]
        return web.json_response({"id": user_id, **{k: v for k, v in profile.items() if not wanted or k in wanted}})

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app


async def _delay(reply: Reply) -> None:
    if reply.hold is not None:
        await reply.hold.wait()
    if reply.delay:
        await asyncio.sleep(reply.delay)


def _error(status: int, code: int | None, subcode: int | None, message: str, headers: dict[str, str] | None = None) -> web.Response:
    error: dict[str, Any] = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AfakeTrace"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return web.json_response({"error": error}, status=status, headers=headers or {})
