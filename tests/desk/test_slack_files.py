"""Files agents attach to a Slack thread reply reach the customer, through the real slack-sdk
client, the fake Slack Web API's files.info and private download URL, and real HTTP.

The Slack request is the recorded `events__message_file_share.json` (a `file_share` thread reply
with one full and one partial file object), signed like Slack signs it.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from handoff.config import Settings
from handoff.desk.slack import blocks, threads
from handoff.desk.slack.files import trusted_file_url
from handoff.models import Conversation, Message, Ticket
from tests.desk.test_slack import Desk, agents, desk, fake, fixture  # noqa: F401
from tests.fakes.slack_api import FakeSlack
from tests.channels.test_widget import frames_until, new_session, open_ws
from tests.channels.test_widget import say as widget_say

LABEL = b"\x89PNG\r\n\x1a\n" + b"label" * 50
INVOICE = b"%PDF-1.4 invoice 42"


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    """The conftest settings with a private media folder."""
    return settings.model_copy(update=dict(media_dir=str(tmp_path / "media")))


def share_files(fake: FakeSlack) -> None:
    """The two files of the fixture, known to the fake Slack (the second only through files.info)."""
    fake.add_file("F0LABEL001", name="return-label.png", content=LABEL, mimetype="image/png")
    fake.add_file("F0INVOICE02", name="invoice-42.pdf", content=INVOICE, mimetype="application/pdf")


async def reply_with_files(desk: Desk, ticket_id: int, text: str = "Here is your return label.") -> None:
    thread = await threads.by_ticket(ticket_id)
    assert thread is not None
    body = fixture("events__message_file_share.json")
    ts = f"{time.time():.6f}"
    body["event_id"] = f"Ev{time.monotonic_ns()}"
    body["event"].update(text=text, thread_ts=thread.ts, ts=ts, event_ts=ts, channel=thread.channel)
    assert (await desk.event(body)).status == 200
    await desk.settle()


async def taken_over(desk: Desk, conversation: Conversation) -> Ticket:
    await desk.button(blocks.TAKE_OVER, conversation.id)
    await desk.settle()
    return await Ticket.get(conversation_id=conversation.id)


async def api_customer_ticket(desk: Desk) -> Ticket:
    """Alice's ticket, taken over from Slack, for the api customer `c1`."""
    await agents()
    await desk.say("hello")
    await desk.settle()
    return await taken_over(desk, await Conversation.get(external_key="c1"))


async def test_files_reach_the_widget_customer(desk: Desk) -> None:
    await agents()
    share_files(desk.fake)
    session = await new_session(desk.client)
    ws = await open_ws(desk.client, session["token"])
    await frames_until(ws, lambda f: f["type"] == "ready")
    assert (await widget_say(ws, "client-id-0001", "I need to send the parcel back"))["type"] == "ack"
    await desk.settle()
    ticket = await taken_over(desk, await Conversation.get(channel="widget"))

    await reply_with_files(desk, ticket.id)
    frames = await frames_until(ws, lambda f: f["type"] == "message" and f["message"]["author"] == "agent")
    agent_message = frames[-1]["message"]
    assert agent_message["text"] == "Here is your return label."
    assert [(a["filename"], a["content_type"], a["size"]) for a in agent_message["attachments"]] == [
        ("return-label.png", "image/png", len(LABEL)), ("invoice-42.pdf", "application/pdf", len(INVOICE))]
    for attachment, content in zip(agent_message["attachments"], (LABEL, INVOICE), strict=True):
        assert attachment["url"].startswith(desk.rt.settings.public_url + "/media/")
        served = await desk.client.get(attachment["url"][len(desk.rt.settings.public_url):])
        assert served.status == 200 and await served.read() == content
    # Both files were looked up with files.info and downloaded with the bot token.
    assert sorted(c.args["file"] for c in desk.fake.of("files.info")) == ["F0INVOICE02", "F0LABEL001"]
    assert [d["authorization"] for d in desk.fake.downloads] == [f"Bearer {desk.fake.token}"] * 2
    assert not [t for t in desk.ephemerals("U0ALICE") if "Not sent" in t or "links" in t]
    await ws.close()


async def test_a_channel_without_files_gets_links_and_the_agent_is_told(desk: Desk, callback: Any) -> None:
    share_files(desk.fake)
    ticket = await api_customer_ticket(desk)
    await reply_with_files(desk, ticket.id, text="")
    [sent] = [m for m in callback.for_conversation("c1") if m["kind"] == "agent"]
    lines = sent["text"].splitlines()
    assert [line.split(": ")[0] for line in lines] == ["return-label.png", "invoice-42.pdf"]
    assert all("/media/" in line for line in lines)
    assert any("got links" in t for t in desk.ephemerals("U0ALICE"))


async def test_files_that_cannot_be_copied_are_named_to_the_agent(desk: Desk, callback: Any) -> None:
    share_files(desk.fake)
    desk.fake.fail("files.info", "file_not_found")  # the first lookup: the label
    desk.rt.media.max_bytes = len(INVOICE) - 1
    ticket = await api_customer_ticket(desk)
    await reply_with_files(desk, ticket.id, text="Attaching two files")
    [sent] = [m for m in callback.for_conversation("c1") if m["kind"] == "agent"]
    assert sent["text"] == "Attaching two files"  # the text still goes, without the files
    [told] = [t for t in desk.ephemerals("U0ALICE") if t.startswith("Not sent")]
    assert "return-label.png (Slack said file_not_found)" in told and "F0INVOICE02 (larger than" in told
    assert (await Message.get(text="Attaching two files")).attachments == []


async def test_a_refused_download_is_not_sent_as_a_file(desk: Desk, callback: Any) -> None:
    share_files(desk.fake)
    ticket = await api_customer_ticket(desk)
    # A token the fake Web API still accepts (it compares prefixes) but its file host refuses:
    # like Slack, the download then answers an HTML sign-in page with HTTP 200.
    desk.slack.client.token = desk.fake.token + "-without-files-read"
    await reply_with_files(desk, ticket.id, text="")
    assert len(desk.fake.downloads) == 2
    assert [m for m in callback.for_conversation("c1") if m["kind"] == "agent"] == []
    [told] = [t for t in desk.ephemerals("U0ALICE") if t.startswith("Not sent")]
    assert told.count("files:read") == 2
    assert await Message.filter(author_kind="agent", private=False).count() == 0


async def test_notes_keep_no_files_and_say_so(desk: Desk, callback: Any) -> None:
    share_files(desk.fake)
    ticket = await api_customer_ticket(desk)
    await reply_with_files(desk, ticket.id, text="note: label for the warehouse")
    note = await Message.get(private=True)
    assert note.text == "label for the warehouse" and note.attachments == []
    assert desk.fake.of("files.info") == []
    assert any("internal note" in t for t in desk.ephemerals("U0ALICE"))


def test_the_bot_token_only_goes_to_slack_file_hosts() -> None:
    assert trusted_file_url("https://files.slack.com/files-pri/T1-F1/download/a.png")
    assert not trusted_file_url("http://files.slack.com/files-pri/T1-F1/download/a.png")
    assert not trusted_file_url("https://files.slack.com.evil.example/a.png")
    assert not trusted_file_url("https://docs.google.com/document/d/1")
    assert trusted_file_url("http://127.0.0.1:5000/files-pri/x", "http://127.0.0.1:5000/api/")
    assert not trusted_file_url("http://127.0.0.1:5001/files-pri/x", "http://127.0.0.1:5000/api/")
    assert not trusted_file_url("", "http://127.0.0.1:5000/api/")
