"""Slack as agents really write in it: formatted replies, edits and deletions after the fact, and
payloads with a bad item among good ones.

The app runs with the api channel (its callbacks are the customer's side) and Slack pointed at the
local fake Web API; Slack's requests are the recorded fixtures in webhooks/slack/, signed like Slack
signs them, with the ids of the ticket under test substituted.
"""

from __future__ import annotations

import copy
from typing import Any

from handoff.desk.auth import create_agent
from handoff.desk.slack import blocks, mirror, threads
from handoff.metrics import REGISTRY
from handoff.models import Agent, Message, ProcessedKey, Ticket
from tests.desk import test_slack
from tests.desk.test_slack import CHANNEL, Desk, agents, fixture

desk, fake = test_slack.desk, test_slack.fake  # the fixtures of the Slack end-to-end tests

FORMATTED_PLAIN = ("Track it: https://shop.example/t?o=1042&l=en or see our returns page "
                   "(https://shop.example/help/returns). @Bob M. handles refunds, mail returns@shop.example "
                   "& quote <A-1042> (cc @billing in #billing)")
ORIGINAL_PLAIN = "Your refund of 42 EUR was issued today: https://shop.example/refunds/1042"


def skipped(reason: str) -> float:
    return REGISTRY.get_sample_value("handoff_webhook_items_skipped_total",
                                     {"channel": "slack", "reason": reason}) or 0.0


def in_thread(name: str, thread: threads.SlackThread, event_id: str | None = None) -> dict[str, Any]:
    """A recorded event with the thread under test's root ts substituted."""
    body = fixture(name)
    event = body["event"]
    for part in (event, event.get("message"), event.get("previous_message")):
        if isinstance(part, dict) and "thread_ts" in part:
            part["thread_ts"] = thread.ts
    if event_id:
        body["event_id"] = event_id
    return body


async def relay_original(desk: Desk, thread: threads.SlackThread) -> dict[str, Any]:
    """Alice's reply that the edit and deletion fixtures refer to, written in the thread and relayed."""
    edit = in_thread("events__message_changed__relayed.json", thread)
    original = edit["event"]["previous_message"]
    body = in_thread("events__message_thread_reply.json", thread, event_id="Ev0ORIGINAL1")
    body["event"].update(text=original["text"], ts=original["ts"], event_ts=original["ts"])
    assert (await desk.event(body)).status == 200
    await desk.settle()
    return original


# -- formatting ----------------------------------------------------------------------------
async def test_a_formatted_reply_reaches_the_customer_and_the_timeline_as_plain_text(desk: Desk, callback: Any) -> None:
    alice, token = await create_agent("Alice", "alice@example.com")
    await create_agent("Bob", "bob@example.com")
    desk.fake.add_user("U0BOB", name="Bob Marsh", display_name="Bob M.", email="bob@example.com")
    conversation, ticket, thread = await desk.take_over("where is my parcel?")

    body = in_thread("events__message_thread_reply__formatted.json", thread)
    assert (await desk.event(body)).status == 200
    await desk.settle()

    assert callback.for_conversation("c1")[-1]["text"] == FORMATTED_PLAIN
    response = await desk.client.get(f"/api/v1/conversations/{conversation.id}",
                                     headers={"Authorization": f"Bearer {token}"})
    timeline = (await response.json())["messages"]
    assert [m["text"] for m in timeline if m["author"] == "agent" and not m["notice"]] == [FORMATTED_PLAIN]
    stored = await Message.get(conversation_id=conversation.id, author_kind="agent", notice=None)
    assert (stored.text, stored.origin, stored.agent_id) == (FORMATTED_PLAIN, "slack", alice.id)  # type: ignore[attr-defined]

    # The name is cached: a second mention asks Slack nothing more about Bob.
    await desk.thread_reply(ticket.id, "<@U0BOB> again")
    await desk.settle()
    assert callback.for_conversation("c1")[-1]["text"] == "@Bob M. again"
    assert len([c for c in desk.fake.of("users.info") if c.args.get("user") == "U0BOB"]) == 1


async def test_mentions_slack_cannot_name_fall_back_to_the_agent_then_to_someone(desk: Desk, callback: Any) -> None:
    await agents()
    carol, _ = await create_agent("Carol", "carol@example.com")
    await Agent.filter(id=carol.id).update(slack_user_id="U0CAROL")  # linked; her Slack account is gone
    desk.fake.add_user("U0DANA", name="Dana Reyes", display_name="")  # a profile without a display name
    _, ticket, _ = await desk.take_over("hi")
    # Slack sends a channel mention as `<#C…|>` (no name): it is looked up with conversations.info.
    await desk.thread_reply(ticket.id, "<@U0CAROL>, <@U0DANA> and <@U0NOBODY> from <#C0SUPPORT|> will call you")
    await desk.settle()
    assert callback.for_conversation("c1")[-1]["text"] == "@Carol, @Dana Reyes and @someone from #support will call you"
    assert [c.args["channel"] for c in desk.fake.of("conversations.info")] == ["C0SUPPORT"]


# -- edits and deletions in Slack -------------------------------------------------------------
async def test_editing_or_deleting_a_relayed_reply_tells_the_agent_the_customer_keeps_the_original(
        desk: Desk, callback: Any) -> None:
    await agents()
    conversation, ticket, thread = await desk.take_over("did you refund me?")
    original = await relay_original(desk, thread)
    assert callback.for_conversation("c1")[-1]["text"] == ORIGINAL_PLAIN
    sent = len(callback.for_conversation("c1"))
    told = len(desk.ephemerals("U0ALICE"))

    assert (await desk.event(in_thread("events__message_changed__relayed.json", thread))).status == 200
    await desk.settle()
    [edit_notice] = desk.ephemerals("U0ALICE")[told:]
    assert "Edits in Slack don't reach the customer" in edit_notice
    assert f"“{ORIGINAL_PLAIN}”" in edit_notice and "send a new reply in this thread" in edit_notice
    [call] = [c for c in desk.fake.of("chat.postEphemeral") if c.args["text"] == edit_notice]
    assert (call.args["channel"], call.args["thread_ts"]) == (CHANNEL, thread.ts)

    # A link preview Slack adds later is a message_changed with the same text: nothing to say.
    assert (await desk.event(in_thread("events__message_changed__link_preview.json", thread))).status == 200
    await desk.settle()
    assert len(desk.ephemerals("U0ALICE")) == told + 1

    assert (await desk.event(in_thread("events__message_deleted__relayed.json", thread))).status == 200
    await desk.settle()
    [delete_notice] = desk.ephemerals("U0ALICE")[told + 1:]
    assert "Deleting a reply in Slack doesn't unsend it" in delete_notice and f"“{ORIGINAL_PLAIN}”" in delete_notice

    # Nothing was relayed or changed for the customer.
    assert len(callback.for_conversation("c1")) == sent
    stored = await Message.get(conversation_id=conversation.id, author_kind="agent", notice=None)
    assert (stored.text, stored.edited_at, stored.deleted_at) == (ORIGINAL_PLAIN, None, None)
    assert await threads.relayed(thread.team, thread.channel, original["ts"]) is not None


async def test_edits_of_messages_that_were_not_relayed_say_nothing(desk: Desk) -> None:
    await agents()
    _, ticket, thread = await desk.take_over("hi")
    edit = in_thread("events__message_changed__relayed.json", thread)
    note = in_thread("events__message_thread_reply.json", thread, event_id="Ev0NOTE1")
    note["event"].update(text="note: " + edit["event"]["previous_message"]["text"],
                         ts=edit["event"]["message"]["ts"], event_ts=edit["event"]["message"]["ts"])
    await desk.event(note)  # an internal note at the ts the edit names: the customer never got it
    await desk.settle()
    told = len(desk.fake.of("chat.postEphemeral"))
    await desk.event(edit)
    await desk.event(in_thread("events__message_deleted__relayed.json", thread))
    await desk.settle()
    assert len(desk.fake.of("chat.postEphemeral")) == told


# -- one bad item never costs its neighbours --------------------------------------------------
async def test_malformed_events_are_acknowledged_skipped_and_the_next_reply_still_goes(desk: Desk, callback: Any) -> None:
    await agents()
    conversation, ticket, thread = await desk.take_over("hi")
    before = skipped("malformed_event")
    base = in_thread("events__message_thread_reply.json", thread)
    variants = []
    for n, change in enumerate([{"user": None}, {"text": ["Hi", "Sam"]}, {"files": "F0LABEL001"},
                                {"thread_ts": 1700000001.0001}, {"ts": {"t": 1}}]):
        body = copy.deepcopy(base)
        body["event_id"] = f"Ev0MALFORMED{n}"
        body["event"].update(text=f"malformed {n}", ts=f"17000002{n:02d}.000100")
        body["event"].update(change)
        if change == {"user": None}:
            del body["event"]["user"]
        variants.append(body)
    for body in variants:
        response = await desk.event(body)
        assert response.status == 200 and (await response.json())["ok"] is True
    await desk.thread_reply(ticket.id, "the good one")
    await desk.settle()

    assert skipped("malformed_event") - before == len(variants)
    texts = [m["text"] for m in callback.for_conversation("c1")]
    assert texts[-1] == "the good one" and not [t for t in texts if "malformed" in t or "['Hi'" in t]
    assert await Message.filter(conversation_id=conversation.id, text__contains="malformed").count() == 0


async def test_one_bad_action_in_a_block_actions_payload_does_not_stop_the_others(desk: Desk) -> None:
    await agents()
    _, ticket, _ = await desk.take_over("hi")
    payload = fixture("block_actions__several_actions.json")
    for action in payload["actions"]:
        if action.get("value") == "1":
            action["value"] = str(ticket.id)
    desk.fake.fail("views.open", "expired_trigger_id")  # the Transfer button fails in Slack
    before = skipped("malformed_action")

    response = await desk.interact(payload)
    assert response.status == 200
    await desk.settle()

    assert len(desk.fake.of("views.open")) == 1
    assert skipped("malformed_action") - before == 1  # "ticket-1" is not an id
    await ticket.refresh_from_db()
    assert ticket.status == "closed"  # the last action ran


async def test_a_message_slack_refuses_does_not_hold_back_the_rest_of_the_thread(desk: Desk) -> None:
    await agents()
    _, ticket, thread = await desk.take_over("hi")
    desk.fake.refuse("chat.postMessage", "msg_too_long", text_containing="(very long)")
    await desk.say("(very long) my whole order history")
    await desk.say("and one more question")
    await desk.fake.wait_for("chat.postMessage", text="*Sam*: and one more question")
    await desk.settle()

    posted = [m["text"] for (channel, _), m in desk.fake.messages.items() if m.get("thread_ts") == thread.ts]
    assert "*Sam*: and one more question" in posted
    assert not [t for t in posted if "(very long)" in t]
    assert len([c for c in desk.fake.of("chat.postMessage") if "(very long)" in c.args.get("text", "")]) == 1
    rows = await Message.filter(ticket_id=ticket.id, direction="incoming").values_list("id", flat=True)
    assert await ProcessedKey.filter(scope=mirror.MIRRORED_SCOPE, key__in=[str(i) for i in rows]).count() == 2


async def test_malformed_actions_change_nothing(desk: Desk) -> None:
    await agents()
    _, ticket, _ = await desk.take_over("hi")
    before = skipped("malformed_action")
    payload = fixture("block_actions__several_actions.json")
    payload["actions"] = [{"action_id": blocks.CLOSE}, "not an action", {"action_id": blocks.CLOSE, "value": "x"}]
    assert (await desk.interact(payload)).status == 200
    await desk.settle()
    assert skipped("malformed_action") - before == 3
    assert (await Ticket.get(id=ticket.id)).status != "closed"


async def test_an_event_that_is_not_an_object_is_skipped_before_anything_is_stored() -> None:
    """Socket Mode hands envelopes straight to `handle_body`: the same rule holds there."""
    from types import SimpleNamespace

    from handoff.desk.slack import events

    before = skipped("malformed_event")
    body = {"type": "event_callback", "event_id": "Ev0NOTANOBJECT", "event": ["message"]}
    assert await events.handle_body(SimpleNamespace(), body) == {"ok": True}  # type: ignore[arg-type]
    assert skipped("malformed_event") - before == 1
