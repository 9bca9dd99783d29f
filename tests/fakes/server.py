"""A base for the provider fakes: an aiohttp app listening on a free loopback port."""

from __future__ import annotations

from typing import Any

from aiohttp import web


class LocalServer:
    """Subclasses define `app()`; `start()` serves it on 127.0.0.1 and sets `url`."""

    url: str = ""
    _runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        """The aiohttp application to serve."""
        raise NotImplementedError

    async def start(self) -> str:
        """Listen on a free local port; returns the base URL."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        """Stop the server."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Any:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
