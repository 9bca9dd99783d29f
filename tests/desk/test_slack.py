"""Slack end to end: a team with only Slack takes over, talks, transfers and hands back.

The app runs with the api channel (its callbacks are the customer's side) and Slack pointed at
the local fake Web API; Slack's requests are the recorded fixtures in webhooks/slack/, signed
like Slack signs them.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest

from handoff.app import INTEGRATIONS_KEY
from handoff.channels.api import sign as api_sign
from handoff import transitions as ops
from handoff.desk.auth import create_agent
from handoff.desk.slack import SlackIntegration, blocks, threads
from handoff.desk.slack.verify import sign as slack_sign
from handoff.models import Agent, Conversation, Message, ProcessedKey, Ticket
from handoff.runtime import RUNTIME
from tests.conftest import API_SECRET, api_body, settle
from tests.fakes.slack_api import BOT_USER_ID, TEAM_ID, FakeSlack

FIXTURES = Path(__file__).resolve().parents[2] / "webhooks" / "slack"
SIGNING_SECRET = "test-slack-signing-secret"
CHANNEL = "C0SUPPORT"


def fixture(name: str) -> Any:
    text = (FIXTURES / name).read_text()
    return json.loads(text) if name.endswith(".json") else dict(parse_qsl(text.strip(), keep_blank_values=True))


@pytest.fixture
async def fake(aiohttp_server: Any) -> FakeSlack:
    fake = FakeSlack()
    server = await aiohttp_server(fake.app)
    fake.base = str(server.make_url("/api/"))  # type: ignore[attr-defined]
    fake.add_user("U0ALICE", name="Alice", email="alice@example.com")
    fake.add_user("U0BOB", name="Bob", email="bob@example.com")
    fake.add_user("U0MALLORY", name="Mallory", email="mallory@elsewhere.example")
    return fake


class Desk:
    """The test's hands in Slack: signed requests to the app, and a view of the fake."""

    def __init__(self, client: Any, fake: FakeSlack) -> None:
        self.client, self.fake = client, fake
        self.slack: SlackIntegration = client.app[INTEGRATIONS_KEY][0]
        self.rt = client.app[RUNTIME]

    async def post(self, path: str, body: bytes, content_type: str, **headers: str) -> Any:
        return await self.client.post(path, data=body, headers={
            "Content-Type": content_type, **slack_sign(SIGNING_SECRET, body), **headers})

    async def event(self, body: dict, **headers: str) -> Any:
        return await self.post("/slack/events", json.dumps(body).encode(), "application/json", **headers)

    async def interact(self, payload: dict) -> Any:
        body = urlencode({"payload": json.dumps(payload)}).encode()
        return await self.post("/slack/interactions", body, "application/x-www-form-urlencoded")

    async def command(self, text: str, user: str = "U0ALICE") -> Any:
        form = dict(fixture("slash_command__list.txt"), text=text, user_id=user)
        return await self.post("/slack/commands", urlencode(form).encode(), "application/x-www-form-urlencoded")

    async def say(self, text: str, conversation: str = "c1") -> None:
        body = api_body(text, conversation=conversation, name="Sam")
        response = await self.client.post("/webhooks/api", data=body, headers={
            "X-Handoff-Signature": api_sign(API_SECRET, body), "Content-Type": "application/json"})
        assert response.status == 202, await response.text()

    async def button(self, action_id: str, value: int, user: str = "U0ALICE") -> Any:
        payload = fixture("block_actions__take_over.json")
        payload["user"] = dict(payload["user"], id=user, username=user.lower())
        payload["actions"][0].update(action_id=action_id, value=str(value))
        return await self.interact(payload)

    async def thread_reply(self, ticket_id: int, text: str, user: str = "U0ALICE", event_id: str | None = None,
                           **headers: str) -> Any:
        thread = await threads.by_ticket(ticket_id)
        assert thread is not None
        body = fixture("events__message_thread_reply.json")
        ts = f"{time.time():.6f}"
        body["event_id"] = event_id or f"Ev{time.monotonic_ns()}"
        body["event"].update(text=text, user=user, thread_ts=thread.ts, ts=ts, event_ts=ts, channel=thread.channel)
        return await self.event(body, **headers)

    async def take_over(self, first_words: str) -> tuple[Conversation, Ticket, threads.SlackThread]:
        """The customer says `first_words`, the bot answers, Alice presses Take over in Slack."""
        await self.say(first_words)
        await self.settle()
        conversation = await Conversation.get(external_key="c1")
        await self.button(blocks.TAKE_OVER, conversation.id)
        await self.settle()
        ticket = await Ticket.get(conversation_id=conversation.id)
        thread = await threads.by_ticket(ticket.id)
        assert thread is not None
        return conversation, ticket, thread

    async def settle(self) -> None:
        for _ in range(3):
            await settle(self.rt)
            await self.slack.poster.drain()
        await settle(self.rt)

    def thread_texts(self, ticket_ts: str) -> list[str]:
        return [c.args.get("text", "") for c in self.fake.of("chat.postMessage") if c.args.get("thread_ts") == ticket_ts]

    def ephemerals(self, user: str) -> list[str]:
        return [c.args["text"] for c in self.fake.of("chat.postEphemeral") if c.args.get("user") == user]


@pytest.fixture
async def desk(aiohttp_client: Any, app_factory: Any, settings: Any, fake: FakeSlack, monkeypatch: Any) -> Desk:
    import handoff.desk.slack.poster as poster_module

    monkeypatch.setattr(poster_module, "DEFAULT_INTERVAL", 0.01)
    slack_settings = settings.model_copy(update=dict(slack_bot_token=fake.token, slack_signing_secret=SIGNING_SECRET,
        slack_channel=CHANNEL, slack_api_base=fake.base))  # type: ignore[attr-defined]
    client = await aiohttp_client(app_factory(settings=slack_settings))
    return Desk(client, fake)


async def agents() -> tuple[Agent, Agent]:
    alice, _ = await create_agent("Alice", "alice@example.com")
    bob, _ = await create_agent("Bob", "bob@example.com")
    return alice, bob


# -- request security --------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/slack/events", "/slack/interactions", "/slack/commands"])
async def test_forged_stale_and_unsigned_requests_are_refused(desk: Desk, path: str) -> None:
    body = json.dumps(fixture("events__url_verification.json")).encode()
    signed = slack_sign(SIGNING_SECRET, body)
    cases = [
        {},
        {**signed, "X-Slack-Signature": "v0=" + "0" * 64},
        slack_sign("not-the-secret", body),
        slack_sign(SIGNING_SECRET, body, timestamp=int(time.time()) - 301),
    ]
    for headers in cases:
        response = await desk.client.post(path, data=body, headers={"Content-Type": "application/json", **headers})
        assert response.status == 401, headers
        assert "error" in await response.json()
    assert desk.fake.of("chat.postMessage") == []


async def test_malformed_bodies_are_400(desk: Desk) -> None:
    assert (await desk.post("/slack/events", b"{nope", "application/json")).status == 400
    assert (await desk.post("/slack/interactions", b"payload=%7Bnope", "application/x-www-form-urlencoded")).status == 400
    assert (await desk.post("/slack/interactions", b"other=1", "application/x-www-form-urlencoded")).status == 400


async def test_url_verification(desk: Desk) -> None:
    body = fixture("events__url_verification.json")
    response = await desk.event(body)
    assert response.status == 200
    assert await response.json() == {"challenge": body["challenge"]}


async def test_start_learns_team_and_bot_user(desk: Desk) -> None:
    assert (desk.slack.team_id, desk.slack.bot_user_id) == (TEAM_ID, BOT_USER_ID)


# -- the whole cycle from Slack only -------------------------------------------------------
async def test_full_cycle_from_slack_only(desk: Desk, callback: Any) -> None:
    alice, bob = await agents()
    await desk.say("hello, my parcel is late")
    await desk.settle()
    conversation = await Conversation.get(external_key="c1")
    assert [m["kind"] for m in callback.for_conversation("c1")] == ["bot"]

    # /handoff lists the live conversation with a Take over button.
    response = await desk.command("")
    listing = await response.json()
    assert response.status == 200 and listing["response_type"] == "ephemeral"
    buttons = [b["accessory"] for b in listing["blocks"] if "accessory" in b]
    assert buttons[0]["action_id"] == blocks.TAKE_OVER and buttons[0]["value"] == str(conversation.id)
    assert "hello, my parcel is late" in json.dumps(listing)

    # Alice takes it over from the list.
    payload = fixture("block_actions__take_over__from_list.json")
    payload["actions"][0]["value"] = str(conversation.id)
    started = time.monotonic()
    response = await desk.interact(payload)
    assert response.status == 200 and time.monotonic() - started < 3
    await desk.settle()
    ticket = await Ticket.get(conversation_id=conversation.id)
    assert (ticket.status, ticket.assignee_id) == ("on_you", alice.id)  # type: ignore[attr-defined]
    thread = await threads.by_ticket(ticket.id)
    assert thread is not None and (thread.team, thread.channel) == (TEAM_ID, CHANNEL)
    root = desk.fake.messages[(CHANNEL, thread.ts)]
    assert "Alice" in json.dumps(root["blocks"]) and "Sam" in json.dumps(root["blocks"])
    assert any("hello, my parcel is late" in t for t in desk.thread_texts(thread.ts))
    # The AI summary arrives and updates the root message.
    assert any(c.args.get("ts") == thread.ts for c in desk.fake.of("chat.update"))
    assert "hello, my parcel is late" in json.dumps(desk.fake.messages[(CHANNEL, thread.ts)]["blocks"])

    # The customer writes; it shows in the thread. Alice answers from the thread.
    await desk.say("are you there?")
    await desk.settle()
    assert any("are you there?" in t for t in desk.thread_texts(thread.ts))
    assert (await desk.thread_reply(ticket.id, "Hi Sam, Alice here. Checking now.")).status == 200
    await desk.settle()
    seen = callback.for_conversation("c1")
    assert {"kind": "agent", "text": "Hi Sam, Alice here. Checking now."}.items() <= seen[-1].items()
    assert any(m["kind"] == "notice" and "Alice" in m["text"] for m in seen)
    # Her reply is not echoed back into the thread by the mirror.
    assert not any("Checking now" in t for t in desk.thread_texts(thread.ts))

    # An internal note never reaches the customer.
    before = len(callback.for_conversation("c1"))
    await desk.thread_reply(ticket.id, "note: VIP customer, be nice")
    await desk.settle()
    assert len(callback.for_conversation("c1")) == before
    note = await Message.get(conversation_id=conversation.id, private=True)
    assert note.text == "VIP customer, be nice" and note.agent_id == alice.id  # type: ignore[attr-defined]

    # Transfer through the modal.
    await desk.button(blocks.TRANSFER, ticket.id)
    opened = await desk.fake.wait_for("views.open")
    view = opened[0].args["view"]
    assert view["callback_id"] == blocks.TRANSFER_VIEW
    assert [o["value"] for o in view["blocks"][0]["element"]["options"]] == [str(bob.id)]
    submission = fixture("view_submission__transfer.json")
    submission["view"]["private_metadata"] = str(ticket.id)
    submission["view"]["state"]["values"]["agent"]["agent_select"]["selected_option"]["value"] = str(bob.id)
    response = await desk.interact(submission)
    assert response.status == 200 and await response.text() == ""
    await desk.settle()
    await ticket.refresh_from_db()
    assert ticket.assignee_id == bob.id  # type: ignore[attr-defined]
    assert any(m["kind"] == "notice" for m in callback.for_conversation("c1")[before:])
    assert "Bob" in json.dumps(desk.fake.messages[(CHANNEL, thread.ts)]["blocks"])

    # Bob answers, then hands back to the AI.
    await desk.thread_reply(ticket.id, "Bob here, refund issued.", user="U0BOB")
    await desk.settle()
    assert callback.for_conversation("c1")[-1]["text"] == "Bob here, refund issued."
    await desk.button(blocks.ALLOW_AI, ticket.id, user="U0BOB")
    await desk.settle()
    await ticket.refresh_from_db()
    await conversation.refresh_from_db()
    assert (ticket.status, conversation.state) == ("closed", "bot")
    assert callback.for_conversation("c1")[-1]["kind"] == "notice"
    root_blocks = desk.fake.messages[(CHANNEL, thread.ts)]["blocks"]
    assert [e["action_id"] for b in root_blocks if b["type"] == "actions" for e in b["elements"]] == [blocks.TAKE_OVER]
    assert any(t.startswith(":arrow_right:") for t in desk.thread_texts(thread.ts))

    # The AI answers again.
    await desk.say("thanks!")
    await desk.settle()
    assert callback.for_conversation("c1")[-1] == {**callback.for_conversation("c1")[-1], "kind": "bot", "text": "echo: thanks!"}
    assert desk.ephemerals("U0ALICE") and not desk.ephemerals("U0MALLORY")


async def test_retried_event_is_handled_once(desk: Desk, callback: Any) -> None:
    alice, _ = await agents()
    conversation, ticket, _ = await desk.take_over("hi")
    retry_headers = fixture("events__retry_headers.json")
    first = await desk.thread_reply(ticket.id, "only once", event_id="Ev0RETRIED")
    again = await desk.thread_reply(ticket.id, "only once", event_id="Ev0RETRIED", **retry_headers)
    assert (first.status, again.status) == (200, 200)
    await desk.settle()
    assert [m["text"] for m in callback.for_conversation("c1")].count("only once") == 1
    assert await Message.filter(text="only once").count() == 1
    assert await ProcessedKey.filter(scope="slack.event", key="Ev0RETRIED").count() == 1


async def test_two_agents_press_take_over_at_once(desk: Desk) -> None:
    alice, bob = await agents()
    await desk.say("help")
    await desk.settle()
    conversation = await Conversation.get(external_key="c1")
    responses = await asyncio.gather(desk.button(blocks.TAKE_OVER, conversation.id, user="U0ALICE"),
                                     desk.button(blocks.TAKE_OVER, conversation.id, user="U0BOB"))
    assert [r.status for r in responses] == [200, 200]
    await desk.settle()
    tickets = await Ticket.filter(conversation_id=conversation.id)
    assert len(tickets) == 1
    winner = await Agent.get(id=tickets[0].assignee_id)  # type: ignore[attr-defined]
    loser = "U0BOB" if winner.id == alice.id else "U0ALICE"
    told = [t for t in desk.ephemerals(loser) if "Too late" in t]
    assert len(told) == 1 and winner.name in told[0] and f"#{tickets[0].id}" in told[0]
    assert len([c for c in desk.fake.of("chat.postMessage") if c.args.get("blocks")]) == 1  # one root


async def test_slash_take_by_id(desk: Desk) -> None:
    alice, _ = await agents()
    await desk.say("hi")
    await desk.settle()
    conversation = await Conversation.get(external_key="c1")
    answer = await (await desk.command(f"take {conversation.id}")).json()
    assert answer["response_type"] == "ephemeral"
    await desk.settle()
    ticket = await Ticket.get(conversation_id=conversation.id)
    assert ticket.assignee_id == alice.id  # type: ignore[attr-defined]
    assert any(f"ticket #{ticket.id}" in t for t in desk.ephemerals("U0ALICE"))


async def test_unknown_slack_user_is_told_not_misattributed(desk: Desk, callback: Any) -> None:
    await agents()
    conversation, ticket, _ = await desk.take_over("hi")
    before = len(callback.for_conversation("c1"))
    await desk.thread_reply(ticket.id, "I'm not an agent", user="U0MALLORY")
    await desk.button(blocks.CLOSE, ticket.id, user="U0MALLORY")
    await desk.settle()
    assert len(callback.for_conversation("c1")) == before
    assert await Message.filter(text="I'm not an agent").count() == 0
    assert len([t for t in desk.ephemerals("U0MALLORY") if "couldn't match" in t]) == 2
    await ticket.refresh_from_db()
    assert ticket.status != "closed"


async def test_agents_are_matched_by_email_once(desk: Desk) -> None:
    alice, _ = await agents()
    await desk.say("hi")
    await desk.settle()
    conversation = await Conversation.get(external_key="c1")
    await desk.button(blocks.TAKE_OVER, conversation.id)
    await desk.settle()
    await alice.refresh_from_db()
    assert alice.slack_user_id == "U0ALICE"
    ticket = await Ticket.get(conversation_id=conversation.id)
    await desk.thread_reply(ticket.id, "hello")
    await desk.settle()
    assert len(desk.fake.of("users.info")) == 1


async def test_bots_our_posts_and_edits_are_ignored(desk: Desk, callback: Any) -> None:
    await agents()
    conversation, ticket, thread = await desk.take_over("hi")
    before = await Message.filter(conversation_id=conversation.id).count()
    told = len(desk.fake.of("chat.postEphemeral"))
    for name in ("events__message_bot.json", "events__message_own_post.json", "events__message_changed.json",
                 "events__message_top_level.json", "events__app_mention.json"):
        body = fixture(name)
        if "thread_ts" in body["event"]:
            body["event"]["thread_ts"] = thread.ts
        assert (await desk.event(body)).status == 200
    await desk.settle()
    assert await Message.filter(conversation_id=conversation.id).count() == before
    assert len(desk.fake.of("chat.postEphemeral")) == told


async def test_thread_reply_after_handback_takes_over_again(desk: Desk, callback: Any) -> None:
    alice, _ = await agents()
    await desk.say("hi")
    await desk.settle()
    conversation = await Conversation.get(external_key="c1")
    await desk.button(blocks.TAKE_OVER, conversation.id)
    await desk.settle()
    first = await Ticket.get(conversation_id=conversation.id)
    await desk.button(blocks.ALLOW_AI, first.id)
    await desk.settle()
    await desk.thread_reply(first.id, "Actually, one more thing from me")
    await desk.settle()
    await conversation.refresh_from_db()
    assert conversation.state == "human"
    second = await Ticket.get(conversation_id=conversation.id, status__not="closed")
    assert second.id != first.id and second.assignee_id == alice.id  # type: ignore[attr-defined]
    assert callback.for_conversation("c1")[-1]["text"] == "Actually, one more thing from me"
    assert await threads.by_ticket(second.id) is not None


async def test_escalated_ticket_can_be_assigned_and_closed(desk: Desk, callback: Any) -> None:
    alice, _ = await agents()
    await desk.say("escalate please")
    await desk.settle()
    ticket = await Ticket.get(conversation__external_key="c1")
    thread = await threads.by_ticket(ticket.id)
    assert thread is not None
    root = desk.fake.messages[(CHANNEL, thread.ts)]
    assert blocks.ASSIGN_TO_ME in json.dumps(root["blocks"])
    await desk.button(blocks.ASSIGN_TO_ME, ticket.id)
    await desk.settle()
    await ticket.refresh_from_db()
    assert ticket.assignee_id == alice.id  # type: ignore[attr-defined]
    await desk.button(blocks.CLOSE, ticket.id)
    await desk.settle()
    await ticket.refresh_from_db()
    assert ticket.status == "closed"
    conversation = await Conversation.get(id=ticket.conversation_id)  # type: ignore[attr-defined]
    assert conversation.state == "ended"
    root_blocks = desk.fake.messages[(CHANNEL, thread.ts)]["blocks"]
    assert not [b for b in root_blocks if b["type"] == "actions"]


async def test_events_are_acknowledged_before_the_work_is_done(desk: Desk, callback: Any, monkeypatch: Any) -> None:
    await agents()
    conversation, ticket, _ = await desk.take_over("hi")
    gate = asyncio.Event()
    real_reply = SlackIntegration.reply

    async def slow_reply(self: SlackIntegration, *args: Any, **kwargs: Any) -> None:
        await gate.wait()
        await real_reply(self, *args, **kwargs)

    monkeypatch.setattr(SlackIntegration, "reply", slow_reply)
    latencies = []
    for n in range(10):
        started = time.monotonic()
        response = await desk.thread_reply(ticket.id, f"reply {n}")
        latencies.append(time.monotonic() - started)
        assert response.status == 200
    assert max(latencies) < 1.0, latencies
    assert not [m for m in callback.for_conversation("c1") if m["text"].startswith("reply ")]
    gate.set()
    await desk.settle()
    texts = [m["text"] for m in callback.for_conversation("c1") if m["text"].startswith("reply ")]
    assert texts == [f"reply {n}" for n in range(10)]  # in the order they were written


async def test_slack_429_delays_but_loses_no_post(desk: Desk) -> None:
    await agents()
    await desk.say("hi")
    await desk.settle()
    conversation = await Conversation.get(external_key="c1")
    desk.fake.rate_limit("chat.postMessage", times=1, retry_after=1)
    started = time.monotonic()
    await desk.button(blocks.TAKE_OVER, conversation.id)
    await desk.settle()
    ticket = await Ticket.get(conversation_id=conversation.id)
    thread = await threads.by_ticket(ticket.id)
    assert thread is not None and time.monotonic() - started >= 0.95
    roots = [c for c in desk.fake.of("chat.postMessage") if c.args.get("blocks")]
    assert len(roots) == 2 and len([m for m in desk.fake.messages.values() if m.get("blocks")]) == 1
    assert desk.slack.poster.rate_limited == 1


async def test_lost_events_are_repaired_and_nothing_is_posted_twice(desk: Desk, monkeypatch: Any) -> None:
    """Events can be lost (a lagging subscriber, a restart between commit and enqueue): the next
    sync or catch-up posts what is missing, once; syncs racing each other post nothing twice."""
    await agents()
    conversation, ticket, thread = await desk.take_over("hi")
    on_event = desk.slack.mirror.on_event

    async def deaf(event: dict) -> None:  # the mirror misses every event for a while
        return None

    monkeypatch.setattr(desk.slack.mirror, "on_event", deaf)
    await desk.say("sent while Slack was not listening")
    await desk.settle()
    assert not [t for t in desk.thread_texts(thread.ts) if "not listening" in t]

    monkeypatch.setattr(desk.slack.mirror, "on_event", on_event)
    await on_event({"kind": "stream.lagged"})  # what a lagging subscription is told
    await desk.settle()
    assert [t for t in desk.thread_texts(thread.ts) if "not listening" in t] == ["*Sam*: sent while Slack was not listening"]

    # several instances (or a catch-up and a live event) ask for the same sync at once
    await desk.say("one more")
    await asyncio.gather(*(desk.slack.mirror.request_sync(ticket.id) for _ in range(3)), desk.slack.mirror.catch_up())
    await desk.settle()
    texts = desk.thread_texts(thread.ts)
    assert len([t for t in texts if "one more" in t]) == 1
    assert len([t for t in texts if "not listening" in t]) == 1


async def test_slack_replies_are_not_posted_back_even_when_another_instance_mirrors(desk: Desk) -> None:
    await agents()
    conversation, ticket, thread = await desk.take_over("hi")
    await desk.thread_reply(ticket.id, "written in Slack")
    await desk.settle()
    reply = await Message.get(text="written in Slack")
    assert reply.origin == "slack"
    await desk.slack.mirror.catch_up()  # an instance that never saw the reply being written
    await desk.settle()
    assert not [t for t in desk.thread_texts(thread.ts) if "written in Slack" in t]


async def test_a_ticket_whose_creation_was_missed_gets_its_thread_on_catch_up(desk: Desk, monkeypatch: Any) -> None:
    alice, _ = await agents()
    await desk.say("hi")
    await desk.settle()
    conversation = await Conversation.get(external_key="c1")

    async def deaf(event: dict) -> None:  # e.g. the process stopped right after the takeover committed
        return None

    on_event = desk.slack.mirror.on_event
    monkeypatch.setattr(desk.slack.mirror, "on_event", deaf)
    ticket = await ops.takeover(desk.slack.rt, conversation.id, alice)
    await desk.settle()
    assert await threads.by_ticket(ticket.id) is None
    monkeypatch.setattr(desk.slack.mirror, "on_event", on_event)
    assert await desk.slack.mirror.catch_up() == 1
    await desk.settle()
    thread = await threads.by_ticket(ticket.id)
    assert thread is not None
    assert len([c for c in desk.fake.of("chat.postMessage") if c.args.get("blocks")]) == 1
    assert any("Live Chat" in t for t in desk.thread_texts(thread.ts))


async def test_catch_up_refreshes_only_roots_that_show_something_stale(desk: Desk) -> None:
    await agents()
    _, ticket, thread = await desk.take_over("hi")
    updates = len(desk.fake.of("chat.update"))
    await desk.slack.mirror.catch_up()  # e.g. a restart: the root is current, Slack is not called
    await desk.settle()
    assert len(desk.fake.of("chat.update")) == updates
    await Ticket.filter(id=ticket.id).update(subject="Parcel stuck in customs")  # no event: the mirror missed it
    await desk.slack.mirror.catch_up()
    await desk.settle()
    assert len(desk.fake.of("chat.update")) == updates + 1
    assert "Parcel stuck in customs" in json.dumps(desk.fake.messages[(CHANNEL, thread.ts)]["blocks"])
