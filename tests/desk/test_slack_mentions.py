"""Slack mentions for @mentions in internal notes (issue 16, item 2): a desk note naming agents
linked to Slack users is mirrored into the ticket's thread with their `<@U…>` mentions (not its
author's, not an unlinked agent's); a note written in Slack that names a colleague leaves them a
desk notification, and is not posted back."""

from __future__ import annotations

from handoff import transitions as ops
from handoff.desk.auth import create_agent
from handoff.desk.slack.mentions import BELL
from handoff.models import Message, Notification
from tests.desk import test_slack
from tests.desk.test_slack import Desk, agents

desk, fake = test_slack.desk, test_slack.fake  # the fixtures of the Slack end-to-end tests


async def test_a_desk_note_mentions_linked_agents_in_the_slack_thread(desk: Desk) -> None:
    alice, bob = await agents()
    bob.slack_user_id = "U0BOB"
    await bob.save()
    carl, _ = await create_agent("Carl", "carl@example.com")  # not linked to Slack
    _, ticket, thread = await desk.take_over("my parcel is late")  # Alice, U0ALICE, from Slack

    await ops.reply(desk.rt, ticket.id, alice, "@Bob @Carl @Alice can one of you call the carrier?", internal=True)
    await desk.settle()
    [line] = [t for t in desk.thread_texts(thread.ts) if "call the carrier" in t]
    assert line.startswith(":memo: *Alice* (internal note): @Bob @Carl @Alice can one of you call the carrier?")
    assert line.endswith(f"\n{BELL} <@U0BOB>")  # Carl has no Slack user; Alice wrote it
    assert await Notification.filter(agent_id=bob.id).count() == 1
    assert await Notification.filter(agent_id=carl.id).count() == 1

    # A note without mentions of linked agents has no bell line.
    await ops.reply(desk.rt, ticket.id, alice, "@Carl only", internal=True)
    await desk.settle()
    [plain] = [t for t in desk.thread_texts(thread.ts) if "only" in t]
    assert BELL not in plain


async def test_a_note_written_in_slack_notifies_on_the_desk_and_is_not_posted_back(desk: Desk) -> None:
    _, bob = await agents()
    _, ticket, thread = await desk.take_over("my parcel is late")
    posted = len(desk.thread_texts(thread.ts))
    # Slack sends a mention as <@U0BOB>; Bob's Slack name is "Bob", which names the agent Bob.
    response = await desk.thread_reply(ticket.id, "note: <@U0BOB> can you check this one?")
    assert response.status == 200
    await desk.settle()
    note = await Message.get(ticket_id=ticket.id, private=True)
    assert note.text == "@Bob can you check this one?" and note.origin == "slack"
    assert note.mentions == [{"id": bob.id, "name": "Bob"}]
    assert await Notification.filter(agent_id=bob.id, message_id=note.id).count() == 1
    assert len(desk.thread_texts(thread.ts)) == posted  # Slack already showed it (and notified Bob)
