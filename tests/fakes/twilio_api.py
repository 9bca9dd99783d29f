"""A local fake of Twilio's Messages REST API (2010-04-01), for tests and benchmarks.

It speaks Twilio's wire format (form-encoded `POST /2010-04-01/Accounts/{sid}/Messages.json`,
HTTP Basic auth with the account SID and auth token, a Message resource JSON on 201, errors as
`{"code", "message", "more_info", "status"}`), records every request and the messages it
accepted (what the customer receives), and can be scripted to
answer 429 with Retry-After, 5xx, slowly, or with WhatsApp errors such as 63016 and 21211.
Like Twilio, it can POST status callbacks for a message it creates to the request's
`StatusCallback` URL, signed with `X-Twilio-Signature` (HMAC-SHA1 of the URL and the sorted
form parameters, keyed by the auth token) — before it answers the create call, as Twilio
sometimes does. Point the channel at it with `TWILIO_API_BASE=fake.url`.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
from collections import deque
from dataclasses import dataclass, field
from email.utils import formatdate
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp
from aiohttp import web
from twilio.request_validator import RequestValidator

from tests.fakes.server import LocalServer


@dataclass
class Reply:
    """One scripted answer: an error status/code, extra headers, and a delay before answering."""

    status: int = 201
    code: int | None = None
    message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    form: dict[str, list[str]]
    auth: tuple[str, str] | None

    def get(self, key: str) -> str | None:
        """The first value of a form field."""
        values = self.form.get(key)
        return values[0] if values else None


class FakeTwilio(LocalServer):
    """An aiohttp server speaking the Twilio Messages API; use `async with FakeTwilio() as fake`."""

    def __init__(self, account_sid: str = "AC" + "0" * 32, auth_token: str = "test-auth-token") -> None:
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.requests: list[Recorded] = []
        self.script: deque[Reply] = deque()
        self.accepted: list[tuple[str, Recorded]] = []
        self.callbacks: deque[tuple[list[bytes], bool]] = deque()
        self.callback_host: str | None = None
        self.callback_statuses: list[int] = []
        self._callback_tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)

    # scripting ---------------------------------------------------------------------------
    def then(self, reply: Reply, times: int = 1) -> FakeTwilio:
        """Answer the next `times` requests with `reply`."""
        self.script.extend([reply] * times)
        return self

    def rate_limited(self, retry_after: float = 1, times: int = 1) -> FakeTwilio:
        """Answer 429 (Twilio code 20429) with a Retry-After header."""
        return self.then(Reply(429, 20429, "Too Many Requests", {"Retry-After": str(retry_after)}), times)

    def server_error(self, status: int = 503, times: int = 1) -> FakeTwilio:
        """Answer a 5xx."""
        return self.then(Reply(status, 20500, "Service Unavailable"), times)

    def window_closed(self, times: int = 1) -> FakeTwilio:
        """Answer Twilio error 63016 (free-form message outside the 24-hour window)."""
        return self.then(Reply(400, 63016, "Failed to send freeform message because you are outside the allowed window. Please use a Template."), times)

    def invalid_number(self, times: int = 1) -> FakeTwilio:
        """Answer Twilio error 21211 (invalid 'To' phone number)."""
        return self.then(Reply(400, 21211, "The 'To' number is not a valid phone number."), times)

    def slow(self, seconds: float, times: int = 1) -> FakeTwilio:
        """Answer successfully after `seconds`."""
        return self.then(Reply(delay=seconds), times)

    def status_callbacks_first(self, *forms: bytes, wait: bool = True) -> FakeTwilio:
        """On the next accepted create, POST these status callbacks (form bodies as in
        webhooks/whatsapp/status__*.txt; their MessageSid/SmsSid become the new message's sid)
        to its StatusCallback URL before answering — after each callback's response when `wait`,
        else at the same time as the answer. `callback_host` (scheme://host:port) replaces the
        URL's host when the app listens elsewhere than its public URL; the signature is always
        over the StatusCallback URL, as Twilio computes it."""
        self.callbacks.append((list(forms), wait))
        return self

    async def _post_callbacks(self, url: str, sid: str, forms: list[bytes]) -> None:
        target = url
        if self.callback_host:
            parts = urlsplit(url)
            target = self.callback_host + parts.path + (f"?{parts.query}" if parts.query else "")
        async with aiohttp.ClientSession() as session:
            for form in forms:
                fields = [(k, sid if k in ("MessageSid", "SmsSid") else v) for k, v in parse_qsl(form.decode())]
                signature = RequestValidator(self.auth_token).compute_signature(url, dict(fields))
                async with session.post(target, data=urlencode(fields), headers={
                        "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": signature}) as response:
                    self.callback_statuses.append(response.status)

    async def settle(self) -> None:
        """Wait for status callbacks posted at the same time as their create's answer."""
        await asyncio.gather(*self._callback_tasks)

    @property
    def sent(self) -> list[Recorded]:
        """The message-create requests received, in order."""
        return [r for r in self.requests if r.path.endswith("/Messages.json")]

    # server ------------------------------------------------------------------------------
    async def _create_message(self, request: web.Request) -> web.Response:
        form = await request.post()
        auth = _basic_auth(request.headers.get("Authorization", ""))
        recorded = Recorded(request.method, request.path, {k: form.getall(k) for k in form.keys()}, auth)  # type: ignore[misc]
        self.requests.append(recorded)
        if auth != (self.account_sid, self.auth_token) or request.match_info["sid"] != self.account_sid:
            return _error(401, 20003, "Authenticate")
        reply = self.script.popleft() if self.script else Reply()
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.status >= 300:
            return _error(reply.status, reply.code, reply.message, reply.headers)
        sid = f"SM{next(self._ids):032x}"
        self.accepted.append((sid, recorded))
        if self.callbacks and form.get("StatusCallback"):
            forms, wait = self.callbacks.popleft()
            posting = self._post_callbacks(str(form["StatusCallback"]), sid, forms)
            if wait:
                await posting
            else:
                task = asyncio.create_task(posting)
                self._callback_tasks.add(task)
                task.add_done_callback(self._callback_tasks.discard)
        now = formatdate(usegmt=True)
        body = form.get("Body") or ""
        return web.json_response(
            {
                "account_sid": self.account_sid,
                "api_version": "2010-04-01",
                "body": body,
                "date_created": now,
                "date_sent": None,
                "date_updated": now,
                "direction": "outbound-api",
                "error_code": None,
                "error_message": None,
                "from": form.get("From"),
                "messaging_service_sid": None,
                "num_media": str(len(form.getall("MediaUrl", []))),
                "num_segments": "1",
                "price": None,
                "price_unit": None,
                "sid": sid,
                "status": "queued",
                "subresource_uris": {"media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"},
                "to": form.get("To"),
                "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
            },
            status=201,
            headers=reply.headers,
        )

    def app(self) -> web.Application:
        """The aiohttp application (for aiohttp's own test server, if preferred)."""
        app = web.Application()
        app.router.add_post("/2010-04-01/Accounts/{sid}/Messages.json", self._create_message)
        return app


def _basic_auth(header: str) -> tuple[str, str] | None:
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except ValueError:
        return None
    return user, password


def _error(status: int, code: int | None, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(
        {
            "code": code,
            "message": message,
            "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status,
        },
        status=status,
        headers=headers or {},
    )
