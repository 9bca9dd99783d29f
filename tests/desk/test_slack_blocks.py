"""Block Kit builders and the parsing of each recorded Slack payload (no database, no network)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qsl

import pytest

from handoff.desk.slack import actions, blocks, events
from handoff.validation import id_from_text

FIXTURES = Path(__file__).resolve().parents[2] / "webhooks" / "slack"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def card(**overrides) -> blocks.TicketCard:
    values = dict(ticket_id=7, conversation_id=3, subject="Refund for order 1234", summary="Wants a refund <now>",
                  customer="Sam & Co", channel="whatsapp", status="open", assignee=None, conversation_state="human")
    values.update(overrides)
    return blocks.TicketCard(**values)


def action_ids(root_blocks: list[dict]) -> list[str]:
    return [e["action_id"] for b in root_blocks if b["type"] == "actions" for e in b["elements"]]


def test_root_message_shows_every_field_escaped() -> None:
    text, root = blocks.root_message(card())
    assert "Refund for order 1234" in text
    assert root[0] == {"type": "header", "text": {"type": "plain_text", "text": "#7 Refund for order 1234"}}
    assert root[1]["text"]["text"] == "Wants a refund &lt;now&gt;"
    fields = [f["text"] for f in root[2]["fields"]]
    assert fields == ["*Customer*\nSam &amp; Co", "*Channel*\nWhatsApp",
                      "*Status*\n:large_yellow_circle: Waiting for an agent", "*Assignee*\n_unassigned_"]


@pytest.mark.parametrize(
    "overrides, expected",
    [
        ({}, [blocks.ASSIGN_TO_ME, blocks.ALLOW_AI, blocks.TRANSFER, blocks.CLOSE]),
        ({"status": "on_you", "assignee": "Alice"}, [blocks.ALLOW_AI, blocks.TRANSFER, blocks.CLOSE]),
        ({"status": "closed", "assignee": "Alice", "conversation_state": "bot"}, [blocks.TAKE_OVER]),
        ({"status": "closed", "assignee": "Alice", "conversation_state": "ended"}, []),
    ],
)
def test_buttons_follow_the_ticket_state(overrides: dict, expected: list[str]) -> None:
    _, root = blocks.root_message(card(**overrides))
    assert action_ids(root) == expected


def test_button_values_carry_ids() -> None:
    _, root = blocks.root_message(card(status="closed", conversation_state="bot"))
    take = next(b for b in root if b["type"] == "actions")["elements"][0]
    assert take["value"] == "3"  # the conversation, not the closed ticket
    _, root = blocks.root_message(card())
    assert {e["value"] for b in root if b["type"] == "actions" for e in b["elements"]} == {"7"}


def test_summary_placeholder_until_it_arrives() -> None:
    _, root = blocks.root_message(card(summary=""))
    assert "on its way" in root[1]["text"]["text"]


@pytest.mark.parametrize(
    "message, expected",
    [
        ({"direction": "incoming", "author": "customer", "text": "hi <there>"}, "*Sam*: hi &lt;there&gt;"),
        ({"direction": "outgoing", "author": "agent", "text": "hello", "agent": {"name": "Bob"}}, "*Bob* (agent): hello"),
        ({"direction": "outgoing", "author": "agent", "private": True, "text": "vip", "agent": {"name": "Bob"}},
         ":memo: *Bob* (internal note): vip"),
        ({"direction": "activity", "author": "system", "text": "AI Resumed"}, ":arrow_right: _AI Resumed_"),
        ({"direction": "outgoing", "author": "system", "notice": "agent_joined", "text": "You're now chatting with Bob"},
         ":speech_balloon: _Sent to the customer: You're now chatting with Bob_"),
        ({"direction": "incoming", "author": "customer", "text": "see",
          "attachments": [{"url": "https://cdn.example/a/receipt.pdf", "content_type": "application/pdf"}]},
         "*Sam*: see\n<https://cdn.example/a/receipt.pdf|receipt.pdf>"),
    ],
)
def test_thread_lines(message: dict, expected: str) -> None:
    assert blocks.thread_line(message, "Sam") == expected


def test_transfer_modal_round_trips_through_view_submission() -> None:
    modal = blocks.transfer_modal(1, [(2, "Bob"), (3, "Carol")])
    assert modal["callback_id"] == blocks.TRANSFER_VIEW and modal["private_metadata"] == "1"
    assert [o["value"] for o in modal["blocks"][0]["element"]["options"]] == ["2", "3"]
    assert actions.transfer_values(fixture("view_submission__transfer.json")) == (1, 2, "Billing question, over to you")


def test_transfer_without_agent_is_a_modal_error() -> None:
    payload = fixture("view_submission__transfer.json")
    payload["view"]["state"]["values"]["agent"]["agent_select"]["selected_option"] = None
    assert actions.transfer_values(payload)[1] is None


def test_live_list_has_take_over_buttons() -> None:
    listing = blocks.live_list([blocks.LiveConversation(4, "Sam", "widget", "where is my parcel?")])
    assert listing["response_type"] == "ephemeral"
    buttons = [b["accessory"] for b in listing["blocks"] if "accessory" in b]
    assert buttons == [{"type": "button", "text": {"type": "plain_text", "text": "Take over"},
                        "action_id": blocks.TAKE_OVER, "value": "4", "style": "primary"}]
    assert "No live" in blocks.live_list([])["text"]


ME = SimpleNamespace(bot_user_id="UBOTHANDOFF")


@pytest.mark.parametrize(
    "name, person",
    [
        ("events__message_thread_reply.json", True),
        ("events__message_note.json", True),
        ("events__message_top_level.json", False),
        ("events__message_bot.json", False),
        ("events__message_own_post.json", False),
        ("events__message_changed.json", False),
    ],
)
def test_which_messages_are_people_in_threads(name: str, person: bool) -> None:
    assert events.is_person_in_thread(ME, fixture(name)["event"]) is person  # type: ignore[arg-type]


def test_note_prefix() -> None:
    text = fixture("events__message_note.json")["event"]["text"]
    assert events.NOTE_PREFIX.match(text)
    assert events.NOTE_PREFIX.sub("", text, count=1) == "customer is a VIP, offer a refund"
    assert not events.NOTE_PREFIX.match(fixture("events__message_thread_reply.json")["event"]["text"])


async def test_url_verification_is_answered_without_touching_anything() -> None:
    body = fixture("events__url_verification.json")
    assert await events.handle_body(ME, body) == {"challenge": body["challenge"]}  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["slash_command__list.txt", "slash_command__take.txt", "slash_command__help.txt"])
def test_slash_command_fixtures_are_form_bodies(name: str) -> None:
    form = dict(parse_qsl((FIXTURES / name).read_text().strip(), keep_blank_values=True))
    assert form["command"] == "/handoff" and form["user_id"] == "U0ALICE" and "text" in form


async def test_help_command() -> None:
    answer = await actions.handle_command(ME, {"text": "help"})  # type: ignore[arg-type]
    assert answer == {"response_type": "ephemeral", "text": actions.USAGE}


def test_every_button_has_a_handler() -> None:
    assert set(actions.BUTTONS) == {blocks.TAKE_OVER, blocks.ASSIGN_TO_ME, blocks.ALLOW_AI, blocks.TRANSFER, blocks.CLOSE}
    for name in FIXTURES.glob("block_actions__*.json"):
        assert fixture(name.name)["actions"][0]["action_id"] in actions.BUTTONS


@pytest.mark.parametrize("word", ["99999999999", "2147483648", "0", "²", "#-1"])
async def test_take_with_a_number_no_conversation_can_have_answers_the_usage(word: str) -> None:
    # Ids are 32-bit on PostgreSQL: a larger number would fail in the background, after the ack.
    answer = await actions.handle_command(ME, {"text": f"take {word}"})  # type: ignore[arg-type]
    assert answer == {"response_type": "ephemeral", "text": actions.USAGE}


@pytest.mark.parametrize(("value", "expected"), [("42", 42), ("2147483647", 2147483647), ("2147483648", None),
                                                 ("0", None), ("²", None), ("", None), (None, None), ("4 2", None)])
def test_id_from_text(value: object, expected: int | None) -> None:
    assert id_from_text(value) == expected
