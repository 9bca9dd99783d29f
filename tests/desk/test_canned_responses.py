"""Canned responses on SQLite and PostgreSQL: the desk API (`/api/v1/canned_responses`: list,
add, change, delete; short codes validated and unique; bad input changes nothing), their
placeholders filled in for a ticket's customer, a Slack thread reply starting with `/code`, and
AI compose's 409 on a server without a model."""

from __future__ import annotations

from typing import Any

import pytest

from handoff.models import CannedResponse, Contact, Conversation, Message
from tests.conftest import settle
from tests.desk import test_slack
from tests.desk.test_openapi import _check, _document
from tests.desk.test_slack import Desk, agents

desk, fake = test_slack.desk, test_slack.fake  # the Slack end-to-end tests' fixtures

SHIPPING = "Hi {{contact.name}}, parcels leave within 24 hours. {{agent.first_name}}"


async def _add(client: Any, auth: dict[str, str], **body: Any) -> tuple[int, Any]:
    response = await client.post("/api/v1/canned_responses", json=body, headers=auth)
    return response.status, await response.json()


async def test_agents_add_list_change_and_delete_canned_responses(client, make_agent) -> None:
    _, auth = await make_agent("Ann")
    document = await _document(client)
    response = await client.post("/api/v1/canned_responses", json={"short_code": "/Shipping", "content": SHIPPING},
                                 headers=auth)
    assert response.status == 201
    _check(document, "/api/v1/canned_responses", "post", 201, await response.text())
    shipping = await response.json()
    assert (shipping["short_code"], shipping["content"]) == ("shipping", SHIPPING)  # "/" dropped, lower case
    status, refund = await _add(client, auth, short_code="refund.policy", content="Refunds take 5 days.")
    assert status == 201

    response = await client.get("/api/v1/canned_responses", headers=auth)
    _check(document, "/api/v1/canned_responses", "get", 200, await response.text())
    assert [r["short_code"] for r in (await response.json())["canned_responses"]] == ["refund.policy", "shipping"]

    response = await client.patch(f"/api/v1/canned_responses/{refund['id']}", json={"content": "Refunds take 3 days."},
                                  headers=auth)
    assert response.status == 200
    _check(document, "/api/v1/canned_responses/{id}", "patch", 200, await response.text())
    assert (await response.json())["content"] == "Refunds take 3 days."
    response = await client.delete(f"/api/v1/canned_responses/{refund['id']}", headers=auth)
    assert (response.status, await response.json()) == (200, {"ok": True})
    assert [r.short_code for r in await CannedResponse.all()] == ["shipping"]
    response = await client.delete(f"/api/v1/canned_responses/{refund['id']}", headers=auth)
    assert (response.status, await response.json()) == (404, {"error": "canned response not found"})
    assert (await client.get("/api/v1/canned_responses")).status == 401


@pytest.mark.parametrize(("body", "error"), [
    ({"content": "x"}, "short_code is required"),
    ({"short_code": "ship it", "content": "x"}, "short_code must be 1 to 50 letters, digits, _, - or . (no spaces)"),
    ({"short_code": "/", "content": "x"}, "short_code must be 1 to 50 letters, digits, _, - or . (no spaces)"),
    ({"short_code": "a" * 51, "content": "x"}, "short_code must be 1 to 50 letters, digits, _, - or . (no spaces)"),
    ({"short_code": 5, "content": "x"}, "short_code must be a string"),
    ({"short_code": "x", "content": "  \n"}, "content must not be blank"),
    ({"short_code": "x", "content": "y" * 10_001}, "content must be at most 10000 characters"),
    ({"short_code": "x", "content": "Hi {{ contact.name "},
     "content is not a valid template: expected '}}', found end of file (line 1)"),
    ({"short_code": "x", "content": "{% include 'secrets' %}"},
     "content is not a valid template: include and render are not available"),
])
async def test_a_bad_canned_response_is_a_400_naming_the_field_and_changes_nothing(client, make_agent, body, error):
    _, auth = await make_agent("Ann")
    status, original = await _add(client, auth, short_code="x", content="kept")
    assert status == 201
    assert await _add(client, auth, **body) == (400, {"error": error})
    if "is required" not in error:  # a change may leave out any field
        response = await client.patch(f"/api/v1/canned_responses/{original['id']}", json=body, headers=auth)
        assert (response.status, await response.json()) == (400, {"error": error})
    assert [(r.short_code, r.content) for r in await CannedResponse.all()] == [("x", "kept")]


async def test_a_short_code_is_unique_whatever_its_case(client, make_agent) -> None:
    _, auth = await make_agent("Ann")
    assert (await _add(client, auth, short_code="shipping", content="a"))[0] == 201
    _, other = await _add(client, auth, short_code="returns", content="b")
    assert await _add(client, auth, short_code="SHIPPING", content="c") == (
        409, {"error": "short_code 'shipping' is already taken"})
    response = await client.patch(f"/api/v1/canned_responses/{other['id']}", json={"short_code": "/Shipping"},
                                  headers=auth)
    assert (response.status, await response.json()) == (409, {"error": "short_code 'shipping' is already taken"})
    response = await client.patch(f"/api/v1/canned_responses/{other['id']}", json={}, headers=auth)
    assert (response.status, await response.json()) == (400, {"error": "give short_code or content to change"})
    assert sorted((r.short_code, r.content) for r in await CannedResponse.all()) == [("returns", "b"), ("shipping", "a")]


async def test_listed_for_a_ticket_each_is_filled_in_for_its_customer_and_the_agent(client, rt, say, make_agent):
    _, auth = await make_agent("Ann Lee")
    await _add(client, auth, short_code="shipping", content=SHIPPING)
    await _add(client, auth, short_code="hello", content="Hello {{ contact.first_name | default: 'there' }}!")
    tickets = {}
    for key, name in (("named", "Dana Pérez"), ("anonymous", None)):
        await say("where is my parcel?", conversation=key, contact=key, name=name)
        await settle(rt)
        conversation = await Conversation.get(external_key=key)
        response = await client.post(f"/api/v1/conversations/{conversation.id}/takeover", headers=auth)
        tickets[key] = (await response.json())["id"]

    document = await _document(client)
    response = await client.get(f"/api/v1/canned_responses?ticket_id={tickets['named']}", headers=auth)
    _check(document, "/api/v1/canned_responses", "get", 200, await response.text())
    rendered = {r["short_code"]: r["rendered"] for r in (await response.json())["canned_responses"]}
    assert rendered == {"shipping": "Hi Dana Pérez, parcels leave within 24 hours. Ann", "hello": "Hello Dana!"}
    response = await client.get(f"/api/v1/canned_responses?ticket_id={tickets['anonymous']}", headers=auth)
    rendered = {r["short_code"]: r["rendered"] for r in (await response.json())["canned_responses"]}
    # No name: the placeholder goes with the space before it, or the template's own default applies.
    assert rendered == {"shipping": "Hi, parcels leave within 24 hours. Ann", "hello": "Hello there!"}

    for bad, status in (("abc", 400), ("0", 400), ("999999", 404)):
        response = await client.get(f"/api/v1/canned_responses?ticket_id={bad}", headers=auth)
        assert response.status == status and "error" in await response.json()


async def test_without_a_model_compose_is_a_409_and_the_desk_hides_it(client, rt, say, make_agent) -> None:
    _, auth = await make_agent("Ann")
    await say("hello")
    await settle(rt)
    conversation = await Conversation.get(external_key="c1")
    ticket = await (await client.post(f"/api/v1/conversations/{conversation.id}/takeover", headers=auth)).json()
    response = await client.get(f"/api/v1/tickets/{ticket['id']}", headers=auth)
    assert (await response.json())["permissions"]["compose"] is False
    response = await client.post(f"/api/v1/tickets/{ticket['id']}/compose", json={"mode": "draft"}, headers=auth)
    assert (response.status, await response.json()) == (
        409, {"error": "AI compose is not available: no model is configured (set OPENAI_API_KEY)"})


async def test_a_slack_reply_starting_with_a_shortcut_sends_the_canned_response(desk: Desk, callback: Any) -> None:
    await agents()
    await CannedResponse.create(short_code="shipping", content=SHIPPING)
    conversation, ticket, _ = await desk.take_over("where is my parcel?")
    await Contact.filter(id=conversation.contact_id).update(name="Dana Pérez")  # type: ignore[attr-defined]

    # Slack's client runs a message starting with "/" as a command: agents type a space first.
    await desk.thread_reply(ticket.id, " /Shipping and it is insured.")
    await desk.settle()
    assert callback.for_conversation("c1")[-1]["text"] == (
        "Hi Dana Pérez, parcels leave within 24 hours. Alice and it is insured.")

    sent = len(callback.for_conversation("c1"))
    await desk.thread_reply(ticket.id, "/shiping")
    await desk.settle()
    assert len(callback.for_conversation("c1")) == sent  # an unknown shortcut sends nothing
    assert any("no canned response `/shiping`" in text for text in desk.ephemerals("U0ALICE"))

    await desk.thread_reply(ticket.id, "note: /shipping")
    await desk.thread_reply(ticket.id, "/etc/hosts is where it lives")  # not a shortcut: sent as written
    await desk.settle()
    note = await Message.filter(conversation_id=conversation.id, private=True).order_by("-id").first()
    assert note is not None and note.text == "Hi Dana Pérez, parcels leave within 24 hours. Alice"
    assert callback.for_conversation("c1")[-1]["text"] == "/etc/hosts is where it lives"
