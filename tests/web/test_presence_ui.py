"""Presence in the desk, in Debian's Chromium (Playwright): an agent says they are away from the
top bar, and a colleague's transfer dialog shows it live — and warns — as it does when the agent
closes their desk and goes offline."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from handoff import presence
from handoff.models import Agent
from tests.web import test_browser as shared
from tests.web.test_desk_shift import _desk_in, customer_writes, desk_at, taken_by

pytestmark = pytest.mark.browser

chromium, browser, db_url, server, agents = shared.chromium, shared.browser, shared.db_url, shared.server, shared.agents


async def test_the_transfer_dialog_shows_presence_live_and_warns(server: Any, agents: dict[str, Agent],
                                                                 browser: Any) -> None:
    from playwright.async_api import expect

    await customer_writes(server, "rosa", "my order never came", "Rosa")
    ticket = await taken_by(server, "rosa", agents["Ann"])
    bob = await desk_at(browser, server, "bob@example.com", "conversations")
    toggle = bob.locator("[data-action=presence]")
    await expect(toggle).to_have_text("Online")
    ann = await desk_at(browser, server, "ann@example.com", f"ticket/{ticket.id}")
    await ann.click("[data-action=transfer]")
    option = ann.locator(f"[data-field=transfer-agent] option[value='{agents['Bob'].id}']")
    warning = ann.locator("[data-field=transfer-warning]")
    await expect(option).to_have_text("Bob")
    await expect(option).to_have_attribute("data-presence", "online")
    await expect(warning).to_be_hidden()

    await toggle.click()  # Bob steps away
    await expect(toggle).to_have_text("Away")
    await expect(option).to_have_text("Bob (away)")
    await expect(warning).to_be_visible()
    await expect(warning).to_contain_text("Bob is away")

    await bob.context.close()  # Bob's desk closes: he is offline
    await expect(option).to_have_text("Bob (offline)")
    await expect(warning).to_contain_text("Bob is offline")
    await ann.click("[data-action=transfer-confirm]")  # a warning, not a refusal
    await expect(ann.locator(".toast", has_text="Transferred to Bob")).to_be_visible()


async def test_away_is_kept_across_a_reload(server: Any, agents: dict[str, Agent], browser: Any) -> None:
    from playwright.async_api import expect

    bob = await desk_at(browser, server, "bob@example.com", "conversations")
    await bob.click("[data-action=presence]")
    await expect(bob.locator("[data-action=presence]")).to_have_attribute("data-presence", "away")
    await bob.reload()
    await expect(bob.locator("[data-action=presence]")).to_have_text("Away")


async def test_a_late_directory_answer_does_not_undo_a_stated_away(server: Any, agents: dict[str, Agent],
                                                                   browser: Any) -> None:
    """The desk reads its own presence once its stream is open: asked earlier, while no desk of
    the agent's is connected, the server counts them offline, and that answer arriving after the
    stream's live `agent.presence` (away) would show "Online" over a stated "Away"."""
    from playwright.async_api import expect

    bob = await desk_at(browser, server, "bob@example.com", "conversations")
    await bob.click("[data-action=presence]")
    await expect(bob.locator("[data-action=presence]")).to_have_attribute("data-presence", "away")
    await bob.context.close()
    while (await presence.presence_of([agents["Bob"].id]))[agents["Bob"].id] != presence.Presence.OFFLINE:
        await asyncio.sleep(0.05)
    delivered = asyncio.Event()

    async def late(route: Any) -> None:  # answered at once, delivered later (a slow link)
        response = await route.fetch()
        await asyncio.sleep(1.5)
        await route.fulfill(response=response)
        delivered.set()

    async def slow_stream(ws: Any) -> None:  # the stream reaches the server half a second late
        await asyncio.sleep(0.5)
        ws.connect_to_server()

    page = await _desk_in(browser, server, "bob@example.com", {},
                          routes={"**/api/v1/agents": late, "**/api/v1/stream*": slow_stream})
    await asyncio.wait_for(delivered.wait(), 10)
    await page.wait_for_timeout(300)  # the page has handled the late answer
    await expect(page.locator("[data-action=presence]")).to_have_text("Away")
