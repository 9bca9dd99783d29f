"""The Slack mirror honours a customer's unsend and edit, end to end on SQLite and PostgreSQL.

Customers write on Messenger and Instagram through signed webhooks (the recorded fixtures in
webhooks/messenger/ and webhooks/instagram/, against the fake Graph API); their messages are
mirrored into the ticket's thread in the fake Slack, whose recorded calls show what Slack was sent.
An unsent message's post must end up reading "This message was deleted by the customer" and no
request to Slack after the unsend may carry its text or files; an edited one shows its new text.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from handoff.config import Settings
from handoff.desk.slack import blocks, threads
from handoff.desk.slack.poster import Poster
from handoff.lease import Lease
from handoff.models import Conversation, KeyValue, Message, Ticket
from tests.desk import test_slack
from tests.conftest import settle
from tests.desk.test_slack import CHANNEL, Desk, agents
from tests.fakes.graph_api import FakeGraph
from tests.fakes.slack_api import FakeSlack
from tests.test_changes import CHANNELS, MESSENGER_MID, SECRET, TOKEN, VERIFY, fixture

desk, fake = test_slack.desk, test_slack.fake  # the fixtures of the Slack end-to-end tests

SUNDAY = "Hello, is the store open on Sunday?"  # webhooks/messenger/message__text.json
SATURDAY = "Hello, is the store open on Saturday?"  # webhooks/messenger/message_edit__text.json
DELETED_LINE = "_This message was deleted by the customer_"


@pytest.fixture
async def graph() -> Any:
    async with FakeGraph(token=TOKEN) as server:
        yield server


@pytest.fixture
def settings(settings: Settings, graph: FakeGraph) -> Settings:
    """Messenger and Instagram on, the Graph API faked (Slack is added by the `desk` fixture)."""
    return settings.model_copy(update=dict(meta_app_secret=SECRET, meta_verify_token=VERIFY,
                               messenger_page_token=TOKEN, instagram_access_token=TOKEN,
                               meta_graph_base=graph.url + "/v21.0"))


async def meta(desk: Desk, channel: str, body: bytes) -> None:
    """POST a webhook signed as Meta signs it; Meta is answered 200."""
    signer = CHANNELS[channel](app_secret=SECRET, verify_token=VERIFY, token=TOKEN, graph_base="")
    response = await desk.client.post(f"/webhooks/{channel}", data=body, headers=signer.sign(body))
    assert response.status == 200, await response.text()


async def taken_over(desk: Desk, channel: str, first: bytes) -> threads.SlackThread:
    """A customer writes `first` on `channel`, Alice takes the conversation over in Slack: its thread."""
    await agents()
    await meta(desk, channel, first)
    await desk.settle()
    conversation = await Conversation.get(channel=channel)
    await desk.button(blocks.TAKE_OVER, conversation.id)
    await desk.settle()
    thread = await threads.by_ticket((await Ticket.get(conversation_id=conversation.id)).id)
    assert thread is not None
    return thread


async def messenger_thread(desk: Desk) -> threads.SlackThread:
    """A Messenger customer's ticket, taken over after a first hello."""
    return await taken_over(desk, "messenger", fixture("messenger", "message__text", (MESSENGER_MID, "m_first0001"),
                                                       (SUNDAY, "Hi, I need help with an order")))


async def mirrored(desk: Desk) -> tuple[threads.SlackThread, dict[str, Any], str]:
    """The thread, the post of the customer's question about Sunday in it, and the post's "*Name*" prefix."""
    thread = await messenger_thread(desk)
    await meta(desk, "messenger", fixture("messenger", "message__text"))
    await desk.settle()
    [post] = await posted(desk, thread, SUNDAY)
    customer = post["text"].split(":")[0]
    assert post["text"] == f"{customer}: {SUNDAY}"
    return thread, post, customer


async def queued(desk: Desk, ops: list[str]) -> None:
    """Wait until the stopped poster holds jobs of exactly these ops (the hub is followed in a task)."""
    for _ in range(500):
        await settle(desk.rt)
        if [job["op"] for job in await desk.slack.poster.pending()] == ops:
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"jobs pending: {await desk.slack.poster.pending()}")


def restarted_poster(desk: Desk) -> None:
    """The next process's poster: nothing but what is stored carries over."""
    desk.slack.poster = Poster(desk.slack.mirror.perform, interval=0.01, lease=Lease("slack-poster"))
    desk.slack.poster.start()


def posts_of(fake: FakeSlack, thread: threads.SlackThread, part: str) -> list[dict[str, Any]]:
    """The thread posts (chat.postMessage answers as the fake stores them) whose text contains `part`."""
    return [m for m in fake.messages.values() if m.get("thread_ts") == thread.ts and part in m["text"]]


async def changed(desk: Desk, ts: str, was: str) -> str:
    """The text of the post `ts` once it no longer reads `was` (the hub is followed in a task, so a
    change reaches Slack a moment after its webhook is answered)."""
    for _ in range(200):
        await desk.settle()
        text = desk.fake.messages[(CHANNEL, ts)]["text"]
        if text != was:
            return text
        await asyncio.sleep(0.02)
    raise AssertionError(f"the post {ts} still reads {was!r}")


async def posted(desk: Desk, thread: threads.SlackThread, part: str) -> list[dict[str, Any]]:
    """The thread posts containing `part`, once there is one (see `changed`)."""
    for _ in range(200):
        await desk.settle()
        if posts_of(desk.fake, thread, part):
            break
        await asyncio.sleep(0.02)
    return posts_of(desk.fake, thread, part)


def carrying(fake: FakeSlack, since: int, *parts: str) -> list[Any]:
    """Slack calls made after the first `since` whose arguments contain any of `parts`."""
    return [c for c in fake.calls[since:] if any(p in json.dumps(c.args) for p in parts)]


async def test_an_unsent_message_is_erased_from_its_thread_post(desk: Desk) -> None:
    thread, post, customer = await mirrored(desk)
    before = len(desk.fake.calls)

    await meta(desk, "messenger", fixture("messenger", "message__deleted"))
    assert await changed(desk, post["ts"], post["text"]) == f"{customer}: {DELETED_LINE}"
    [update] = [c for c in desk.fake.of("chat.update") if c.args["ts"] == post["ts"]]
    assert update.args["text"] == f"{customer}: {DELETED_LINE}"
    assert (update.args["blocks"], update.args["attachments"]) == ([], [])  # nothing Slack kept of the post
    assert carrying(desk.fake, before, "Sunday") == []

    message = await Message.get(provider_id=MESSENGER_MID)
    record = await KeyValue.get(scope=threads.MIRRORED_SCOPE, key=str(message.id))
    assert record.value == {"channel": CHANNEL, "ts": post["ts"], "shown": "deleted"}

    # later syncs and a catch-up neither update the post again nor post the message anew
    await meta(desk, "messenger", fixture("messenger", "message__deleted"))  # Meta's retry
    await meta(desk, "messenger", fixture("messenger", "message__text", (MESSENGER_MID, "m_after0001"),
                                          (SUNDAY, "Still there?")))
    await desk.slack.mirror.catch_up()
    assert len(await posted(desk, thread, "Still there?")) == 1
    assert len([c for c in desk.fake.of("chat.update") if c.args["ts"] == post["ts"]]) == 1
    assert len(posts_of(desk.fake, thread, DELETED_LINE)) == 1
    assert carrying(desk.fake, before, "Sunday") == []


async def test_an_edited_message_shows_its_new_text_then_an_unsend_erases_every_version(desk: Desk) -> None:
    thread, post, customer = await mirrored(desk)

    await meta(desk, "messenger", fixture("messenger", "message_edit__text"))
    assert await changed(desk, post["ts"], post["text"]) == f"{customer}: {SATURDAY} _(edited)_"

    # a second edit (Meta allows several) moves the post on again
    await meta(desk, "messenger", fixture("messenger", "message_edit__text", (SATURDAY, "Open on Monday?"),
                                          ('"num_edit": 1', '"num_edit": 2')))
    shown = await changed(desk, post["ts"], f"{customer}: {SATURDAY} _(edited)_")
    assert shown == f"{customer}: Open on Monday? _(edited)_"

    before = len(desk.fake.calls)
    await meta(desk, "messenger", fixture("messenger", "message__deleted"))
    assert await changed(desk, post["ts"], shown) == f"{customer}: {DELETED_LINE}"
    assert carrying(desk.fake, before, "Sunday", "Saturday", "Monday") == []
    assert len([c for c in desk.fake.of("chat.update") if c.args["ts"] == post["ts"]]) == 3


async def test_an_unsent_image_leaves_no_link_in_slack(desk: Desk) -> None:
    thread = await taken_over(desk, "instagram", fixture("instagram", "message__text"))
    mid = "aWdfZAG1faXRlbTox_del0001"  # the message webhooks/instagram/message__deleted.json unsends
    await meta(desk, "instagram", fixture("instagram", "message__image", ("aWdfZAG1faXRlbTox_image0001", mid)))
    await desk.settle()
    [post] = await posted(desk, thread, "asset_id=1790")
    before = len(desk.fake.calls)

    await meta(desk, "instagram", fixture("instagram", "message__deleted"))
    assert (await changed(desk, post["ts"], post["text"])).endswith(f": {DELETED_LINE}")
    assert carrying(desk.fake, before, "asset_id", "lookaside") == []


async def test_a_message_unsent_before_it_was_mirrored_is_never_posted_with_its_text(desk: Desk) -> None:
    """The poster is stopped (as by a restart) while the message arrives and is unsent: the sync
    that runs afterwards reads the message as it is now."""
    thread = await messenger_thread(desk)
    before = len(desk.fake.calls)
    await desk.slack.poster.close()
    await meta(desk, "messenger", fixture("messenger", "message__text"))
    await meta(desk, "messenger", fixture("messenger", "message__deleted"))
    await queued(desk, ["sync", "change"])  # the jobs wait, stored
    assert carrying(desk.fake, before, "Sunday") == []

    restarted_poster(desk)
    await desk.settle()
    [post] = posts_of(desk.fake, thread, DELETED_LINE)
    assert post["text"].endswith(f": {DELETED_LINE}")
    assert carrying(desk.fake, before, "Sunday") == []
    assert [c for c in desk.fake.of("chat.update") if c.args["ts"] == post["ts"]] == []


async def test_an_update_waiting_at_a_restart_is_made_once_by_the_next_process(desk: Desk) -> None:
    thread, post, _ = await mirrored(desk)

    await desk.slack.poster.close()  # the process stops right after the unsend is stored
    await meta(desk, "messenger", fixture("messenger", "message__deleted"))
    await queued(desk, ["change"])
    assert [c for c in desk.fake.of("chat.update") if c.args["ts"] == post["ts"]] == []

    restarted_poster(desk)
    await desk.settle()
    await desk.slack.mirror.catch_up()  # what the next process does on start as well
    await desk.settle()
    [update] = [c for c in desk.fake.of("chat.update") if c.args["ts"] == post["ts"]]
    assert update.args["text"].endswith(f": {DELETED_LINE}")
    assert len([c for c in desk.fake.of("chat.postMessage") if SUNDAY in c.args.get("text", "")]) == 1
    assert posts_of(desk.fake, thread, SUNDAY) == []


async def test_an_unsend_whose_event_was_lost_is_honoured_by_the_catch_up(desk: Desk, monkeypatch: Any) -> None:
    thread, post, _ = await mirrored(desk)
    on_event = desk.slack.mirror.on_event

    async def deaf(event: dict) -> None:  # the process stopped between the commit and the live event
        return None

    monkeypatch.setattr(desk.slack.mirror, "on_event", deaf)
    await meta(desk, "messenger", fixture("messenger", "message__deleted"))
    await desk.settle()
    assert desk.fake.messages[(CHANNEL, post["ts"])]["text"].endswith(SUNDAY)

    monkeypatch.setattr(desk.slack.mirror, "on_event", on_event)
    await desk.slack.mirror.catch_up()
    assert (await changed(desk, post["ts"], post["text"])).endswith(f": {DELETED_LINE}")


async def test_a_post_deleted_in_slack_does_not_hold_the_thread_back(desk: Desk) -> None:
    """Someone deleted the mirrored post in Slack: chat.update answers message_not_found, the
    change is recorded as done and the thread goes on."""
    thread, post, _ = await mirrored(desk)
    del desk.fake.messages[(CHANNEL, post["ts"])]
    await meta(desk, "messenger", fixture("messenger", "message__deleted"))
    await meta(desk, "messenger", fixture("messenger", "message__text", (MESSENGER_MID, "m_after0001"),
                                          (SUNDAY, "Anyone?")))
    assert len(await posted(desk, thread, "Anyone?")) == 1  # after the unsend's job, which is queued first
    message = await Message.get(provider_id=MESSENGER_MID)
    assert (await KeyValue.get(scope=threads.MIRRORED_SCOPE, key=str(message.id))).value["shown"] == "deleted"
    await desk.slack.mirror.catch_up()
    await desk.settle()
    assert len([c for c in desk.fake.of("chat.update") if c.args["ts"] == post["ts"]]) == 1


async def test_a_message_from_before_the_ticket_is_erased_from_the_conversation_so_far(desk: Desk) -> None:
    thread = await messenger_thread(desk)  # its first message, "Hi, I need help with an order", came before the ticket
    [history] = await posted(desk, thread, "*Conversation so far*")
    customer = history["text"].splitlines()[1].split(":")[0]
    assert f"{customer}: Hi, I need help with an order" in history["text"].splitlines()
    bot_lines = [line for line in history["text"].splitlines() if line.startswith("*AI*: ")]  # the bot's own words

    await meta(desk, "messenger", fixture("messenger", "message_edit__text", (MESSENGER_MID, "m_first0001"),
                                          (SATURDAY, "Hi, I need help with a return")))
    edited = await changed(desk, history["ts"], history["text"])
    assert edited.splitlines() == [
        "*Conversation so far*", f"{customer}: Hi, I need help with a return _(edited)_", *bot_lines]
    before = len(desk.fake.calls)

    await meta(desk, "messenger", fixture("messenger", "message__deleted", (MESSENGER_MID, "m_first0001")))
    assert (await changed(desk, history["ts"], edited)).splitlines() == [
        "*Conversation so far*", f"{customer}: {DELETED_LINE}", *bot_lines]
    assert len([c for c in desk.fake.of("chat.update") if c.args["ts"] == history["ts"]]) == 2
    assert carrying(desk.fake, before, "help with a return") == []
    await desk.slack.mirror.catch_up()
    await desk.settle()
    assert len([c for c in desk.fake.of("chat.update") if c.args["ts"] == history["ts"]]) == 2


def test_thread_lines_of_changed_messages() -> None:
    deleted = {"direction": "incoming", "text": "", "attachments": [{"url": "https://cdn.example/a.png"}],
               "deleted": True, "edited_at": None}
    assert blocks.thread_line(deleted, "Dana") == f"*Dana*: {DELETED_LINE}"
    edited = {"direction": "incoming", "text": "open <today>?", "attachments": [], "deleted": False,
              "edited_at": "2026-11-30T22:00:00Z"}
    assert blocks.thread_line(edited, "Dana") == "*Dana*: open &lt;today&gt;? _(edited)_"
