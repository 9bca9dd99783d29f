"""The composer's help (issue 16, items 3 and 8) in Debian's Chromium (Playwright): canned
responses added on their page and called up with "/" in a reply, filled in for the customer; and
AI compose (draft, polish, translate, undo, a failing model) through the real `openai` client
against the local fake OpenAI server. Nothing reaches the customer until the agent sends.
"""

from __future__ import annotations

from typing import Any

import pytest

from handoff.config import Settings
from handoff.models import Agent, Message
from handoff.runtime import RUNTIME
from tests.conftest import settle
from tests.fakes.openai_server import FakeOpenAI, last_system_prompt, server_error, text
from tests.web import test_browser as shared
from tests.web.test_desk_shift import customer_writes, desk_at, taken_by

pytestmark = pytest.mark.browser

chromium, browser, db_url, server, agents = shared.chromium, shared.browser, shared.db_url, shared.server, shared.agents


@pytest.fixture
async def fake() -> Any:
    async with FakeOpenAI() as openai_server:
        yield openai_server


@pytest.fixture
def settings(settings: Settings, fake: FakeOpenAI) -> Settings:
    """The browser tests' app with a model configured: the fake OpenAI server."""
    return settings.model_copy(update={"openai_api_key": "sk-test-desk", "openai_base_url": fake.base_url,
                                           "bot_model": "fake-model", "compose_timeout": 5.0})


async def test_canned_responses_are_kept_on_their_page_and_expand_in_a_reply(
        server: Any, agents: dict[str, Agent], browser: Any, callback: Any) -> None:
    from playwright.async_api import expect

    ann = await desk_at(browser, server, "ann@example.com", "canned")
    await expect(ann.locator("h1")).to_have_text("Canned responses")
    form = ann.locator("[data-form=add-canned]")
    await form.locator("input[name=short_code]").fill("ship it")
    await form.locator("textarea[name=content]").fill("Hi {{contact.name}}, parcels leave within 24 hours.")
    await form.locator("button[type=submit]").click()
    await expect(form.locator("[data-field=canned-error]")).to_have_text(
        "short_code must be 1 to 50 letters, digits, _, - or . (no spaces)")
    await form.locator("input[name=short_code]").fill("shipping")  # what was typed is kept
    await form.locator("button[type=submit]").click()
    await expect(ann.locator("tr[data-canned] code")).to_have_text("/shipping")
    form = ann.locator("[data-form=add-canned]")
    await form.locator("input[name=short_code]").fill("refund")
    await form.locator("textarea[name=content]").fill("Refunds take five days, {{ contact.first_name | default: 'friend' }}.")
    await form.locator("button[type=submit]").click()
    await expect(ann.locator("tr[data-canned] code")).to_have_text(["/refund", "/shipping"])

    await customer_writes(server, "olga", "where is my parcel?", "Olga Ivanova")
    ticket = await taken_by(server, "olga", agents["Ann"])
    await ann.goto(server.base + f"/desk#ticket/{ticket.id}")
    composer = ann.locator("[data-field=composer]")
    await composer.press_sequentially("/")
    options = ann.locator("[data-field=shortcuts] [role=option]")
    await expect(options).to_have_count(2)
    await composer.press_sequentially("sh")
    await expect(options).to_have_count(1)
    await expect(options.first).to_contain_text("/shipping Hi Olga Ivanova, parcels leave within 24 hours.")
    await composer.press("Enter")
    await expect(composer).to_have_value("Hi Olga Ivanova, parcels leave within 24 hours.")
    await expect(ann.locator("[data-field=shortcuts]")).to_be_hidden()
    assert await Message.filter(text__contains="parcels leave").count() == 0  # nothing sent yet

    # ↓ chooses; a click picks too; Escape closes the list and leaves the text alone.
    await composer.fill("")
    await composer.press_sequentially("/")
    await composer.press("ArrowDown")
    await expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    await composer.press("Escape")
    await expect(ann.locator("[data-field=shortcuts]")).to_be_hidden()
    await expect(composer).to_have_value("/")
    await composer.press_sequentially("r")
    await options.first.click()
    await expect(composer).to_have_value("Refunds take five days, Olga.")

    await composer.press_sequentially(" More soon.")
    await ann.click("[data-action=send]")
    await expect(ann.locator(".timeline .msg").last).to_contain_text("Refunds take five days, Olga. More soon.")
    await settle(server.app[RUNTIME])
    assert [c["text"] for c in callback.for_conversation("olga")][-1] == "Refunds take five days, Olga. More soon."


async def test_ai_compose_drafts_polishes_and_translates_for_the_agent_to_review(
        server: Any, agents: dict[str, Agent], browser: Any, fake: FakeOpenAI) -> None:
    from playwright.async_api import expect

    await customer_writes(server, "pilar", "Hola, ¿dónde está mi pedido? Lo pedí hace una semana y no llega.",
                          "Pilar Gómez")
    ticket = await taken_by(server, "pilar", agents["Ann"])
    ann = await desk_at(browser, server, "ann@example.com", f"ticket/{ticket.id}")
    composer = ann.locator("[data-field=composer]")
    bar = ann.locator("[data-field=compose]")
    await expect(bar).to_be_visible()
    await ann.click("[data-action=mode-note]")
    await expect(bar).to_be_hidden()  # AI compose writes for the customer: not on notes
    await ann.click("[data-action=mode-reply]")

    fake.queue(text("Hola Pilar, tu pedido está en camino y llegará [fecha]."))
    await ann.click("[data-action=compose-draft]")
    await expect(composer).to_have_value("Hola Pilar, tu pedido está en camino y llegará [fecha].")
    await expect(bar.locator("[data-field=compose-status]")).to_have_text("Review before sending.")
    await ann.click("[data-action=compose-undo]")
    await expect(composer).to_have_value("")

    await composer.fill("ur order left warehouse 2day")
    fake.queue(text("Your order left our warehouse today."))
    await ann.click("[data-action=compose-polish]")
    await expect(composer).to_have_value("Your order left our warehouse today.")
    fake.queue(text("Tu pedido salió hoy de nuestro almacén."))
    await expect(ann.locator("[data-action=compose-translate]")).to_have_text("Translate to Spanish")
    await ann.click("[data-action=compose-translate]")
    await expect(composer).to_have_value("Tu pedido salió hoy de nuestro almacén.")
    assert 'into Spanish (language code "es")' in last_system_prompt(fake.requests[-1])

    # A failing model: the error is shown and the agent's text is kept.
    fake.queue(server_error(500), server_error(500))
    await ann.click("[data-action=compose-polish]")
    await expect(ann.locator("[data-field=composer-error]")).to_contain_text(
        "AI compose failed: the AI model could not help: server error (500). Your text is kept.")
    await expect(composer).to_have_value("Tu pedido salió hoy de nuestro almacén.")
    assert len(fake.requests) == 5
    assert await Message.filter(author_kind="agent", notice=None).count() == 0  # nothing was sent
