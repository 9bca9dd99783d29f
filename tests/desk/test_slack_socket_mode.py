"""Socket Mode: the same payloads over slack-sdk's aiohttp Socket Mode client, acknowledged by envelope."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from urllib.parse import parse_qsl

import pytest

from handoff import db
from handoff.config import Settings
from handoff.desk.slack import SlackIntegration, actions
from handoff.desk.slack.socket_mode import SocketTransport
from handoff.models import ProcessedKey
from tests.fakes.slack_api import FakeSlack

FIXTURES = Path(__file__).resolve().parents[2] / "webhooks" / "slack"


@pytest.fixture
async def database(tmp_path):
    url = f"sqlite://{tmp_path / 'slack.db'}"
    await db.migrate(url)
    await db.connect(url)
    yield url
    await db.disconnect()


async def wait_for_ack(fake: FakeSlack, envelope_id: str) -> dict:
    for _ in range(250):
        for ack in fake.socket_acks:
            if ack.get("envelope_id") == envelope_id:
                return ack
        await asyncio.sleep(0.02)
    raise AssertionError(f"no ack for {envelope_id}: {fake.socket_acks}")


async def test_socket_mode_envelopes_use_the_http_code_path(database, aiohttp_server) -> None:
    fake = FakeSlack()
    server = await aiohttp_server(fake.app)
    slack = SlackIntegration.from_settings(Settings(
        slack_bot_token=fake.token, slack_app_token="xapp-1-test", slack_channel="C0SUPPORT",
        slack_api_base=str(server.make_url("/api/"))))
    assert slack is not None
    await slack.identify()
    transport = SocketTransport(slack)
    await transport.connect()
    try:
        assert fake.of("apps.connections.open")
        for _ in range(100):
            if fake.sockets:
                break
            await asyncio.sleep(0.02)
        command = dict(parse_qsl((FIXTURES / "slash_command__help.txt").read_text().strip()))
        await fake.push({"envelope_id": "env-cmd", "type": "slash_commands", "payload": command,
                         "accepts_response_payload": True})
        ack = await wait_for_ack(fake, "env-cmd")
        assert ack["payload"] == {"response_type": "ephemeral", "text": actions.USAGE}

        body = json.loads((FIXTURES / "events__app_mention.json").read_text())
        for n, envelope in enumerate(["env-ev-1", "env-ev-2"]):
            await fake.push({"envelope_id": envelope, "type": "events_api", "payload": body,
                             "accepts_response_payload": False, "retry_attempt": n, "retry_reason": ""})
            await wait_for_ack(fake, envelope)
        assert await ProcessedKey.filter(scope="slack.event", key=body["event_id"]).count() == 1
    finally:
        await transport.close()
        await slack.close()
