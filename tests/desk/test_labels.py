"""Labels (issue 16, item 1): the directory and its name rules, a conversation's labels replaced
whole with unknown names refused, the timeline and live events of a change, labels on conversation
and ticket rows, and the `label` filter of both lists (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from handoff.models import Conversation, ConversationLabel, Event, Label
from tests.conftest import settle


async def _conversation(client: Any, rt: Any, say: Any, key: str) -> Conversation:
    await say("hello", conversation=key, contact=key)
    await settle(rt)
    return await Conversation.get(external_key=key)


async def _create(client: Any, auth: dict[str, str], name: str, color: str | None = None) -> Any:
    body = {"name": name} if color is None else {"name": name, "color": color}
    return await client.post("/api/v1/labels", json=body, headers=auth)


async def _put(client: Any, auth: dict[str, str], cid: int, names: Any) -> Any:
    return await client.put(f"/api/v1/conversations/{cid}/labels", json={"labels": names}, headers=auth)


async def _ids(client: Any, auth: dict[str, str], path: str, key: str) -> list[int]:
    response = await client.get(path, headers=auth)
    assert response.status == 200, await response.text()
    return sorted(row["id"] for row in (await response.json())[key])


async def test_labels_are_trimmed_unique_ignoring_case_and_coloured(client, make_agent):
    _, auth = await make_agent()
    made = await _create(client, auth, "  Needs   human ", "#AA00FF")
    assert made.status == 201
    assert await made.json() == {"id": (await made.json())["id"], "name": "Needs human", "color": "#aa00ff"}
    assert (await (await _create(client, auth, "refund")).json())["color"] == "#1f93ff"
    taken = await _create(client, auth, "NEEDS HUMAN")
    assert taken.status == 409 and "Needs human" in (await taken.json())["error"]
    for body, error in [({"name": ""}, "name must not be empty"), ({"name": "   "}, "name must not be empty"),
                        ({"name": "x" * 41}, "at most 40"), ({"name": "a,b"}, "commas"),
                        ({"name": "bell\x07"}, "control characters"), ({"name": "tab\there", "color": 3}, "color"),
                        ({"name": "ok", "color": "red"}, "#rrggbb"), ({"name": "ok", "color": "#12345g"}, "#rrggbb"),
                        ({"name": 7}, "must be a string"), ({}, "required")]:
        response = await client.post("/api/v1/labels", json=body, headers=auth)
        assert response.status == 400, body
        assert error in (await response.json())["error"], body
    listed = await (await client.get("/api/v1/labels", headers=auth)).json()
    assert [label["name"] for label in listed["labels"]] == ["Needs human", "refund"]
    assert await Label.all().count() == 2


async def test_put_replaces_the_labels_and_refuses_unknown_names_changing_nothing(client, rt, say, make_agent):
    ana, auth = await make_agent()
    conversation = await _conversation(client, rt, say, "c-put")
    for name in ("refund", "vip", "bot-failed"):
        await _create(client, auth, name)
    response = await _put(client, auth, conversation.id, ["VIP", "refund", "vip"])
    assert response.status == 200
    assert [label["name"] for label in (await response.json())["labels"]] == ["refund", "vip"]

    refused = await _put(client, auth, conversation.id, ["refund", "shipping", "Late"])
    assert refused.status == 400
    body = await refused.json()
    assert body["unknown"] == ["shipping", "Late"] and "shipping, Late" in body["error"]
    for bad in ({"labels": "refund"}, {"labels": [""]}, {"labels": [3]}, {}):
        response = await client.put(f"/api/v1/conversations/{conversation.id}/labels", json=bad, headers=auth)
        assert response.status == 400, bad
    assert (await _put(client, auth, 999999, ["refund"])).status == 404
    assert (await _put(client, auth, "abc", ["refund"])).status == 404
    names = await ConversationLabel.filter(conversation_id=conversation.id).values_list("label__name", flat=True)
    assert sorted(names) == ["refund", "vip"]

    await _put(client, auth, conversation.id, ["bot-failed", "refund"])
    events = await Event.filter(conversation_id=conversation.id, kind="labels_changed").order_by("id")
    assert [(e.data["added"], e.data["removed"], e.agent_id) for e in events] == [
        (["refund", "vip"], [], ana.id), (["bot-failed"], ["vip"], ana.id)]
    assert events[-1].data["labels"] == ["bot-failed", "refund"]
    await _put(client, auth, conversation.id, ["refund", "bot-failed"])  # the same set: no event
    assert await Event.filter(conversation_id=conversation.id, kind="labels_changed").count() == 2
    assert (await _put(client, auth, conversation.id, [])).status == 200
    assert not await ConversationLabel.filter(conversation_id=conversation.id).exists()


async def test_a_change_is_a_live_event_and_on_the_timeline(client, rt, say, make_agent):
    ana, auth = await make_agent()
    conversation = await _conversation(client, rt, say, "c-live")
    await _create(client, auth, "refund", "#ff0000")
    token = auth["Authorization"].split()[1]
    async with client.ws_connect(f"/api/v1/stream?token={token}") as ws:
        assert (await ws.receive_json(timeout=5))["kind"] == "stream.ready"
        await _put(client, auth, conversation.id, ["refund"])
        events = {}
        while "conversation.labels" not in events or "timeline.event" not in events:
            event = await ws.receive_json(timeout=5)
            events[event["kind"]] = event
    live = events["conversation.labels"]
    assert live["conversation_id"] == conversation.id and live["added"] == ["refund"] and live["removed"] == []
    assert [label["name"] for label in live["labels"]] == ["refund"] and live["agent"]["id"] == ana.id
    assert events["timeline.event"]["event"]["kind"] == "labels_changed"
    detail = await (await client.get(f"/api/v1/conversations/{conversation.id}", headers=auth)).json()
    assert [e["data"]["added"] for e in detail["events"] if e["kind"] == "labels_changed"] == [["refund"]]


async def test_rows_and_details_of_conversations_and_tickets_carry_the_labels(client, rt, say, make_agent):
    _, auth = await make_agent()
    conversation = await _conversation(client, rt, say, "c-rows")
    await _create(client, auth, "vip", "#00ff00")
    await _create(client, auth, "Refund", "#ff0000")
    ticket = await (await client.post(f"/api/v1/conversations/{conversation.id}/takeover", headers=auth)).json()
    await _put(client, auth, conversation.id, ["vip", "refund"])
    expected = [{"id": (await Label.get(key="refund")).id, "name": "Refund", "color": "#ff0000"},
                {"id": (await Label.get(key="vip")).id, "name": "vip", "color": "#00ff00"}]
    rows = (await (await client.get("/api/v1/conversations", headers=auth)).json())["conversations"]
    assert rows[0]["labels"] == expected
    assert (await (await client.get(f"/api/v1/conversations/{conversation.id}", headers=auth)).json())["labels"] == expected
    tickets = (await (await client.get("/api/v1/tickets", headers=auth)).json())["tickets"]
    assert tickets[0]["labels"] == expected
    detail = await (await client.get(f"/api/v1/tickets/{ticket['id']}", headers=auth)).json()
    assert detail["labels"] == expected and detail["conversation"]["labels"] == expected


async def test_the_label_filter_takes_any_of_several_names_ignoring_case(client, rt, say, make_agent):
    _, auth = await make_agent()
    first, second, third = [await _conversation(client, rt, say, key) for key in ("f1", "f2", "f3")]
    for name in ("refund", "vip", "late"):
        await _create(client, auth, name)
    await _put(client, auth, first.id, ["refund"])
    await _put(client, auth, second.id, ["vip", "refund"])
    await _put(client, auth, third.id, ["late"])
    await client.post(f"/api/v1/conversations/{second.id}/takeover", headers=auth)
    await client.post(f"/api/v1/conversations/{third.id}/takeover", headers=auth)
    conversations = "/api/v1/conversations?"
    assert await _ids(client, auth, conversations + "label=REFUND", "conversations") == [first.id, second.id]
    assert await _ids(client, auth, conversations + "label=vip,late", "conversations") == [second.id, third.id]
    assert await _ids(client, auth, conversations + "label=vip&label=late", "conversations") == [second.id, third.id]
    assert await _ids(client, auth, conversations + "label=nothing", "conversations") == []
    assert await _ids(client, auth, conversations + "label=refund&state=bot", "conversations") == [first.id]
    tickets = await _ids(client, auth, "/api/v1/tickets?label=refund", "tickets")
    assert len(tickets) == 1
    assert (await (await client.get(f"/api/v1/tickets/{tickets[0]}", headers=auth)).json())["conversation_id"] == second.id
    assert len(await _ids(client, auth, "/api/v1/tickets?label=refund,late", "tickets")) == 2
    for path in ("/api/v1/conversations", "/api/v1/tickets"):
        response = await client.get(path, params={"label": "x" * 41}, headers=auth)
        assert response.status == 400 and "label" in (await response.json())["error"]


@pytest.mark.parametrize("names", [["refund", "refund "], ["Refund", "REFUND"]])
async def test_the_same_label_twice_in_a_put_is_one_label(client, rt, say, make_agent, names):
    _, auth = await make_agent()
    conversation = await _conversation(client, rt, say, "c-twice")
    await _create(client, auth, "refund")
    response = await _put(client, auth, conversation.id, names)
    assert response.status == 200 and len((await response.json())["labels"]) == 1
    assert await ConversationLabel.filter(conversation_id=conversation.id).count() == 1


async def test_concurrent_puts_leave_one_of_the_sets_never_a_mix(client, rt, say, make_agent):
    _, auth = await make_agent()
    conversation = await _conversation(client, rt, say, "c-race")
    for name in ("a", "x", "y"):
        await _create(client, auth, name)
    for _ in range(4):
        assert (await _put(client, auth, conversation.id, ["a", "x"])).status == 200
        first, second = await asyncio.gather(_put(client, auth, conversation.id, ["a"]),
                                             _put(client, auth, conversation.id, ["a", "x", "y"]))
        assert {first.status, second.status} <= {200, 409}
        names = sorted(await ConversationLabel.filter(conversation_id=conversation.id).values_list("label__name", flat=True))
        assert names in (["a"], ["a", "x", "y"])
