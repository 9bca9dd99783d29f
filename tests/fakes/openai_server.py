"""A local OpenAI-compatible server for tests and benchmarks: `POST /v1/chat/completions`.

Speaks the Chat Completions wire format (https://platform.openai.com/docs/api-reference/chat/object)
well enough for the official `openai` client pointed at it with `base_url`. Responses are
scripted in order (`fake.queue(...)`); when the script is empty `fake.default` answers (a
`Scripted` or a function of the request body). Every request body and its headers are recorded.

    async with FakeOpenAI() as fake:
        fake.queue(rate_limited("0.01"), text("Hello!"))
        client = AsyncOpenAI(api_key="sk-test", base_url=fake.base_url, max_retries=0)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

_ids = itertools.count(1)


@dataclass
class Scripted:
    """One scripted answer: a status, a JSON (or raw text) body, headers, an optional delay or gate."""

    status: int = 200
    body: Any = None
    raw: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    gate: asyncio.Event | None = None


def _completion(message: dict[str, Any], finish_reason: str = "stop") -> dict[str, Any]:
    return {
        "id": f"chatcmpl-fake{next(_ids)}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": "fake-model",
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def text(content: str) -> Scripted:
    """A plain assistant message."""
    return Scripted(body=_completion({"role": "assistant", "content": content, "refusal": None}))


def tool_call(name: str, arguments: dict[str, Any] | str, content: str | None = None) -> Scripted:
    """An assistant message calling one function tool (`arguments` sent as a JSON string)."""
    args = arguments if isinstance(arguments, str) else json.dumps(arguments)
    call = {"id": f"call_{next(_ids)}", "type": "function", "function": {"name": name, "arguments": args}}
    message = {"role": "assistant", "content": content, "refusal": None, "tool_calls": [call]}
    return Scripted(body=_completion(message, finish_reason="tool_calls"))


def json_output(obj: Any) -> Scripted:
    """Structured output: the JSON document as the message content."""
    return text(json.dumps(obj, ensure_ascii=False))


def refusal(reason: str = "I'm sorry, I can't help with that.") -> Scripted:
    """A refusal (structured-output style: `content` null, `refusal` set)."""
    return Scripted(body=_completion({"role": "assistant", "content": None, "refusal": reason}))


def rate_limited(retry_after: str | None = "1") -> Scripted:
    """429 with an OpenAI error body and, unless None, a Retry-After header."""
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    body = {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}
    return Scripted(status=429, body=body, headers=headers)


def server_error(status: int = 500) -> Scripted:
    """A 5xx with an OpenAI error body."""
    return Scripted(status=status, body={"error": {"message": "The server had an error", "type": "server_error"}})


def empty() -> Scripted:
    """A message with empty content and no tool call."""
    return text("")


def no_choices() -> Scripted:
    """A 200 completion with an empty `choices` list."""
    body = _completion({"role": "assistant", "content": "x"})
    body["choices"] = []
    return Scripted(body=body)


def malformed() -> Scripted:
    """A 200 whose body is not JSON at all."""
    return Scripted(raw='{"id": "chatcmpl-broken", "choices": [')


def slow(delay: float, then: Scripted | None = None) -> Scripted:
    """`then` (default: a text reply), answered after `delay` seconds."""
    scripted = then or text("Sorry for the wait!")
    scripted.delay = delay
    return scripted


def held(then: Scripted | None = None) -> Scripted:
    """`then`, answered only once `scripted.gate.set()` is called (for fence tests)."""
    scripted = then or text("A reply that was held back.")
    scripted.gate = asyncio.Event()
    return scripted


Responder = Scripted | Callable[[dict[str, Any]], Scripted]


class FakeOpenAI:
    """The fake server; use as an async context manager or `start()` / `close()`."""

    def __init__(self, default: Responder | None = None) -> None:
        self.script: deque[Scripted] = deque()
        self.default: Responder = default or (lambda body: text("Hello from the fake model."))
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self._arrived = asyncio.Condition()
        self._gates: list[asyncio.Event] = []
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    def queue(self, *responses: Scripted) -> None:
        """Append answers to the script, in order."""
        self.script.extend(responses)

    async def wait_requests(self, count: int, timeout: float = 5.0) -> None:
        """Wait until at least `count` requests have arrived."""
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.requests) >= count), timeout)

    async def start(self) -> FakeOpenAI:
        """Listen on an ephemeral port of 127.0.0.1."""
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat_completions)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.2)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def close(self) -> None:
        """Stop listening; releases any held responses first."""
        for gate in self._gates + [s.gate for s in self.script if s.gate is not None]:
            gate.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeOpenAI:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": {"message": "invalid JSON", "type": "invalid_request_error"}}, status=400)
        async with self._arrived:
            self.requests.append(body)
            self.headers.append(dict(request.headers))
            self._arrived.notify_all()
        if self.script:
            scripted = self.script.popleft()
        else:
            scripted = self.default if isinstance(self.default, Scripted) else self.default(body)
        if scripted.gate is not None:
            self._gates.append(scripted.gate)
            await scripted.gate.wait()
        if scripted.delay:
            await asyncio.sleep(scripted.delay)
        if scripted.raw is not None:
            return web.Response(status=scripted.status, text=scripted.raw, content_type="application/json",
                                headers=scripted.headers)
        return web.json_response(scripted.body, status=scripted.status, headers=scripted.headers)


def last_system_prompt(body: dict[str, Any]) -> str:
    """The system message of a recorded request."""
    return next((m["content"] for m in body["messages"] if m["role"] == "system"), "")
