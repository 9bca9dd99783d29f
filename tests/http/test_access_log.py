"""Secrets never reach the access log: WebSocket tokens, Meta's verify token, sign-in links.

The server runs with the options `handoff serve` uses (handoff.access_log.SERVER_OPTIONS).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest

from handoff.access_log import SERVER_OPTIONS, redact, server_options
from handoff.config import Settings
from handoff.desk.auth import create_agent
from tests.fakes.raw_http import post_in_pieces


@pytest.mark.parametrize(("target", "logged"), [
    ("/widget/ws?token=abc&since=3", "/widget/ws?token=[redacted]&since=3"),
    ("/api/v1/stream?access_token=a%20b", "/api/v1/stream?access_token=[redacted]"),
    ("/webhooks/messenger?hub.mode=subscribe&hub.verify_token=v&hub.challenge=12",
     "/webhooks/messenger?hub.mode=subscribe&hub.verify_token=[redacted]&hub.challenge=12"),
    ("/desk/signin/Zm9vYmFy", "/desk/signin/[redacted]"),
    ("https://shop.example/cart?Token=x#top", "https://shop.example/cart?Token=[redacted]"),
    ("/api/v1/tickets?status=open&q=tokens", "/api/v1/tickets?status=open&q=tokens"),
    ("/healthz", "/healthz"),
])
def test_redact(target: str, logged: str) -> None:
    assert redact(target) == logged


async def test_tokens_in_urls_are_redacted_in_the_access_log(aiohttp_server: Any, app_factory: Any,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    server = await aiohttp_server(app_factory(), **SERVER_OPTIONS)
    url = str(server.make_url("/")).rstrip("/")
    _, agent_token = await create_agent("Ana", "ana@example.com")
    secrets = {"widget": "w" * 43, "agent": agent_token, "signin": "s1gn1nL1nkT0k3n"}
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    stream = await post_in_pieces(url, f"/api/v1/stream?token={secrets['agent']}", [], {}, method="GET")
    assert stream.status == 400  # the agent is authenticated; a plain GET is not a WebSocket upgrade
    widget = await post_in_pieces(url, f"/widget/ws?token={secrets['widget']}&since=0", [], {"Origin": url},
                                  method="GET")
    assert widget.status == 401
    signin = await post_in_pieces(url, f"/desk/signin/{secrets['signin']}", [],
                                  {"Referer": f"{url}/desk?token={secrets['widget']}"})
    assert signin.status == 410  # an unknown link
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) == 3, lines
    assert '"GET /api/v1/stream?token=[redacted] HTTP/1.1" 400' in lines[0]
    assert '"GET /widget/ws?token=[redacted]&since=0 HTTP/1.1" 401' in lines[1]
    assert '"POST /desk/signin/[redacted] HTTP/1.1" 410' in lines[2]
    assert f'"{url}/desk?token=[redacted]"' in lines[2]
    for secret in secrets.values():
        assert not any(secret in line for line in lines), secret


@pytest.mark.parametrize(("value", "lines"), [("", 1), ("on", 1), ("off", 0)])
async def test_the_access_log_is_turned_off_by_its_setting(aiohttp_server: Any, app_factory: Any,
                                                           caplog: pytest.LogCaptureFixture, value: str,
                                                           lines: int) -> None:
    settings = Settings.from_env({"HANDOFF_ACCESS_LOG": value} if value else {})
    server = await aiohttp_server(app_factory(), **server_options(settings.access_log))
    caplog.set_level(logging.INFO, logger="aiohttp.access")
    answer = await post_in_pieces(str(server.make_url("/")).rstrip("/"), "/healthz", [], {}, method="GET")
    assert answer.status == 200
    assert len([r for r in caplog.records if r.name == "aiohttp.access"]) == lines
