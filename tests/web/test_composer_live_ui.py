"""The composer while the ticket page lives (Debian's Chromium, Playwright): a reload of the page
for the same ticket (`stream.resync`, sent into the desk's own stream) keeps the textarea the agent
is typing in, with its focus, caret, mode and open @mention list, and Enter still picks the
colleague; a customer message arriving meanwhile is drawn; another ticket gets its own composer
and draft. And a list opened just after the textarea lost focus (the Note tab clicked, typing
on) stays open.
"""

from __future__ import annotations

from typing import Any

import pytest

from handoff.models import Agent
from handoff.runtime import RUNTIME
from tests.conftest import settle
from tests.web import test_browser as shared
from tests.web.test_browser import PASSWORD, TIMEOUT
from tests.web.test_desk_shift import customer_writes, desk_at, taken_by

pytestmark = pytest.mark.browser

chromium, browser, db_url, server, agents = shared.chromium, shared.browser, shared.db_url, shared.server, shared.agents


async def _desk_with_stream(browser: Any, server: Any, email: str, hash_: str) -> tuple[Any, list[Any]]:
    """A desk page at `hash_` whose stream passes through the test: the list holds the stream's
    route, so `route.send(...)` delivers an event as if the server had sent it."""
    ctx = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await ctx.new_page()
    page.set_default_timeout(TIMEOUT)
    routes: list[Any] = []

    def tap(ws: Any) -> None:
        ws.connect_to_server()
        routes.append(ws)

    await page.route_web_socket("**/api/v1/stream*", tap)
    await page.goto(server.base + "/desk")
    await page.fill("[data-form=login] input[name=email]", email)
    await page.fill("[data-form=login] input[name=password]", PASSWORD)
    await page.click("[data-form=login] button[type=submit]")
    await page.wait_for_selector(".live.on")
    await page.goto(server.base + "/desk#" + hash_)
    return page, routes


async def _redrawn(page: Any, routes: list[Any]) -> None:
    """The stream says the desk missed events it cannot replay: the ticket page is drawn again."""
    from playwright.async_api import expect

    await page.evaluate("document.querySelector('.ticket .subject').dataset.before = 'yes'")
    routes[-1].send('{"kind": "stream.resync"}')
    await expect(page.locator(".ticket .subject")).to_have_count(1)
    await expect(page.locator(".ticket .subject:not([data-before])")).to_be_visible()


async def _caret(page: Any) -> list[Any]:
    return await page.evaluate("""() => { const t = document.querySelector("[data-field=composer]");
      return [document.activeElement === t, t.selectionStart, t.selectionEnd]; }""")


async def test_a_redrawn_ticket_page_keeps_the_composer_being_typed_in(
        server: Any, agents: dict[str, Agent], browser: Any) -> None:
    from playwright.async_api import expect

    await customer_writes(server, "olga", "my parcel is late", "Olga Ivanova")
    ticket = await taken_by(server, "olga", agents["Ann"])
    await customer_writes(server, "pablo", "where is my refund", "Pablo Ruiz")
    other = await taken_by(server, "pablo", agents["Ann"])
    await settle(server.app[RUNTIME])
    ann, routes = await _desk_with_stream(browser, server, "ann@example.com", f"ticket/{ticket.id}")
    await expect(ann.locator("[data-field=summary]")).to_contain_text("The customer wrote")
    composer = ann.locator("[data-field=composer]")
    suggestions = ann.locator("[data-field=mention-list]")

    # A reply with the caret in its middle: the page is drawn again, the agent types on.
    await composer.type("Hello world")
    for _ in range(6):
        await composer.press("ArrowLeft")
    assert await _caret(ann) == [True, 5, 5]
    await _redrawn(ann, routes)
    assert await _caret(ann) == [True, 5, 5]
    await ann.keyboard.type(",")
    await expect(composer).to_have_value("Hello, world")

    # A note with the mention list open: a customer message arrives, the page is drawn again,
    # and Enter picks the colleague highlighted.
    await composer.fill("")
    await ann.click("[data-action=mode-note]")
    await composer.type("Could @b")
    await expect(suggestions).to_be_visible()
    await customer_writes(server, "olga", "any news?")
    await expect(ann.locator(".timeline .msg.customer").last).to_contain_text("any news?")
    await _redrawn(ann, routes)
    assert await _caret(ann) == [True, 8, 8]
    await expect(composer).to_have_value("Could @b")
    await expect(ann.locator("[data-form=composer]")).to_have_attribute("data-mode", "note")
    await expect(suggestions).to_be_visible()
    await expect(suggestions.locator("[role=option][aria-selected=true]")).to_have_text("Bob bob@example.com")
    await ann.keyboard.press("Enter")
    await expect(suggestions).to_be_hidden()
    await expect(composer).to_have_value("Could @Bob ")
    await expect(ann.locator(".timeline .msg.customer").last).to_contain_text("any news?")  # the page is current
    await ann.keyboard.type("call the carrier?")
    await ann.click("[data-action=send]")
    await expect(ann.locator(".timeline .msg.private").last).to_contain_text("Could @Bob call the carrier?")
    await expect(composer).to_have_value("")
    await expect(ann.locator("[data-form=composer]")).to_have_attribute("data-mode", "reply")

    # Another ticket: a composer of its own, with that ticket's draft; back again, this one's.
    await composer.type("draft for Olga")
    await ann.evaluate(f"localStorage.setItem('handoff.draft.{other.id}', 'draft for Pablo')")
    await ann.goto(f"{server.base}/desk#ticket/{other.id}")
    await expect(ann.locator(f".ticket[data-ticket='{other.id}'] [data-field=composer]")).to_have_value("draft for Pablo")
    await expect(ann.locator("[data-field=composer]")).to_have_count(1)
    await ann.goto(f"{server.base}/desk#ticket/{ticket.id}")
    await expect(ann.locator(f".ticket[data-ticket='{ticket.id}'] [data-field=composer]")).to_have_value("draft for Olga")
    await expect(ann.locator("[data-form=composer]")).to_have_attribute("data-mode", "reply")


async def test_a_mention_list_opened_right_after_the_note_tab_stays_open(
        server: Any, agents: dict[str, Agent], browser: Any) -> None:
    from playwright.async_api import expect

    await customer_writes(server, "olga", "my parcel is late", "Olga Ivanova")
    ticket = await taken_by(server, "olga", agents["Ann"])
    await settle(server.app[RUNTIME])
    ann = await desk_at(browser, server, "ann@example.com", f"ticket/{ticket.id}")
    composer = ann.locator("[data-field=composer]")
    suggestions = ann.locator("[data-field=mention-list]")

    await composer.click()
    await ann.click("[data-action=mode-note]")  # the textarea loses focus…
    await composer.fill("Could @b")  # …and has it back, with the list open, well within 100 ms
    await expect(suggestions).to_be_visible()
    await ann.wait_for_timeout(300)  # past the blur's delayed close
    await expect(suggestions).to_be_visible()
    await composer.press("Enter")
    await expect(composer).to_have_value("Could @Bob ")
