"""Property: no input gets a 5xx, and a rejected request stores nothing (hypothesis).

Validly signed garbage goes to every webhook and Slack request URL (random JSON shapes, random
bytes, random forms, and recorded provider payloads with one value anywhere replaced by something
random), and malformed bodies to every JSON endpoint (desk API, desk sign-in, widget session, Slack events). Text is drawn
with NUL and lone surrogates in it. Each run is bounded (`max_examples`) so it stays in the
default suite; it runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import parse_qsl, urlencode

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from handoff.models import Contact, Conversation, Message
from tests.fakes.raw_http import RawResponse
from tests.http.conftest import SIGNERS, WEBHOOKS, Edge, Signed

FUZZ = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

text = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=12),  # surrogates included
    st.sampled_from(["", "\x00", "\ud800", "a\x00b\udfff", " ", "0", "-1", "1e999", "2147483648"]),
)
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=False), text)
json_values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)), max_leaves=12)


def _recorded(channel: str) -> list[bytes]:
    return [p.read_bytes() for p in sorted((WEBHOOKS / channel).glob("*.json" if channel != "whatsapp" else "*.txt"))]


RECORDED = {channel: _recorded(channel) for channel in ("api", "messenger", "instagram", "whatsapp")}
RECORDED["slack_events"] = [p.read_bytes() for p in sorted((WEBHOOKS / "slack").glob("events__*.json"))
                            if "retry_headers" not in p.name]
RECORDED["slack_interactions"] = [p.read_bytes() for p in sorted((WEBHOOKS / "slack").glob("*.json"))
                                  if p.name.startswith(("block_actions__", "view_submission__"))]
RECORDED["slack_commands"] = [p.read_bytes() for p in sorted((WEBHOOKS / "slack").glob("slash_command__*.txt"))]


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value: the root, each key's value, each list item, recursively."""
    found = [prefix]
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found += _paths(child, (*prefix, key))
    return found


def _replaced(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    value = copy.deepcopy(value)
    target = value
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = new
    return value


@st.composite
def mutated_json(draw: Any, payloads: list[bytes]) -> bytes:
    """A recorded JSON payload with one value, anywhere in it, replaced by a random JSON value."""
    original = json.loads(draw(st.sampled_from(payloads)))
    path = draw(st.sampled_from(_paths(original)))
    return json.dumps(_replaced(original, path, draw(json_values))).encode()


@st.composite
def mutated_form(draw: Any, payloads: list[bytes]) -> bytes:
    """A recorded form body with one field's value replaced by random text, or dropped."""
    pairs = parse_qsl(draw(st.sampled_from(payloads)).decode().strip(), keep_blank_values=True)
    index = draw(st.integers(0, len(pairs) - 1))
    replacement = draw(st.one_of(st.none(), text))
    if replacement is None:
        del pairs[index]
    else:
        pairs[index] = (pairs[index][0], replacement.encode("utf-8", "surrogatepass").decode("utf-8", "replace"))
    return urlencode(pairs).encode()


def garbage(channel: str) -> st.SearchStrategy[bytes]:
    """Bodies for one webhook: random bytes, random JSON, random forms, mutated recordings."""
    if channel in ("whatsapp", "slack_commands"):
        mutated = mutated_form(RECORDED[channel])
    elif channel == "slack_interactions":  # Slack's interactivity form: payload=<JSON>
        mutated = mutated_json(RECORDED[channel]).map(lambda body: urlencode({"payload": body.decode()}).encode())
    else:
        mutated = mutated_json(RECORDED[channel])
    forms = st.dictionaries(st.sampled_from(["Body", "From", "MessageSid", "NumMedia", "MediaUrl0", "To",
                                             "MessageStatus", "ErrorCode", "x"]), text, max_size=5)
    return st.one_of(
        st.binary(max_size=64),
        json_values.map(lambda v: json.dumps(v).encode()),
        forms.map(lambda f: urlencode({k: v.encode("utf-8", "surrogatepass") for k, v in f.items()}).encode()),
        mutated, mutated, mutated,
    )


async def _stored() -> tuple[int, int, int]:
    # Only what a request itself stores: the bot's replies to accepted messages are written later.
    return (await Message.filter(direction="incoming").count(), await Conversation.all().count(),
            await Contact.all().count())


async def _check(edge: Edge, signed: Signed) -> RawResponse:
    before = await _stored()
    answer = await edge.send(signed, pause=0)
    event(f"{signed.path.split('/')[-1]} -> {answer.status}")  # shown by --hypothesis-show-statistics
    assert answer.status < 500, (signed.path, signed.body[:300], answer.body[:300])
    if answer.status >= 400:
        assert answer.json()["error"], answer.body
        assert await _stored() == before, (signed.path, signed.body[:300], answer.status)
    return answer


WEBHOOK_NAMES = ["api", "messenger", "instagram", "whatsapp", "slack_events", "slack_interactions", "slack_commands"]


@FUZZ
@given(data=st.data())
async def test_signed_garbage_to_every_webhook_is_never_a_5xx(edge: Edge, data: Any) -> None:
    name = data.draw(st.sampled_from(WEBHOOK_NAMES), label="webhook")
    body = data.draw(garbage(name), label="body")
    await _check(edge, SIGNERS[name](edge, body))


JSON_ENDPOINTS = ["reply", "transfer", "typing", "widget_session", "desk_login", "slack_events"]


@FUZZ
@given(data=st.data())
async def test_malformed_bodies_to_every_json_endpoint_are_never_a_5xx(edge: Edge, data: Any) -> None:
    if not hasattr(edge, "ticket_id"):
        await _open_ticket(edge)
    name = data.draw(st.sampled_from(JSON_ENDPOINTS), label="endpoint")
    shaped = {"reply": {"text": text, "internal": scalars, "attachments": json_values},
              "transfer": {"agent_id": scalars, "note": scalars},
              "typing": {"typing": scalars},
              "widget_session": {"token": scalars, "user_id": scalars, "user_hash": scalars, "name": scalars},
              "desk_login": {"token": scalars, "email": scalars, "password": scalars},
              "slack_events": {"type": st.sampled_from(["event_callback", "url_verification", 1]),
                               "event_id": scalars, "event": json_values, "challenge": json_values}}[name]
    value = data.draw(st.one_of(json_values, st.fixed_dictionaries({}, optional=shaped)), label="json")
    body = data.draw(st.one_of(st.just(json.dumps(value).encode()), st.binary(max_size=32),
                               *([mutated_json(RECORDED["slack_events"])] if name == "slack_events" else [])),
                     label="body")
    await _check(edge, _json_request(edge, name, body))


async def _open_ticket(edge: Edge) -> None:
    """A conversation taken over by the fuzzing agent (the desk endpoints need a ticket)."""
    edge.agent = await edge.agent_headers()  # type: ignore[attr-defined]
    assert (await edge.send(edge.api((WEBHOOKS / "api" / "message__text.json").read_bytes()))).status == 202
    conversation = await Conversation.first()
    answer = await edge.send(Signed(f"/api/v1/conversations/{conversation.id}/takeover", b"", edge.agent))  # type: ignore[union-attr, attr-defined]
    assert answer.status == 201, answer.body
    edge.ticket_id, edge.conversation_id = answer.json()["id"], conversation.id  # type: ignore[attr-defined, union-attr]


def _json_request(edge: Edge, name: str, body: bytes) -> Signed:
    desk = {**edge.agent, "Content-Type": "application/json"}  # type: ignore[attr-defined]
    paths = {"reply": f"/api/v1/tickets/{edge.ticket_id}/messages",  # type: ignore[attr-defined]
             "transfer": f"/api/v1/tickets/{edge.ticket_id}/transfer",  # type: ignore[attr-defined]
             "typing": f"/api/v1/conversations/{edge.conversation_id}/typing"}  # type: ignore[attr-defined]
    if name in paths:
        return Signed(paths[name], body, desk)
    return {"widget_session": edge.widget_session, "desk_login": edge.desk_login,
            "slack_events": edge.slack_events}[name](body)


def test_the_mutations_reach_every_place_of_a_payload() -> None:
    payload = {"a": [1, {"b": "c"}], "d": None}
    assert _paths(payload) == [(), ("a",), ("a", 0), ("a", 1), ("a", 1, "b"), ("d",)]
    assert _replaced(payload, ("a", 1, "b"), "\x00") == {"a": [1, {"b": "\x00"}], "d": None}
    assert payload["a"][1] == {"b": "c"}  # the recording itself is never changed
    assert all(RECORDED.values()) and len(RECORDED["whatsapp"]) >= 5
