"""The HTTP edge under test: one app with every endpoint that reads a body switched on.

The api channel, WhatsApp (fake Twilio), Messenger and Instagram (fake Graph API), Slack (fake
Web API), the widget, the desk API and desk sign-in. `Edge` signs any body the way each provider
does (X-Handoff-Signature, X-Hub-Signature-256, X-Twilio-Signature, Slack's v0 signature) and
posts it over a raw socket in as many writes as asked (tests/fakes/raw_http.py).
"""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from handoff.channels.api import sign as api_sign
from handoff.channels.meta import sign_headers as meta_sign
from handoff.channels.whatsapp import WhatsAppChannel
from handoff.config import Settings
from handoff.desk.auth import create_agent
from handoff.desk.slack.verify import sign as slack_sign
from handoff.runtime import RUNTIME
from tests.conftest import API_SECRET
from tests.fakes.graph_api import FakeGraph
from tests.fakes.raw_http import RawResponse, post_in_pieces, split
from tests.fakes.slack_api import FakeSlack
from tests.fakes.twilio_api import FakeTwilio

WEBHOOKS = Path(__file__).resolve().parents[2] / "webhooks"
TWILIO_SID = "AC" + "0" * 32
TWILIO_TOKEN = "test-auth-token"
META_SECRET = "test-meta-app-secret"
SLACK_SECRET = "test-slack-signing-secret"
FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def fixture_bytes(channel: str, name: str) -> bytes:
    """A recorded provider payload from webhooks/<channel>/<name>."""
    return (WEBHOOKS / channel / name).read_bytes()


def slack_headers(body: bytes) -> dict[str, str]:
    """Slack's v0 signature over any bytes (https://api.slack.com/authentication/verifying-requests-from-slack);
    the SDK's signer takes text only, and Slack always sends UTF-8, so bytes that are not are signed here."""
    try:
        return slack_sign(SLACK_SECRET, body)
    except UnicodeDecodeError:
        stamp = str(int(time.time()))
        digest = hmac.new(SLACK_SECRET.encode(), b"v0:" + stamp.encode() + b":" + body, hashlib.sha256).hexdigest()
        return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": f"v0={digest}"}


@pytest.fixture
async def twilio() -> Any:
    async with FakeTwilio(TWILIO_SID, TWILIO_TOKEN) as server:
        yield server


@pytest.fixture
async def graph() -> Any:
    async with FakeGraph(token="test-page-token") as server:
        yield server


@pytest.fixture
async def slack_api(aiohttp_server: Any) -> FakeSlack:
    fake = FakeSlack()
    server = await aiohttp_server(fake.app)
    fake.base = str(server.make_url("/api/"))  # type: ignore[attr-defined]
    return fake


@pytest.fixture
def settings(settings: Settings, twilio: FakeTwilio, graph: FakeGraph, slack_api: FakeSlack,
             tmp_path: Path) -> Settings:
    """The conftest settings with every channel and Slack on, each pointed at its local fake."""
    return settings.model_copy(update=dict(twilio_account_sid=TWILIO_SID, twilio_auth_token=TWILIO_TOKEN,
        twilio_whatsapp_number="+14155238886", twilio_api_base=twilio.url,
        meta_app_secret=META_SECRET, meta_verify_token="verify", messenger_page_token="test-page-token",
        instagram_access_token="test-page-token", meta_graph_base=graph.url + "/v21.0",
        slack_bot_token=slack_api.token, slack_signing_secret=SLACK_SECRET, slack_channel="C0SUPPORT",
        slack_api_base=slack_api.base,  # type: ignore[attr-defined]
        media_dir=str(tmp_path / "media")))


@dataclass
class Signed:
    """A request ready to send: its path, body and headers."""

    path: str
    body: bytes
    headers: dict[str, str]


class Edge:
    """A started app with every endpoint on, and how each provider signs what it sends."""

    def __init__(self, server: Any, settings: Settings) -> None:
        self.server = server
        self.settings = settings
        self.url = str(server.make_url("/")).rstrip("/")
        self.origin = self.url
        self.whatsapp = WhatsAppChannel.from_settings(settings)
        self.runtime = server.app[RUNTIME]

    # -- signing, per endpoint ----------------------------------------------------------
    def api(self, body: bytes) -> Signed:
        return Signed("/webhooks/api", body, {"X-Handoff-Signature": api_sign(API_SECRET, body), "Content-Type": JSON})

    def messenger(self, body: bytes) -> Signed:
        return Signed("/webhooks/messenger", body, meta_sign(META_SECRET, body))

    def instagram(self, body: bytes) -> Signed:
        return Signed("/webhooks/instagram", body, meta_sign(META_SECRET, body))

    def twilio(self, body: bytes) -> Signed:
        url = self.settings.public_url + "/webhooks/whatsapp"
        try:
            return Signed("/webhooks/whatsapp", body, self.whatsapp.sign(body, url))  # type: ignore[union-attr]
        except UnicodeDecodeError:  # Twilio signs parameters, so bytes that are no text cannot be signed
            return Signed("/webhooks/whatsapp", body, {"Content-Type": FORM, "X-Twilio-Signature": "not-signable"})

    def slack_events(self, body: bytes) -> Signed:
        return Signed("/slack/events", body, {"Content-Type": JSON, **slack_headers(body)})

    def slack_interactions(self, body: bytes) -> Signed:
        return Signed("/slack/interactions", body, {"Content-Type": FORM, **slack_headers(body)})

    def slack_commands(self, body: bytes) -> Signed:
        return Signed("/slack/commands", body, {"Content-Type": FORM, **slack_headers(body)})

    def widget_session(self, body: bytes) -> Signed:
        return Signed("/widget/session", body, {"Content-Type": JSON, "Origin": self.origin})

    def desk_login(self, body: bytes) -> Signed:
        return Signed("/desk/login", body, {"Content-Type": JSON, "Origin": self.origin})

    async def agent_headers(self) -> dict[str, str]:
        """A new agent's Bearer header (the ORM is connected while the app runs)."""
        _, token = await create_agent("Ana", f"ana-{uuid.uuid4().hex[:8]}@example.com")
        return {"Authorization": f"Bearer {token}"}

    # -- sending ------------------------------------------------------------------------
    async def send(self, signed: Signed, *, pieces: int = 1, chunked_encoding: bool = False,
                   pause: float = 0.01) -> RawResponse:
        """Post `signed` over a raw socket, its body in `pieces` writes (chunk-framed if asked)."""
        return await post_in_pieces(self.url, signed.path, split(signed.body, pieces) if signed.body else [],
                                    signed.headers, chunked_encoding=chunked_encoding, pause=pause)


SIGNERS: dict[str, Callable[[Edge, bytes], Signed]] = {
    "api": Edge.api, "messenger": Edge.messenger, "instagram": Edge.instagram, "whatsapp": Edge.twilio,
    "slack_events": Edge.slack_events, "slack_interactions": Edge.slack_interactions,
    "slack_commands": Edge.slack_commands,
}


@pytest.fixture
async def edge(aiohttp_server: Any, app_factory: Any, settings: Settings) -> Edge:
    """The started app with every endpoint on."""
    return Edge(await aiohttp_server(app_factory()), settings)
