"""Migrations: the committed migrations describe the models exactly, and a database created by an
earlier migration upgrades in place without losing its pending deliveries (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from tortoise import Tortoise
from tortoise.migrations.api import migrate as migrate_api
from tortoise.migrations.autodetector import MigrationAutodetector

from handoff import db
from handoff.models import Contact, Conversation, Message, Outbox
from tests.conftest import PG_ADMIN_DSN, _pg_url


async def test_the_migrations_match_the_models(tmp_path: Any) -> None:
    url = f"sqlite://{tmp_path / 'models.db'}"
    config = db.tortoise_config(url)
    await db.connect(url)
    try:
        changes = await MigrationAutodetector(Tortoise.apps, config["apps"]).changes()
    finally:
        await db.disconnect()
    assert [writer.operations for writer in changes] == []  # else: `tortoise makemigrations`


@pytest.fixture(params=["sqlite", "postgres"])
async def empty_db_url(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[str]:
    """A database with no tables yet: a new SQLite file or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'upgrade.db'}"
        return
    name = f"handoff_upgrade_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG_ADMIN_DSN)
    await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_url(name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_a_pending_delivery_survives_the_upgrade_and_starts_at_the_first_part(empty_db_url: str) -> None:
    try:
        await migrate_api(config=db.tortoise_config(empty_db_url), target="models.0001_initial")
        client = await db.connect(empty_db_url)
        contact = await Contact.create(name="Ana")
        await client.execute_script(  # the 0001 tables have no later columns (bot turn claim, outbox progress, message origin)
            "INSERT INTO conversation (contact_id, channel, external_key, contact_external_id, state, version, thread, "
            f"last_activity_at, created_at) VALUES ({contact.id}, 'messenger', 'psid', 'psid', 'bot', 0, '{{}}', "
            "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        )
        conversation = await Conversation.filter(external_key="psid").only("id").get()
        await client.execute_script(
            "INSERT INTO message (conversation_id, channel, direction, author_kind, text, private, notice_params, "
            "attachments, delivery_status, created_at) VALUES "
            f"({conversation.id}, 'messenger', 'outgoing', 'bot', 'queued before the upgrade', false, '{{}}', '[]', "
            "'pending', CURRENT_TIMESTAMP)"
        )
        message = await Message.filter(text="queued before the upgrade").only("id").get()
        await client.execute_script(
            "INSERT INTO outbox (message_id, channel, conversation_id, status, attempts, next_attempt_at, created_at) "
            f"VALUES ({message.id}, 'messenger', {conversation.id}, 'pending', 0, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
        )
        await db.disconnect(client)

        await db.migrate(empty_db_url)
        await db.connect(empty_db_url)
        row = await Outbox.get(message_id=message.id)
        assert (row.status, row.parts_sent, row.first_part_id) == ("pending", 0, None)
        upgraded = await Message.get(id=message.id)
        assert (upgraded.text, upgraded.origin) == ("queued before the upgrade", None)
    finally:
        await db.disconnect()


async def test_instances_started_at_once_on_an_empty_database_all_migrate_it(empty_db_url: str) -> None:
    # Separate processes, as instances of a rolling deploy are: each runs the start-up migration.
    script = "import asyncio, sys; from handoff import db; asyncio.run(db.migrate(sys.argv[1]))"
    processes = [await asyncio.create_subprocess_exec(sys.executable, "-c", script, empty_db_url,
                                                      stderr=asyncio.subprocess.PIPE) for _ in range(3)]
    results = [(await p.wait(), (await p.stderr.read()).decode()[-300:]) for p in processes]  # type: ignore[union-attr]
    assert [code for code, _ in results] == [0, 0, 0], results
    await db.connect(empty_db_url)
    try:
        assert await Contact.all().count() == 0  # the tables exist, once
        applied = await Tortoise.get_connection("default").execute_query_dict(
            "SELECT name FROM tortoise_migrations ORDER BY name")
    finally:
        await db.disconnect()
    names = [row["name"] for row in applied]
    assert names == sorted(set(names)) and names[0] == "0001_initial"
