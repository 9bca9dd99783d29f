"""@mentions on the desk (issue 16, item 2), in Debian's Chromium (Playwright): typing "@" in an
internal note offers colleagues and inserts the one picked; the note's colleague hears of it (a
toast, the "Mentions (1)" count), finds it on the Mentions page with a link to its ticket, and
opening it reads it; a reply to the customer offers no completion.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from handoff import transitions as ops
from handoff.models import Agent, Message, Notification
from handoff.runtime import RUNTIME
from tests.conftest import settle
from tests.web import test_browser as shared
from tests.web.test_desk_shift import customer_writes, desk_at, taken_by

pytestmark = pytest.mark.browser


async def _until_unread(agent: Agent, count: int) -> None:
    """Wait (up to the browser tests' timeout) until `agent` has `count` unread notifications."""
    for _ in range(100):
        if await Notification.filter(agent_id=agent.id, read_at=None).count() == count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{agent.name} does not have {count} unread notifications")

chromium, browser, db_url, server, agents = shared.chromium, shared.browser, shared.db_url, shared.server, shared.agents


async def test_a_note_mentions_a_colleague_who_finds_it_under_mentions(
        server: Any, agents: dict[str, Agent], browser: Any) -> None:
    from playwright.async_api import expect

    await customer_writes(server, "olga", "my parcel is late", "Olga Ivanova")
    ticket = await taken_by(server, "olga", agents["Ann"])
    await settle(server.app[RUNTIME])  # the takeover's notice sent: no delivery update re-renders the page mid-typing
    bob = await desk_at(browser, server, "bob@example.com", "conversations")
    ann = await desk_at(browser, server, "ann@example.com", f"ticket/{ticket.id}")
    # The page is settled: the summary, written in the background, re-renders it when it arrives.
    await expect(ann.locator("[data-field=summary]")).to_contain_text("The customer wrote")
    composer = ann.locator("[data-field=composer]")
    suggestions = ann.locator("[data-field=mention-list]")

    # A reply to the customer: "@" offers nobody.
    await composer.type("@B")
    await expect(suggestions).to_be_hidden()
    await composer.fill("")

    await ann.click("[data-action=mode-note]")
    await composer.type("Could @b")
    await expect(suggestions).to_be_visible()
    await expect(suggestions.locator("[role=option]")).to_have_text(["Bob bob@example.com"])  # never Ann herself
    await composer.press("Enter")
    await expect(suggestions).to_be_hidden()
    await expect(composer).to_have_value("Could @Bob ")
    await composer.type("call the carrier?")
    await ann.click("[data-action=send]")
    await expect(ann.locator(".timeline .msg.private").last).to_contain_text("Could @Bob call the carrier?")
    await settle(server.app[RUNTIME])
    note = await Message.get(ticket_id=ticket.id, private=True)
    assert note.mentions == [{"id": agents["Bob"].id, "name": "Bob"}]

    # Bob hears of it, and finds it under Mentions with a link to the ticket.
    await expect(bob.locator(".toast.news", has_text=f"Ann mentioned you on ticket #{ticket.id}")).to_be_visible()
    mentions_link = bob.locator("nav a[data-view=notifications]")
    await expect(mentions_link).to_have_text("Mentions (1)")
    await expect(ann.locator("nav a[data-view=notifications]")).to_have_text("Mentions")
    await mentions_link.click()
    item = bob.locator("[data-notification]")
    await expect(item).to_have_count(1)
    await expect(item).to_have_attribute("data-unread", "true")
    await expect(item).to_contain_text(f"Ann mentioned you on ticket #{ticket.id} · Olga Ivanova")
    await expect(item.locator(".note-text")).to_have_text("Could @Bob call the carrier?")
    await item.locator("a").click()
    await expect(bob).to_have_url(f"{server.base}/desk#ticket/{ticket.id}")
    await expect(bob.locator(".timeline .msg.private").last).to_contain_text("Could @Bob call the carrier?")
    await expect(mentions_link).to_have_text("Mentions")
    await _until_unread(agents["Bob"], 0)

    # While Bob has the ticket open, a mention there is read at once.
    await ops.reply(server.app[RUNTIME], ticket.id, agents["Ann"], "@Bob seen it?", internal=True)
    await expect(bob.locator(".timeline .msg.private").last).to_contain_text("@Bob seen it?")
    await _until_unread(agents["Bob"], 0)
    # Two more while he is elsewhere (from the transition the REST API calls), then "Mark all read".
    await bob.click("nav a[data-view=conversations]")
    for text in ("@Bob one", "@Bob two"):
        await ops.reply(server.app[RUNTIME], ticket.id, agents["Ann"], text, internal=True)
    await expect(mentions_link).to_have_text("Mentions (2)")
    await mentions_link.click()
    await expect(bob.locator("[data-notification][data-unread=true]")).to_have_count(2)
    await bob.click("[data-action=read-all]")
    await expect(mentions_link).to_have_text("Mentions")
    await expect(bob.locator("[data-notification][data-unread=true]")).to_have_count(0)
    assert await Notification.filter(agent_id=agents["Bob"].id, read_at=None).count() == 0
