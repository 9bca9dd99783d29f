"""A local fake of the Telegram Bot API methods the telegram channel uses.

It speaks the Bot API wire format (core.telegram.org/bots/api, "Making requests"):
`POST /bot<token>/<method>` with a JSON body, answering `{"ok": true, "result": ...}`, or
`{"ok": false, "error_code", "description", "parameters"?: {"retry_after"}}`; sendMessage,
sendPhoto, sendDocument (answering a Message with a `message_id` counted per chat),
sendChatAction (`true`), getFile (`{"file_id", "file_unique_id", "file_size", "file_path"}`),
and file downloads at `GET /file/bot<token>/<file_path>`. A wrong token is answered 401
"Unauthorized", as Telegram does. It records every call, and can be scripted to answer the next
calls with errors (`fail(429, retry_after=1, method="sendMessage")`). Point the channel at it with
`TELEGRAM_API_BASE=fake.url`.
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.server import LocalServer


@dataclass
class Call:
    """One Bot API method call the fake received."""

    method: str
    body: dict[str, Any]


class FakeTelegram(LocalServer):
    """`async with FakeTelegram(token=...) as fake`; `fake.files[file_id] = (file_path, bytes)`."""

    def __init__(self, token: str = "123456:test-bot-token") -> None:
        self.token = token
        self.calls: list[Call] = []
        self.downloads: list[str] = []
        self.files: dict[str, tuple[str, bytes]] = {}
        self.errors: deque[tuple[str | None, dict[str, Any]]] = deque()
        self._ids = itertools.count(500)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        return app

    def fail(self, error_code: int, description: str = "", retry_after: int | None = None,
             method: str | None = None) -> None:
        """Answer the next call (of `method`, when given) with this Bot API error."""
        error: dict[str, Any] = {"ok": False, "error_code": error_code,
                                 "description": description or f"Error {error_code}"}
        if retry_after is not None:
            error["parameters"] = {"retry_after": retry_after}
        self.errors.append((method, error))

    def sent(self, *methods: str) -> list[Call]:
        """The accepted calls of these methods (default: the three send methods), in order."""
        wanted = methods or ("sendMessage", "sendPhoto", "sendDocument")
        return [c for c in self.calls if c.method in wanted]

    async def _method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        body = await request.json()
        if self.errors and self.errors[0][0] in (None, method):
            error = self.errors.popleft()[1]
            return web.json_response(error, status=error["error_code"])
        self.calls.append(Call(method, body))
        if method in ("sendMessage", "sendPhoto", "sendDocument"):
            result: Any = {"message_id": next(self._ids), "chat": {"id": int(body["chat_id"]), "type": "private"},
                           "date": 1764540000}
        elif method == "sendChatAction":
            result = True
        elif method == "getFile" and body.get("file_id") in self.files:
            path, data = self.files[body["file_id"]]
            result = {"file_id": body["file_id"], "file_unique_id": "u" + body["file_id"][:8],
                      "file_size": len(data), "file_path": path}
        else:
            return web.json_response({"ok": False, "error_code": 400,
                                      "description": "Bad Request: invalid file_id"}, status=400)
        return web.json_response({"ok": True, "result": result})

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        path = request.match_info["path"]
        self.downloads.append(path)
        for file_path, data in self.files.values():
            if file_path == path:
                return web.Response(body=data, content_type="application/octet-stream")
        return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
