"""Who answered last (issue 16, item 4): conversation rows carry `last_responder` (the AI, or the
agent who replied), the `responded_by` and `agent_type` filters, the responder written in the
UPDATE that already marks the turn (no statement more per message), and migration 0010's
backfill of existing conversations (SQLite and PostgreSQL)."""

from __future__ import annotations

from typing import Any

from tortoise.migrations.api import migrate as migrate_api

from handoff import db
from handoff.models import Agent, Contact, Conversation
from tests.conftest import settle
from tests.statements import Statements
from tests.test_db import empty_db_url  # noqa: F401  (a fixture)


def _responder_writes(sql: Statements) -> list[str]:
    return [s for s in sql.statements if s.startswith("UPDATE") and "responded_by" in s]


async def _row(client: Any, auth: dict[str, str], cid: int) -> dict[str, Any]:
    return await (await client.get(f"/api/v1/conversations/{cid}", headers=auth)).json()


async def _ids(client: Any, auth: dict[str, str], query: str) -> list[int]:
    response = await client.get("/api/v1/conversations?" + query, headers=auth)
    assert response.status == 200, await response.text()
    return sorted(row["id"] for row in (await response.json())["conversations"])


async def test_rows_name_who_answered_last_and_a_customer_message_does_not_change_it(client, rt, say, make_agent):
    ana, auth = await make_agent("Ana")
    with Statements() as sql:
        await say("where is my parcel?", conversation="r1", contact="r1")
        await settle(rt)
    conversation = await Conversation.get(external_key="r1")
    assert (await _row(client, auth, conversation.id))["last_responder"] == {"kind": "bot", "agent": None}
    # Folded into the bot reply's fenced UPDATE, which also writes last_responder.
    assert _responder_writes(sql) and all("last_responder" in s for s in _responder_writes(sql))

    ticket = await (await client.post(f"/api/v1/conversations/{conversation.id}/takeover", headers=auth)).json()
    with Statements() as sql:
        response = await client.post(f"/api/v1/tickets/{ticket['id']}/messages", json={"text": "on it"}, headers=auth)
        assert response.status == 201
    assert len(_responder_writes(sql)) == 1 and "last_responder" in _responder_writes(sql)[0]
    answered = {"kind": "agent", "agent": {"id": ana.id, "name": "Ana", "email": ana.email}}
    assert (await _row(client, auth, conversation.id))["last_responder"] == answered
    await client.post(f"/api/v1/tickets/{ticket['id']}/messages", json={"text": "a note", "internal": True}, headers=auth)
    await say("thanks", conversation="r1", contact="r1")
    await settle(rt)
    row = await _row(client, auth, conversation.id)
    assert row["last_message"]["author_kind"] == "customer" and row["last_responder"] == answered

    await client.post(f"/api/v1/tickets/{ticket['id']}/allow-ai", headers=auth)
    await say("one more question", conversation="r1", contact="r1")
    await settle(rt)
    assert (await _row(client, auth, conversation.id))["last_responder"] == {"kind": "bot", "agent": None}


async def test_responded_by_and_agent_type_filter_conversations(client, rt, say, make_agent):
    _, ana_auth = await make_agent("Ana")
    bruno, bruno_auth = await make_agent("Bruno")
    for key in ("bot-only", "by-ana", "by-bruno"):
        await say("hello", conversation=key, contact=key)
    await settle(rt)
    ids = {c.external_key: c.id for c in await Conversation.all()}
    for key, auth in (("by-ana", ana_auth), ("by-bruno", bruno_auth)):
        ticket = await (await client.post(f"/api/v1/conversations/{ids[key]}/takeover", headers=auth)).json()
        await client.post(f"/api/v1/tickets/{ticket['id']}/messages", json={"text": "hi"}, headers=auth)
    silent = await Conversation.create(contact=await Contact.create(name="Silent"), channel="api",
                                       external_key="silent", contact_external_id="silent")

    assert await _ids(client, ana_auth, "responded_by=bot") == [ids["bot-only"]]
    assert await _ids(client, ana_auth, "responded_by=me") == [ids["by-ana"]]
    assert await _ids(client, ana_auth, f"responded_by={bruno.id}") == [ids["by-bruno"]]
    assert await _ids(client, ana_auth, "agent_type=human") == sorted([ids["by-ana"], ids["by-bruno"]])
    assert await _ids(client, ana_auth, "agent_type=bot") == [ids["bot-only"]]
    assert await _ids(client, ana_auth, "agent_type=bot&responded_by=me") == []
    assert await _ids(client, ana_auth, "agent_type=human&state=human&q=by-bruno") == [ids["by-bruno"]]
    assert silent.id in await _ids(client, ana_auth, "")
    for query, error in (("responded_by=robot", "responded_by"), ("responded_by=0", "responded_by"),
                         ("responded_by=99999999999", "responded_by"), ("agent_type=person", "agent_type")):
        response = await client.get("/api/v1/conversations?" + query, headers=ana_auth)
        assert response.status == 400 and error in (await response.json())["error"], query


async def test_the_upgrade_fills_in_who_answered_existing_conversations(empty_db_url: str) -> None:  # noqa: F811
    try:
        await migrate_api(config=db.tortoise_config(empty_db_url), target="models.0008_ticket_read")
        client = await db.connect(empty_db_url)
        agent = await Agent.create(name="Ana", email="ana@example.com", token_hash="x" * 64)
        contact = await Contact.create(name="Dana")
        for key in ("by-bot", "by-agent", "unanswered"):  # 0008's conversation has no responder columns
            await client.execute_script(
                "INSERT INTO conversation (contact_id, channel, external_key, contact_external_id, state, version, "
                f"thread, last_activity_at, created_at) VALUES ({contact.id}, 'api', '{key}', '{key}', 'bot', 0, "
                "'{}', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)")
        ids = dict(await Conversation.all().values_list("external_key", "id"))

        async def write(key: str, author: str, direction: str = "outgoing", agent: Agent | None = None,
                        private: bool = False) -> None:  # 0008's message columns (later ones, e.g. mentions, absent)
            await client.execute_script(
                "INSERT INTO message (conversation_id, channel, direction, author_kind, agent_id, text, private, "
                f"notice_params, attachments, delivery_status, created_at) VALUES ({ids[key]}, 'api', '{direction}', "
                f"'{author}', {agent.id if agent else 'NULL'}, '', {'true' if private else 'false'}, '{{}}', '[]', "
                "'none', CURRENT_TIMESTAMP)")

        await write("by-bot", "agent", agent=agent)
        await write("by-bot", "bot")
        await write("by-bot", "customer", direction="incoming")
        await write("by-agent", "bot")
        await write("by-agent", "agent", agent=agent)
        await write("by-agent", "agent", agent=agent, private=True)
        await write("by-agent", "system")
        await write("unanswered", "customer", direction="incoming")
        await db.disconnect(client)

        await db.migrate(empty_db_url)
        await db.connect(empty_db_url)
        found = {c.external_key: (c.responded_by, c.responded_by_agent_id) for c in await Conversation.all()}  # type: ignore[attr-defined]
        assert found == {"by-bot": ("bot", None), "by-agent": ("agent", agent.id), "unanswered": (None, None)}
    finally:
        await db.disconnect()
