"""The command line: agents add prints a working token once; replay signs and posts fixtures."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from handoff import cli
from handoff.config import Settings
from handoff.desk.auth import agent_for_token
from handoff.models import Message
from tests.conftest import API_SECRET, settle

FIXTURES = Path(__file__).resolve().parent.parent / "webhooks" / "api"


async def test_agents_add_prints_a_token_that_authenticates(tmp_path, capsys):
    settings = Settings(database_url=f"sqlite://{tmp_path / 'cli.db'}")
    assert await cli._add_agent(settings, "Ana", "Ana@Example.com", None) == 0
    out = capsys.readouterr().out
    token = out.split("API token (shown once): ")[1].strip()
    from handoff import db

    client = await db.connect(settings.database_url)
    try:
        agent = await agent_for_token(token)
        assert agent is not None and agent.email == "ana@example.com"
        assert token not in agent.token_hash
    finally:
        await db.disconnect(client)
    with pytest.raises(cli.CommandError, match="already exists"):
        await cli._add_agent(settings, "Ana", "ana@example.com", None)


async def test_replay_signs_and_posts_a_fixture_once(client, rt, settings, capsys):
    base = str(client.make_url("/")).rstrip("/")
    fixture = FIXTURES / "message__text.json"
    for _ in range(2):
        assert await cli._replay(settings, fixture, base) == 0
    await settle(rt)
    assert capsys.readouterr().out.startswith("202")
    stored = await Message.filter(provider_id=json.loads(fixture.read_text())["id"])
    assert len(stored) == 1


async def test_replay_refuses_an_unconfigured_channel(tmp_path):
    settings = Settings(database_url=f"sqlite://{tmp_path / 'x.db'}", api_secret="")
    with pytest.raises(cli.CommandError, match="not configured"):
        await cli._replay(settings, FIXTURES / "message__text.json", "http://127.0.0.1:9")


def test_every_api_fixture_parses():
    from handoff.channels.api import ApiChannel

    channel = ApiChannel(API_SECRET)
    for path in FIXTURES.glob("*.json"):
        [message] = channel.parse(path.read_bytes())
        data = json.loads(path.read_text())
        assert (message.provider_id, message.key, message.text) == (data["id"], data["conversation"], data["text"])


@pytest.mark.parametrize(("target", "reason"), [("http://127.0.0.1:9", "could not post to http://127.0.0.1:9/webhooks/api"),
                                                ("localhost:8080", "could not post to localhost:8080/webhooks/api")])
async def test_replay_to_no_server_or_a_url_without_scheme_is_one_line(tmp_path, target: str, reason: str):
    settings = Settings(database_url=f"sqlite://{tmp_path / 'x.db'}", api_secret=API_SECRET)
    with pytest.raises(cli.CommandError, match=reason):
        await cli._replay(settings, FIXTURES / "message__text.json", target)


def test_serve_on_a_taken_port_says_so_in_one_line(tmp_path, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"HANDOFF_DATABASE_URL": f"sqlite://{tmp_path / 'serve.db'}", "HANDOFF_PORT": str(port),
               "HANDOFF_MEDIA_DIR": str(tmp_path / "media")}
        with pytest.MonkeyPatch.context() as patch:
            for key, value in env.items():
                patch.setenv(key, value)
            assert cli.main(["serve"]) == 2
    assert capsys.readouterr().err.startswith(f"handoff: cannot listen on 127.0.0.1:{port}:")
