"""Presence in the desk, in Debian's Chromium (Playwright): an agent says they are away from the
top bar, and a colleague's transfer dialog shows it live — and warns — as it does when the agent
closes their desk and goes offline."""

from __future__ import annotations

from typing import Any

import pytest

from handoff.models import Agent
from tests.web import test_browser as shared
from tests.web.test_desk_shift import customer_writes, desk_at, taken_by

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
