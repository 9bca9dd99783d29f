"""Bad input is a JSON 4xx that changes nothing, never a 500: each case found by a fuzzer or by hand.

Deeply nested JSON on every JSON endpoint, NUL and lone surrogates in text, names and ids (stored
the same on SQLite and PostgreSQL), ids past 32 bits, Origin headers with a port that is not a
port, malformed multipart uploads, a Slack event that is not an object, unknown paths and methods.
Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from handoff.desk.auth import create_agent
from handoff.models import Agent, Contact, Conversation, KeyValue, Message, Ticket
from handoff.storable import REPLACEMENT
from tests.conftest import settle
from tests.fakes.raw_http import RawResponse
from tests.http.conftest import Edge, Signed, fixture_bytes

DEEP = b"[" * 4096 + b"]" * 4096
DEEP_OBJECT = b'{"a":' * 2000 + b"1" + b"}" * 2000


async def _taken_ticket(edge: Edge, headers: dict[str, str]) -> int:
    """A conversation from the api channel, taken over by the agent of `headers`: its ticket id."""
    assert (await edge.send(edge.api(fixture_bytes("api", "message__text.json")))).status == 202
    await settle(edge.runtime)
    conversation = await Conversation.first()
    answer = await edge.send(Signed(f"/api/v1/conversations/{conversation.id}/takeover", b"",  # type: ignore[union-attr]
                                    headers))
    assert answer.status == 201, answer.body
    return answer.json()["id"]


def _json_error(answer: RawResponse, status: int) -> str:
    assert answer.status == status, answer.body[:300]
    assert answer.headers["content-type"].startswith("application/json")
    error = answer.json()["error"]
    assert isinstance(error, str) and error
    return error


# -- deeply nested JSON ----------------------------------------------------------------------


async def test_deeply_nested_json_is_a_400_on_every_json_endpoint(edge: Edge) -> None:
    agent = await edge.agent_headers()
    ticket_id = await _taken_ticket(edge, agent)
    before = await Message.all().count()
    json_type = {"Content-Type": "application/json"}
    requests = [
        edge.api(DEEP), edge.api(DEEP_OBJECT), edge.messenger(DEEP), edge.instagram(DEEP_OBJECT),
        edge.slack_events(DEEP), edge.widget_session(DEEP), edge.desk_login(DEEP_OBJECT),
        Signed(f"/api/v1/tickets/{ticket_id}/messages", DEEP, {**agent, **json_type}),
        Signed(f"/api/v1/tickets/{ticket_id}/transfer", DEEP_OBJECT, {**agent, **json_type}),
        Signed("/api/v1/conversations/1/typing", DEEP, {**agent, **json_type}),
    ]
    for signed in requests:
        error = _json_error(await edge.send(signed, pieces=3, pause=0), 400)
        assert "nested deeper than 64 levels" in error, (signed.path, error)
    # Nested just within the limit is read; the api channel then names what is missing.
    within = b'{"x":' + b"[" * 62 + b"]" * 62 + b"}"
    assert "id must be" in _json_error(await edge.send(edge.api(within)), 400)
    assert await Message.all().count() == before


# -- text no store can hold: NUL and lone surrogates -----------------------------------------


async def test_nul_and_lone_surrogates_are_stored_the_same_on_both_stores(edge: Edge) -> None:
    # JSON escapes: "\u0000" is NUL, "\ud800" a lone surrogate (json.loads keeps it as such).
    body = (b'{"id": "m\\u0000-1\\ud800", "conversation": "c\\u0000", '
            b'"contact": {"id": "dana\\u0000\\udfff", "name": "Da\\u0000na \\ud800"}, '
            b'"text": "where\\u0000 is \\ud800 my parcel?"}')
    answer = await edge.send(edge.api(body))
    assert answer.status == 202, answer.body
    message = await Message.get(direction="incoming")
    assert message.text == f"where{REPLACEMENT} is {REPLACEMENT} my parcel?"
    assert message.provider_id == f"m{REPLACEMENT}-1{REPLACEMENT}"
    conversation = await Conversation.get(id=message.conversation_id)  # type: ignore[attr-defined]
    assert conversation.external_key == f"c{REPLACEMENT}"
    contact = await Contact.get(id=conversation.contact_id)  # type: ignore[attr-defined]
    assert contact.name == f"Da{REPLACEMENT}na {REPLACEMENT}"
    assert conversation.contact_external_id == f"dana{REPLACEMENT}{REPLACEMENT}"
    # The provider's retry of the same payload is the same id: a no-op.
    assert (await edge.send(edge.api(body))).status == 202
    assert await Message.filter(direction="incoming").count() == 1


async def test_nul_in_a_whatsapp_form_and_a_meta_message(edge: Edge) -> None:
    form = fixture_bytes("whatsapp", "message__text.txt").replace(b"Body=Hi", b"Body=Hi%00there")
    form = form.replace(b"ProfileName=Ana+Souza", b"ProfileName=Ana%00Souza")
    assert (await edge.send(edge.twilio(form))).status == 200
    meta = json.loads(fixture_bytes("messenger", "message__text.json"))
    meta["entry"][0]["messaging"][0]["message"]["text"] = "open\u0000 on Sunday? \ud800"
    meta["entry"][0]["messaging"][0]["message"]["mid"] += "\u0000"
    assert (await edge.send(edge.messenger(json.dumps(meta).encode()))).status == 200
    texts = sorted(await Message.filter(direction="incoming").values_list("text", flat=True))
    assert texts == [f"Hi{REPLACEMENT}there, my order #4521 has not arrived yet",
                     f"open{REPLACEMENT} on Sunday? {REPLACEMENT}"]
    assert await Contact.filter(name=f"Ana{REPLACEMENT}Souza").count() == 1


async def test_nul_and_surrogates_in_desk_and_widget_bodies(edge: Edge) -> None:
    agent = await edge.agent_headers()
    ticket_id = await _taken_ticket(edge, agent)
    json_type = {"Content-Type": "application/json"}
    reply = b'{"text": "on its way\\u0000 \\ud83d"}'
    answer = await edge.send(Signed(f"/api/v1/tickets/{ticket_id}/messages", reply, {**agent, **json_type}))
    assert answer.status == 201, answer.body
    assert answer.json()["text"] == f"on its way{REPLACEMENT} {REPLACEMENT}"
    bob, _ = await create_agent("Bob", "bob@example.com")
    note = b'{"agent_id": %d, "note": "over\\u0000to you"}' % bob.id
    answer = await edge.send(Signed(f"/api/v1/tickets/{ticket_id}/transfer", note, {**agent, **json_type}))
    assert answer.status == 200, answer.body
    stored = await Message.filter(direction="outgoing", author_kind="agent").values_list("text", flat=True)
    assert f"on its way{REPLACEMENT} {REPLACEMENT}" in stored
    session = await edge.send(edge.widget_session(b'{"name": "Vi\\u0000sitor \\udc00"}'))
    assert session.status == 200, session.body
    assert await KeyValue.filter(scope="widget_session").count() == 1
    assert (await KeyValue.get(scope="widget_session")).value["name"] == f"Vi{REPLACEMENT}sitor {REPLACEMENT}"
    login = await edge.send(edge.desk_login(b'{"email": "ana\\u0000@example.com", "password": "x\\ud800"}'))
    assert _json_error(login, 401) == "wrong email, password or token"


# -- ids past 32 bits ------------------------------------------------------------------------


@pytest.mark.parametrize("agent_id", [10**20, 2**31, 0, -1, True, "2", 2.5, None])
async def test_transfer_agent_id_must_be_a_32_bit_positive_id(edge: Edge, agent_id: Any) -> None:
    agent = await edge.agent_headers()
    ticket_id = await _taken_ticket(edge, agent)
    body = json.dumps({"agent_id": agent_id, "note": "x"}).encode()
    answer = await edge.send(Signed(f"/api/v1/tickets/{ticket_id}/transfer", body,
                                    {**agent, "Content-Type": "application/json"}))
    error = _json_error(answer, 400)
    assert error.startswith("agent_id "), error
    assert (await Ticket.get(id=ticket_id)).assignee_id == (await Agent.first()).id  # type: ignore[union-attr, attr-defined]


async def test_transfer_to_the_largest_id_is_a_404(edge: Edge) -> None:
    agent = await edge.agent_headers()
    ticket_id = await _taken_ticket(edge, agent)
    body = json.dumps({"agent_id": 2**31 - 1}).encode()
    answer = await edge.send(Signed(f"/api/v1/tickets/{ticket_id}/transfer", body,
                                    {**agent, "Content-Type": "application/json"}))
    assert _json_error(answer, 404) == "agent not found"


# -- Origin headers whose port is not a port -------------------------------------------------


@pytest.mark.parametrize("origin", ["https://shop.example:abc", "https://shop.example:99999",
                                    "http://[::1", "https://shop.example:-1"])
async def test_an_origin_with_a_bad_port_is_a_403(edge: Edge, origin: str) -> None:
    session = await edge.send(Signed("/widget/session", b"{}", {"Content-Type": "application/json", "Origin": origin}))
    assert _json_error(session, 403) == "origin not allowed"
    for path, method in [("/widget/session", "OPTIONS"), ("/widget/ws?token=" + "t" * 43, "GET"),
                         ("/widget/upload", "POST")]:
        answer = await _raw(edge, method, path, {"Origin": origin})
        assert _json_error(answer, 403) == "origin not allowed", path
    login = await edge.send(Signed("/desk/login", b'{"token": "x"}', {"Content-Type": "application/json",
                                                                    "Origin": origin}))
    assert _json_error(login, 403) == "cross-site request refused"
    referer = await edge.send(Signed("/desk/login", b'{"token": "x"}', {"Content-Type": "application/json",
                                                                      "Referer": origin + "/desk"}))
    assert _json_error(referer, 403) == "cross-site request refused"
    assert await KeyValue.all().count() == 0


async def _raw(edge: Edge, method: str, path: str, headers: dict[str, str]) -> RawResponse:
    from tests.fakes.raw_http import post_in_pieces

    return await post_in_pieces(edge.url, path, [], headers, method=method)


# -- malformed multipart uploads -------------------------------------------------------------

GOOD_PART = (b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n'
             b"Content-Type: text/plain\r\n\r\nhello\r\n")
MULTIPART_CASES = {
    "not multipart": ("application/json", b'{"file": "hello"}'),
    "no boundary": ("multipart/form-data", GOOD_PART + b"--XyZ--\r\n"),
    "bad boundary": ("multipart/form-data; boundary=Other", GOOD_PART + b"--XyZ--\r\n"),
    "truncated": ("multipart/form-data; boundary=XyZ", GOOD_PART[:-12]),
    "no closing boundary": ("multipart/form-data; boundary=XyZ", GOOD_PART),
    "no file field": ("multipart/form-data; boundary=XyZ",
                      b'--XyZ\r\nContent-Disposition: form-data; name="note"\r\n\r\nhi\r\n--XyZ--\r\n'),
    "empty": ("multipart/form-data; boundary=XyZ", b""),
    "garbage": ("multipart/form-data; boundary=XyZ", b"\x00\xff--XyZ\r\n\r\n\r\n--"),
}


@pytest.mark.parametrize("case", list(MULTIPART_CASES))
async def test_a_malformed_multipart_upload_is_a_400_and_keeps_no_file(edge: Edge, case: str) -> None:
    content_type, body = MULTIPART_CASES[case]
    agent = await edge.agent_headers()
    session = (await edge.send(edge.widget_session(b"{}"))).json()
    targets = [("/api/v1/uploads", agent),
               ("/widget/upload", {"Origin": edge.origin, "Authorization": f"Bearer {session['token']}"})]
    for path, headers in targets:
        answer = await edge.send(Signed(path, body, {**headers, "Content-Type": content_type}), pieces=2, pause=0)
        assert _json_error(answer, 400) == "expected multipart/form-data with a file field", (path, case)
    files = Path(edge.settings.media_dir) / "files"
    assert not files.exists() or list(files.iterdir()) == []


# -- Slack events whose `event` is not an object ---------------------------------------------


@pytest.mark.parametrize("event", [[], "message", 7, True, [{"type": "message"}]])
async def test_a_slack_event_that_is_not_an_object_is_a_400(edge: Edge, event: Any) -> None:
    body = json.loads(fixture_bytes("slack", "events__message_thread_reply.json"))
    body["event"] = event
    answer = await edge.send(edge.slack_events(json.dumps(body).encode()))
    assert _json_error(answer, 400) == "event must be an object"


async def test_a_slack_event_id_with_nul_and_an_odd_retry_header(edge: Edge) -> None:
    body = json.loads(fixture_bytes("slack", "events__message_top_level.json"))
    body["event_id"] = "Ev\u0000X\ud800"
    signed = edge.slack_events(json.dumps(body).encode())
    signed.headers["X-Slack-Retry-Num"] = "\u00b2".encode().decode("latin-1")  # "²": a digit, but not 0-9
    answer = await edge.send(signed)
    assert answer.status == 200 and answer.json() == {"ok": True}, answer.body
    from handoff.models import ProcessedKey

    assert await ProcessedKey.filter(key=f"Ev{REPLACEMENT}X{REPLACEMENT}").count() == 1


# -- errors are JSON everywhere --------------------------------------------------------------


async def test_unknown_paths_wrong_methods_and_oversized_bodies_are_json(edge: Edge) -> None:
    agent = await edge.agent_headers()
    missing = await _raw(edge, "GET", "/api/v1/nothing-here", agent)
    assert _json_error(missing, 404) == "not found"
    wrong = await _raw(edge, "DELETE", "/api/v1/tickets", agent)
    assert _json_error(wrong, 405) == "method not allowed"
    assert "GET" in wrong.headers["allow"]
    assert _json_error(await _raw(edge, "GET", "/no/such/page", {}), 404) == "not found"
    get_webhook = await _raw(edge, "GET", "/webhooks/api", {})  # a webhook without a GET handshake
    assert _json_error(get_webhook, 405) == "this channel takes POST only (it has no GET handshake)"
    assert get_webhook.headers["allow"] == "POST"
    big = b'{"text": "' + b"x" * (1024 * 1024) + b'"}'
    oversized = await edge.send(Signed("/api/v1/tickets/1/messages", big,
                                       {**agent, "Content-Type": "application/json"}), pieces=4, pause=0)
    assert _json_error(oversized, 413) == "body too large (limit 1048576 bytes)"


async def test_a_second_agent_is_a_valid_transfer_target(edge: Edge) -> None:
    agent = await edge.agent_headers()
    ticket_id = await _taken_ticket(edge, agent)
    bob, _ = await create_agent("Bob", "bob@example.com")
    body = json.dumps({"agent_id": bob.id, "note": "yours"}).encode()
    answer = await edge.send(Signed(f"/api/v1/tickets/{ticket_id}/transfer", body,
                                    {**agent, "Content-Type": "application/json"}))
    assert answer.status == 200, answer.body
    assert (await Ticket.get(id=ticket_id)).assignee_id == bob.id  # type: ignore[attr-defined]


# -- provider payloads whose text is not text (found by tests/http/test_fuzz.py) -------------


@pytest.mark.parametrize("text", [True, {"a": 1}, ["x"], 42])
async def test_a_meta_message_whose_text_is_not_text(edge: Edge, text: Any) -> None:
    meta = json.loads(fixture_bytes("instagram", "message__text.json"))
    events = meta["entry"][0]["messaging"]
    neighbour = copy.deepcopy(events[0])
    neighbour["message"].update(mid=neighbour["message"]["mid"] + "-next", text="and the next one is fine")
    events[0]["message"]["text"] = text
    events.append(neighbour)
    answer = await edge.send(edge.instagram(json.dumps(meta).encode()))
    assert answer.status == 200, answer.body  # the unusable event is skipped, never its neighbour
    texts = await Message.filter(direction="incoming").order_by("id").values_list("text", flat=True)
    assert texts == ["and the next one is fine"]


async def test_a_widget_replay_point_past_32_bits_replays_nothing(edge: Edge) -> None:
    import aiohttp

    session = (await edge.send(edge.widget_session(b"{}"))).json()
    async with aiohttp.ClientSession() as http, http.ws_connect(
            f"{edge.url}/widget/ws?token={session['token']}&since={10**20}", headers={"Origin": edge.origin}) as ws:
        assert (await ws.receive_json(timeout=5))["type"] == "texts"
        assert (await ws.receive_json(timeout=5)) == {"type": "ready", "visitor_id": session["visitor_id"]}
