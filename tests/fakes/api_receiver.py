"""A local receiver for the api channel's signed callbacks: the integrator's side."""

from __future__ import annotations

import asyncio
import json
import random
import time
from typing import Any

from aiohttp import web

from handoff.channels.api import SIGNATURE_HEADER, sign


class CallbackReceiver:
    """Records verified callbacks; can be told to fail with a status (and Retry-After), to fail
    a random `fail_ratio` of them with a 500 (drawn from `seed`), or to hold one conversation's
    callbacks unanswered until its gate opens (`hold`). `arrived_at[i]` is the `time.monotonic()`
    at which `received[i]` was accepted; `refused_at[conversation]` when it last refused one of that
    conversation's callbacks on purpose (its sender then waits out its backoff)."""

    def __init__(self, secret: str, fail_ratio: float = 0.0, seed: int = 0) -> None:
        self.secret = secret
        self.fail_ratio = fail_ratio
        self._random = random.Random(seed)
        self.received: list[dict[str, Any]] = []
        self.arrived_at: list[float] = []
        self.failed_at_random = 0
        self.refused_at: dict[str, float] = {}
        self.rejected = 0
        self.fail_next: list[tuple[int, str | None]] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.held: list[dict[str, Any]] = []
        self._arrived = asyncio.Condition()
        self.app = web.Application()
        self.app.router.add_post("/callback", self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get(SIGNATURE_HEADER) != sign(self.secret, body):
            self.rejected += 1
            return web.json_response({"error": "bad signature"}, status=401)
        data = json.loads(body)
        gate = self.gates.get(data["conversation"])
        if gate is not None and not gate.is_set():
            async with self._arrived:
                self.held.append(data)
                self._arrived.notify_all()
            await gate.wait()
        if self.fail_next:
            self.refused_at[data["conversation"]] = time.monotonic()
            status, retry_after = self.fail_next.pop(0)
            headers = {"Retry-After": retry_after} if retry_after else {}
            return web.json_response({"error": "try later"}, status=status, headers=headers)
        if self.fail_ratio and self._random.random() < self.fail_ratio:
            self.failed_at_random += 1
            self.refused_at[data["conversation"]] = time.monotonic()
            return web.json_response({"error": "integrator having a bad moment"}, status=500)
        async with self._arrived:
            self.received.append(data)
            self.arrived_at.append(time.monotonic())
            self._arrived.notify_all()
        return web.json_response({"ok": True})

    def hold(self, conversation: str) -> asyncio.Event:
        """Leave this conversation's callbacks unanswered until the returned gate is set."""
        gate = self.gates[conversation] = asyncio.Event()
        return gate

    async def wait_until_held(self, count: int = 1, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until `count` callbacks are being held at a gate; returns them."""
        await self.wait_for(lambda _: len(self.held) >= count, timeout)
        return self.held

    def for_conversation(self, key: str) -> list[dict[str, Any]]:
        """Callbacks of one conversation, in arrival order."""
        return [m for m in self.received if m["conversation"] == key]

    async def wait_for(self, predicate: Any, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Wait until `predicate(received)` is true; returns the received list."""
        async def until() -> None:
            async with self._arrived:
                await self._arrived.wait_for(lambda: predicate(self.received))

        await asyncio.wait_for(until(), timeout)
        return self.received
