"""A small client of the Telegram Bot API (core.telegram.org/bots/api), for the telegram channel.

Follows "Making requests": `POST <base>/bot<token>/<method>` with a JSON body, answered
`{"ok": true, "result": ...}` or `{"ok": false, "error_code", "description", "parameters":
{"retry_after": N}}` (429: flood control, wait N seconds). Files (getFile) are downloaded from
`<base>/file/bot<token>/<file_path>`, up to 20 MB. The token is part of every URL here: none of
them is ever logged, stored or shown (errors name the method, never the URL).
"""

from __future__ import annotations

from typing import Any

import aiohttp

from handoff import bodies
from handoff.channels.base import DeliveryError, parse_retry_after

TIMEOUT_SECONDS = 15.0


def api_error(status: int, payload: Any, method: str) -> DeliveryError:
    """The DeliveryError for a Bot API error answer: 429 and 5xx are retried (429 after
    `parameters.retry_after` seconds), any other error is final; `code` is the `error_code`."""
    data = payload if isinstance(payload, dict) else {}
    code = data.get("error_code") if isinstance(data.get("error_code"), int) else status
    description = data.get("description") if isinstance(data.get("description"), str) else f"HTTP {status}"
    parameters = data.get("parameters") if isinstance(data.get("parameters"), dict) else {}
    retry_after = parse_retry_after(str(parameters.get("retry_after") or "")) if code == 429 else None
    return DeliveryError(f"Telegram {method}: {description}", retryable=code == 429 or code >= 500,
                         retry_after=retry_after, code=str(code))


class BotApi:
    """Calls Bot API methods with one token; `close()` releases the HTTP session."""

    def __init__(self, base: str, token: str, *, timeout: float = TIMEOUT_SECONDS) -> None:
        self.base = base.rstrip("/")
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self._session

    async def call(self, method: str, payload: dict[str, Any]) -> Any:
        """The `result` of `method` called with `payload`; DeliveryError on an error answer or
        a network failure (retryable)."""
        url = f"{self.base}/bot{self._token}/{method}"
        try:
            async with self._client().post(url, json=payload) as resp:
                raw = await resp.read()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"Telegram {method}: {type(exc).__name__}", retryable=True) from None
        try:
            data = bodies.loads(raw)
        except ValueError:
            data = None
        if status >= 300 or not isinstance(data, dict) or data.get("ok") is not True:
            raise api_error(status, data, method)
        return data.get("result")

    async def open_file(self, file_id: str) -> tuple[str, aiohttp.ClientResponse]:
        """The file_path and open download of a file the bot received (getFile, then the file);
        the caller reads and releases it. DeliveryError when Telegram refuses either step."""
        result = await self.call("getFile", {"file_id": file_id})
        path = result.get("file_path") if isinstance(result, dict) else None
        if not isinstance(path, str) or not path:
            raise DeliveryError("Telegram getFile: no file_path (file too big to download?)", retryable=False)
        try:
            resp = await self._client().get(f"{self.base}/file/bot{self._token}/{path}")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise DeliveryError(f"Telegram file download: {type(exc).__name__}", retryable=True) from None
        if resp.status != 200:
            resp.release()
            raise DeliveryError(f"Telegram file download: HTTP {resp.status}", retryable=resp.status >= 500)
        return path, resp

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
