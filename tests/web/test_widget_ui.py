"""The widget as a customer uses it, in Debian's Chromium (Playwright): unread badge, remembered
open state and chime; every word in the customer's language, switching live; the length limit
checked before sending; links, `dir="auto"`, Escape and the ⋯ menu's arrow keys; the greeting and
the pre-chat form; and an axe-core accessibility check (no serious or critical violation).

The widget is embedded, as a site would, in a page of another origin (a small local server,
allowed by `HANDOFF_WIDGET_ORIGINS`) with the `data-*` attributes the site sets. Agents act
through the REST API.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from handoff.desk.auth import create_agent
from handoff.models import Contact, Conversation, Message
from handoff.runtime import RUNTIME
from tests.conftest import settle
from tests.web.test_browser import (  # noqa: F401  (fixtures)
    TIMEOUT,
    EchoBot,
    SlowSummarizer,
    bot_lines,
    browser,
    chromium,
    customer_says,
    db_url,
    wait_for_connection,
)

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SPANISH = "Hola, ¿cuándo llega mi pedido a Madrid? Lo compré la semana pasada."


@pytest.fixture
async def site(aiohttp_server: Any) -> Any:
    """The embedding site: `/shop?data-x=y...` is a page with the widget's script tag and those attributes."""

    async def shop(request: web.Request) -> web.Response:
        data = " ".join(f'{name}="{html.escape(value)}"' for name, value in request.query.items() if name.startswith("data-"))
        page = (f'<!doctype html><html lang="en"><head><title>Shop</title></head><body><main><h1>Shop</h1></main>'
                f'<script src="{request.query["widget"]}" {data} async></script></body></html>')
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/shop", shop)
    srv = await aiohttp_server(app)
    srv.base = str(srv.make_url("")).rstrip("/")
    return srv


@pytest.fixture
async def server(aiohttp_server: Any, app_factory: Any, settings: Any, tmp_path: Path, site: Any) -> Any:
    """The whole app, with the deterministic bot, allowing the site's origin."""
    update = dict(media_dir=str(tmp_path / "media"), widget_origins=site.base)
    app = app_factory(settings=settings.model_copy(update=update), bot=EchoBot(), summarizer=SlowSummarizer())
    srv = await aiohttp_server(app)
    srv.base = str(srv.make_url("")).rstrip("/")
    srv.site = site
    yield srv
    await settle(app[RUNTIME])


async def embed(browser: Any, server: Any, locale: str = "en-US", **attrs: str) -> Any:
    """A page of the embedding site with the widget's script tag carrying `attrs` as data attributes."""
    context = await browser.new_context(viewport={"width": 1100, "height": 760}, locale=locale, bypass_csp=True)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    query = {"widget": server.base + "/widget.js", **{"data-" + k.replace("_", "-"): v for k, v in attrs.items()}}
    await page.goto(str(server.site.make_url("/shop").with_query(query)))
    await wait_for_connection(page, "online")
    return page


class Desk:
    """An agent working through the REST API."""

    def __init__(self, base: str, token: str) -> None:
        self.base, self.headers = base, {"Authorization": f"Bearer {token}"}

    async def post(self, path: str, body: Any = None) -> Any:
        async with aiohttp.ClientSession() as http, http.post(self.base + path, json=body, headers=self.headers) as r:
            assert r.status in (200, 201), await r.text()
            return await r.json()

    async def take_over_and_reply(self, text: str) -> int:
        conversation = await Conversation.get(channel="widget")
        ticket = await self.post(f"/api/v1/conversations/{conversation.id}/takeover")
        await self.post(f"/api/v1/tickets/{ticket['id']}/messages", {"text": text})
        return int(ticket["id"])


@pytest.fixture
async def desk(server: Any) -> Desk:
    _agent, token = await create_agent("Ana", "ana@example.com")
    return Desk(server.base, token)


async def test_a_reply_to_a_closed_widget_shows_a_badge_and_chimes_and_the_state_survives_reloads(
    server: Any, browser: Any, desk: Desk
) -> None:
    from playwright.async_api import expect

    customer = await embed(browser, server, sound="on")
    launcher, badge, panel = customer.locator(".hw-launcher"), customer.locator(".hw-badge"), customer.locator(".hw-panel")
    await launcher.click()
    await customer_says(customer, "where is my parcel?")
    await expect(bot_lines(customer)).to_have_count(1)
    await expect(badge).to_be_hidden()  # read while open
    await launcher.click()
    await expect(panel).to_be_hidden()

    await desk.take_over_and_reply("Hi, Ana here: it leaves today.")
    await expect(badge).to_have_text("1")  # notices don't count, the agent's reply does
    await expect(launcher).to_have_attribute("aria-label", "Open chat. New messages: 1")
    assert await customer.evaluate("window.HandoffWidget.chimes") == 1

    await customer.reload()  # closed stays closed, unread stays unread
    await wait_for_connection(customer, "online")
    await expect(panel).to_be_hidden()
    await expect(badge).to_have_text("1")
    await launcher.click()
    await expect(customer.locator(".hw-msg[data-author=agent]")).to_contain_text("it leaves today")
    await expect(badge).to_be_hidden()
    await customer.reload()  # open stays open, and nothing is unread any more
    await wait_for_connection(customer, "online")
    await expect(panel).to_be_visible()
    await launcher.click()
    await expect(badge).to_be_hidden()


async def test_no_chime_unless_the_site_or_the_customer_turns_it_on(server: Any, browser: Any, desk: Desk) -> None:
    from playwright.async_api import expect

    customer = await embed(browser, server)
    await customer.click(".hw-launcher")
    await customer_says(customer, "hello")
    await expect(bot_lines(customer)).to_have_count(1)
    await customer.click(".hw-launcher")
    await desk.take_over_and_reply("first reply")
    await expect(customer.locator(".hw-badge")).to_have_text("1")
    assert await customer.evaluate("window.HandoffWidget.chimes") == 0
    await customer.click(".hw-launcher")
    await customer.click(".hw-menu-button")
    await expect(customer.locator("[data-action=sound]")).to_have_text("Turn sound on")
    await customer.click("[data-action=sound]")
    await customer.click(".hw-launcher")
    ticket = (await Conversation.get(channel="widget").prefetch_related("tickets")).tickets[0]  # type: ignore[attr-defined]
    await desk.post(f"/api/v1/tickets/{ticket.id}/messages", {"text": "second reply"})
    await expect(customer.locator(".hw-badge")).to_have_text("1")
    assert await customer.evaluate("window.HandoffWidget.chimes") == 1


async def test_the_widget_speaks_the_customers_language_and_switches_live(
    server: Any, browser: Any, desk: Desk
) -> None:
    from playwright.async_api import expect

    german = await embed(browser, server, locale="de-DE", open="true")
    await expect(german.locator(".hw-input")).to_have_attribute("placeholder", "Nachricht eingeben…")
    await expect(german.locator(".hw-greeting .hw-text")).to_have_text("Hallo! Wie können wir Ihnen heute helfen?")

    customer = await embed(browser, server, open="true")
    input_, send = customer.locator(".hw-input"), customer.locator(".hw-send")
    await expect(input_).to_have_attribute("placeholder", "Type a message…")
    await expect(send).to_have_text("Send")
    await expect(customer.locator(".hw-status")).to_have_text("online")
    await customer_says(customer, SPANISH)
    # No reload: the words change as soon as the conversation is known to be Spanish.
    await expect(input_).to_have_attribute("placeholder", "Escribe un mensaje…")
    await expect(send).to_have_text("Enviar")
    await expect(customer.locator(".hw-status")).to_have_text("en línea")
    await expect(customer.locator(".hw-panel")).to_have_attribute("lang", "es")
    await expect(bot_lines(customer).first.locator(".hw-author")).to_have_text("Asistente de IA")
    await expect(customer.locator(".hw-greeting .hw-text")).to_have_text("¡Hola! ¿En qué podemos ayudarte hoy?")
    await desk.take_over_and_reply("Hola, soy Ana.")
    await expect(customer.locator(".hw-separator").last).to_have_text("Chat en vivo")
    await expect(customer.locator(".hw-spinner")).to_be_hidden()
    await expect(customer.locator(".hw-msg[data-author=agent]")).to_contain_text("Hola, soy Ana.")


async def test_an_over_long_message_is_kept_and_the_reason_shown_before_sending(server: Any, browser: Any) -> None:
    from playwright.async_api import expect

    customer = await embed(browser, server, locale="es-ES", open="true")
    limit = customer.locator(".hw-limit")
    await customer.fill(".hw-input", "a" * 8001)
    await customer.press(".hw-input", "Enter")
    await expect(limit).to_be_visible()
    await expect(limit).to_contain_text("8001")
    await expect(limit).to_contain_text("el límite es 8000")
    await expect(customer.locator(".hw-input")).to_have_attribute("aria-invalid", "true")
    assert len(await customer.locator(".hw-input").input_value()) == 8001  # the text is still there
    await expect(customer.locator(".hw-msg[data-author=customer]")).to_have_count(0)
    await customer.press(".hw-input", "Backspace")  # at the limit: the reason goes away, and it sends
    await expect(limit).to_be_hidden()
    await customer.press(".hw-input", "Enter")
    await expect(customer.locator(".hw-msg[data-author=customer]")).to_have_count(1)
    await expect(customer.locator(".hw-input")).to_have_value("")
    assert await Message.filter(channel="widget", direction="incoming").count() == 1


async def test_links_are_safe_text_keeps_its_direction_and_the_keyboard_works(server: Any, browser: Any) -> None:
    from playwright.async_api import expect

    customer = await embed(browser, server, open="true")
    await customer_says(customer, "Track it at https://example.com/track?id=1. Or javascript:alert(1) "
                                  "<a href=x>no</a> mailto:help@example.com (see https://example.com/a_(b))")
    line = customer.locator(".hw-msg[data-author=customer] .hw-text")
    links = line.locator("a")
    await expect(links).to_have_count(3)
    assert [await links.nth(i).get_attribute("href") for i in range(3)] == [
        "https://example.com/track?id=1", "mailto:help@example.com", "https://example.com/a_(b)"]
    for i in range(3):
        await expect(links.nth(i)).to_have_attribute("rel", "noopener noreferrer")
        await expect(links.nth(i)).to_have_attribute("target", "_blank")
    await expect(line).to_contain_text("<a href=x>no</a>")  # markup stays text
    await expect(line).to_have_attribute("dir", "auto")
    await customer_says(customer, "مرحبا، أين طلبي؟")
    arabic = customer.locator(".hw-msg[data-author=customer] .hw-text").last
    assert await arabic.evaluate("el => getComputedStyle(el).direction") == "rtl"
    await expect(customer.locator(".hw-time").first).to_be_visible()

    button, menu = customer.locator(".hw-menu-button"), customer.locator(".hw-menu")
    items = customer.locator(".hw-menu [role^=menuitem]")
    await button.focus()
    await customer.keyboard.press("ArrowDown")
    await expect(menu).to_be_visible()
    await expect(button).to_have_attribute("aria-expanded", "true")
    await expect(items.nth(0)).to_be_focused()
    await customer.keyboard.press("ArrowDown")
    await expect(items.nth(1)).to_be_focused()
    await customer.keyboard.press("ArrowDown")  # wraps around
    await expect(items.nth(0)).to_be_focused()
    await customer.keyboard.press("End")
    await expect(items.nth(1)).to_be_focused()
    await customer.keyboard.press("Escape")  # first the menu ...
    await expect(menu).to_be_hidden()
    await expect(button).to_be_focused()
    await expect(customer.locator(".hw-panel")).to_be_visible()
    await customer.keyboard.press("Escape")  # ... then the widget
    await expect(customer.locator(".hw-panel")).to_be_hidden()
    await expect(customer.locator(".hw-launcher")).to_be_focused()
    await customer.keyboard.press("Enter")
    await expect(customer.locator(".hw-panel")).to_be_visible()
    await customer.click(".hw-menu-button")
    await customer.click("[data-action=close]")
    await expect(customer.locator(".hw-panel")).to_be_hidden()


async def test_greeting_from_the_site_and_prechat_answers_stored_on_the_contact(server: Any, browser: Any) -> None:
    from playwright.async_api import expect

    customer = await embed(browser, server, open="true", prechat="name,email", prechat_required="email",
                           greeting="Welcome to Acme!", greeting_fr="Bienvenue chez Acme !")
    await expect(customer.locator(".hw-greeting .hw-text")).to_have_text("Welcome to Acme!")
    form, composer = customer.locator(".hw-prechat"), customer.locator(".hw-composer")
    await expect(form).to_be_visible()
    await expect(composer).to_be_hidden()
    await expect(form.locator("label[for=hw-pc-name]")).to_have_text("Name (optional)")
    await form.locator("button[type=submit]").click()
    await expect(customer.locator("#hw-pc-email-error")).to_have_text("Please fill in this field.")
    await expect(customer.locator("#hw-pc-email")).to_have_attribute("aria-invalid", "true")
    await customer.fill("#hw-pc-email", "ana@")
    await form.locator("button[type=submit]").click()
    await expect(customer.locator("#hw-pc-email-error")).to_have_text("Please enter a valid email address.")
    await customer.fill("#hw-pc-name", "Ana Souza")
    await customer.fill("#hw-pc-email", "ana@example.com")
    await form.locator("button[type=submit]").click()
    await expect(form).to_be_hidden()
    await expect(composer).to_be_visible()
    await customer_says(customer, "Bonjour, où en est ma commande ? Je l'attends depuis lundi.")
    await expect(bot_lines(customer)).to_have_count(1)
    await expect(customer.locator(".hw-greeting .hw-text")).to_have_text("Bienvenue chez Acme !")
    contact = await Contact.get(id=(await Conversation.get(channel="widget")).contact_id)  # type: ignore[attr-defined]
    assert (contact.name, contact.email) == ("Ana Souza", "ana@example.com")
    await customer.reload()  # answered once: not asked again
    await wait_for_connection(customer, "online")
    await expect(composer).to_be_visible()
    await expect(form).to_be_hidden()


async def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations inside the widget (its shadow root included)."""
    await page.add_script_tag(content=AXE.read_text())
    result = await page.evaluate(
        """async () => {
          const r = await axe.run({ include: [["#handoff-widget"]] }, { resultTypes: ["violations"] });
          return r.violations.filter((v) => ["serious", "critical"].includes(v.impact))
            .map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(" ") + ": " + n.failureSummary) }));
        }"""
    )
    return list(result)


async def test_the_widget_passes_axe_closed_open_and_with_its_menu(server: Any, browser: Any) -> None:
    from playwright.async_api import expect

    assert AXE.is_file(), "axe-core is an npm devDependency: run `npm ci`"
    customer = await embed(browser, server)
    await customer.wait_for_function("() => document.querySelector('#handoff-widget')")
    await expect(customer.locator(".hw-launcher")).to_have_attribute("aria-label", "Open chat")
    assert await axe_violations(customer) == [], "closed"
    await customer.click(".hw-launcher")
    await customer_says(customer, "Is https://example.com/returns the right page?")
    await expect(bot_lines(customer)).to_have_count(1)
    violations = await axe_violations(customer)
    assert violations == [], json.dumps(violations, indent=1)
    await customer.click(".hw-menu-button")
    await expect(customer.locator(".hw-menu")).to_be_visible()
    violations = await axe_violations(customer)
    assert violations == [], json.dumps(violations, indent=1)
    await customer.keyboard.press("Escape")
    await customer.fill(".hw-input", "a" * 8001)
    await customer.press(".hw-input", "Enter")
    violations = await axe_violations(customer)
    assert violations == [], json.dumps(violations, indent=1)


async def test_the_prechat_form_passes_axe(server: Any, browser: Any) -> None:
    customer = await embed(browser, server, open="true", prechat="name,email", prechat_required="name,email")
    await customer.locator(".hw-prechat button[type=submit]").click()
    violations = await axe_violations(customer)
    assert violations == [], json.dumps(violations, indent=1)
