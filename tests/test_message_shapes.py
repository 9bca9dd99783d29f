"""A message has one JSON shape, `events.message_json`; the widget's frame and Slack's thread
line are projections of it, and attachments are stored and shown in one shape."""

from __future__ import annotations

import json
from typing import Any

from handoff import transitions
from handoff.desk.slack import blocks
from handoff.events import AUTHOR_OF_KIND, KIND_OF_AUTHOR, message_json, stored_attachments, widget_frame
from handoff.models import Agent, Conversation, Message, utcnow
from tests.conftest import API_SECRET, settle, sign

RECEIPT = {"url": "https://cdn.example.com/receipt.pdf", "filename": "receipt.pdf",
           "content_type": "application/pdf", "size": 5120}


async def _every_kind_of_message(client: Any, rt: Any, say: Any, make_agent: Any) -> list[Message]:
    """A conversation holding a customer message with a file, a bot reply, the takeover's
    separator and "waiting" notice, an agent's reply and "agent joined" notice, an internal note,
    and the handback's separator and notice."""
    agent, _ = await make_agent("Ana")
    await say("hello there")
    body = json.dumps({"id": "f1", "conversation": "c1", "contact": {"id": "u1"}, "text": "",
                       "attachments": [{k: v for k, v in RECEIPT.items() if k != "size"}]}).encode()
    assert (await client.post("/webhooks/api", data=body, headers={"X-Handoff-Signature": sign(API_SECRET, body)})
            ).status == 202
    await settle(rt)
    conversation = await Conversation.get(channel="api")
    ticket = await transitions.takeover(rt, conversation.id, agent)
    await transitions.reply(rt, ticket.id, agent, "Hi, Ana here")
    await transitions.reply(rt, ticket.id, agent, "VIP customer", internal=True)
    await transitions.allow_ai(rt, ticket.id, agent)
    await settle(rt)
    return await Message.filter(conversation_id=conversation.id).order_by("id")


async def test_widget_frame_and_slack_line_are_projections_of_message_json(client, rt, say, make_agent) -> None:
    rows = await _every_kind_of_message(client, rt, say, make_agent)
    agents = {a.id: a for a in await Agent.all()}
    kinds = set()
    for row in rows:
        message = message_json(row, agents)
        frame = widget_frame(message, client_id="tab-1")
        assert (frame["id"], frame["author"], frame["text"], frame["notice"], frame["attachments"]) == (
            row.id, row.author_kind, row.text, row.notice, message["attachments"])
        assert frame["created_at"] == row.created_at.timestamp() and frame["client_id"] == "tab-1"
        assert frame["author_name"] == ("Ana" if row.author_kind == "agent" else None)
        expected_kind = ("separator" if row.direction == "activity" else
                         "notice" if row.author_kind == "system" else "message")
        assert frame["kind"] == expected_kind
        kinds.add((expected_kind, row.author_kind, row.private))
        line = blocks.thread_line(message, "Dana")
        if row.text:
            assert line is not None and blocks.escape(row.text) in line
        if row.private:
            assert line == f":memo: *Ana* (internal note): {row.text}"
        elif row.author_kind == "agent":
            assert line == f"*Ana* (agent): {row.text}"
    assert kinds == {("message", "customer", False), ("message", "bot", False), ("separator", "system", False),
                     ("notice", "system", False), ("message", "agent", False), ("message", "agent", True)}


async def test_attachments_are_written_in_one_shape_and_older_rows_read_in_it(client, rt, say, make_agent) -> None:
    rows = await _every_kind_of_message(client, rt, say, make_agent)
    with_file = next(r for r in rows if r.attachments)
    assert with_file.attachments == [{**RECEIPT, "size": None}]  # every key, None when unknown
    older = {k: v for k, v in RECEIPT.items() if k != "filename"}  # a row from before: None keys left out
    await Message.filter(id=with_file.id).update(attachments=[older], edited_at=utcnow())
    message = message_json(await Message.get(id=with_file.id))
    assert message["attachments"] == [{**RECEIPT, "filename": None}]
    assert widget_frame(message)["attachments"] == message["attachments"]


def test_stored_attachments_leave_out_what_is_not_an_attachment() -> None:
    assert stored_attachments(None) == []
    assert stored_attachments(["x", {"url": "https://a.example/x"}, RECEIPT]) == [RECEIPT]


def test_author_and_kind_mapping_is_one_table_both_ways() -> None:
    assert {kind: KIND_OF_AUTHOR[author] for kind, author in AUTHOR_OF_KIND.items()} == {
        "bot": "bot", "agent": "agent", "notice": "notice"}
    assert KIND_OF_AUTHOR["system"] == "notice"


async def test_the_api_callback_is_a_projection_of_message_json(client, rt, say, make_agent, callback) -> None:
    await _every_kind_of_message(client, rt, say, make_agent)
    agents = {a.id: a for a in await Agent.all()}
    assert len(callback.received) >= 5  # bot replies, notices, the agent's reply
    for sent in callback.received:
        message = message_json(await Message.get(id=int(sent["id"])), agents)
        assert sent["kind"] == KIND_OF_AUTHOR[message["author"]]
        assert (sent["text"], sent.get("status"), sent.get("attachments", [])) == (
            message["text"], message["notice"], message["attachments"])
        assert sent.get("author") == (message["agent"] or {}).get("name")
