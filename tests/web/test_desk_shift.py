"""A desk agents can work a shift in (issue 15, items 1-7), in Debian's Chromium (Playwright):
unread counts, toasts, title and browser notifications; list rows and read-only conversations;
the live status badge; the rules for a colleague's ticket with their confirmation; the composer's
mode; a failed send and drafts across reloads; the desk at 375 px; and axe-core's accessibility
check of the desk's main views (no serious or critical violation).

Customers write through the signed api channel (real webhooks); takeovers go through the desk or
`handoff.transitions`, as the REST API does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from handoff import transitions as ops
from handoff.channels.api import sign
from handoff.models import Agent, Contact, Conversation, Ticket
from handoff.runtime import RUNTIME
from tests.conftest import API_SECRET, api_body, settle
from tests.web import test_browser as shared
from tests.web.test_browser import PASSWORD, TIMEOUT

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"

# The browser tests' fixtures (Debian's Chromium, the app on a real port with a deterministic bot,
# agents Ann and Bob), shared with tests/web/test_browser.py.
chromium, browser, db_url, server, agents = shared.chromium, shared.browser, shared.db_url, shared.server, shared.agents


async def customer_writes(server: Any, key: str, text: str, name: str | None = None) -> None:
    """A customer message on the api channel (conversation and contact `key`), committed and answered."""
    body = api_body(text, conversation=key, contact=key, name=name or key.title())
    async with aiohttp.ClientSession() as http, http.post(
            server.base + "/webhooks/api", data=body, headers={"X-Handoff-Signature": sign(API_SECRET, body)}) as r:
        assert r.status == 202
    await settle(server.app[RUNTIME])


async def taken_by(server: Any, key: str, agent: Agent) -> Ticket:
    """The api conversation `key` taken over by `agent` (the transition the desk's button calls)."""
    conversation = await Conversation.get(external_key=key)
    ticket = await ops.takeover(server.app[RUNTIME], conversation.id, agent)
    await settle(server.app[RUNTIME])
    return ticket


async def desk_at(browser: Any, server: Any, email: str, hash_: str, **context: Any) -> Any:
    page = await _desk_in(browser, server, email, context or {"viewport": {"width": 1280, "height": 800}})
    await page.goto(server.base + "/desk#" + hash_)
    return page


async def _desk_in(browser: Any, server: Any, email: str, context: dict[str, Any],
                   routes: dict[str, Any] | None = None) -> Any:
    """A page of a new browser context signed in as `email`, its stream open; `routes` are
    Playwright route handlers by URL glob (the stream's, `**/api/v1/stream*`, a WebSocket route),
    in place before the first request."""
    ctx = await browser.new_context(**context)
    for url, handler in (routes or {}).items():
        await (ctx.route_web_socket if url.endswith("/stream*") else ctx.route)(url, handler)
    page = await ctx.new_page()
    page.set_default_timeout(TIMEOUT)
    await page.goto(server.base + "/desk")
    await page.fill("[data-form=login] input[name=email]", email)
    await page.fill("[data-form=login] input[name=password]", PASSWORD)
    await page.click("[data-form=login] button[type=submit]")
    await page.wait_for_selector(".live.on")
    return page


async def test_new_work_shows_in_rows_nav_title_toast_and_a_browser_notification(
        server: Any, agents: dict[str, Agent], browser: Any) -> None:
    from playwright.async_api import expect

    await customer_writes(server, "olga", "first question", "Olga Ivanova")
    await customer_writes(server, "pablo", "second question", "Pablo Ruiz")
    olga = await taken_by(server, "olga", agents["Ann"])
    pablo = await taken_by(server, "pablo", agents["Ann"])
    ann = await desk_at(browser, server, "ann@example.com", "account",
                        viewport={"width": 1280, "height": 800}, permissions=["notifications"])
    # A spy around the real Notification constructor: which notifications the page raised.
    await ann.evaluate("""() => { const Real = window.Notification; window.__notes = [];
        window.Notification = class extends Real { constructor(t, o) { super(t, o); window.__notes.push(t); } }; }""")
    await ann.click("[data-action=notifications]")
    await expect(ann.locator("[data-action=notifications]")).to_have_text("Notifications on")

    await customer_writes(server, "olga", "hello? anyone there?")
    await expect(ann.locator(".toast.news")).to_contain_text(f"Olga Ivanova wrote on your ticket #{olga.id}")
    await expect(ann.locator("nav a[data-view='tickets/mine']")).to_have_text("My tickets (1)")
    await expect(ann).to_have_title("(1) handoff desk")
    # The desk notifies through the browser when its tab is not in front.
    await ann.evaluate("() => { Object.defineProperty(document, 'hidden', {value: true, configurable: true}); }")
    await customer_writes(server, "olga", "still waiting")
    await expect(ann).to_have_title("(2) handoff desk")
    assert await ann.evaluate("window.__notes") == [f"Olga Ivanova wrote on your ticket #{olga.id}"]
    await ann.evaluate("() => { delete document.hidden; }")

    # My tickets: newest activity first, with the unread count; opening the ticket reads it.
    await ann.goto(server.base + "/desk#tickets/mine")
    rows = ann.locator("tr[data-ticket]")
    await expect(rows).to_have_count(2)
    assert await rows.evaluate_all("rows => rows.map(r => Number(r.dataset.ticket))") == [olga.id, pablo.id]
    await expect(rows.first.locator("[data-field=unread]")).to_have_text("2")
    await expect(rows.first.locator("[data-field=last-message]")).to_contain_text("Customer: still waiting")
    await customer_writes(server, "pablo", "me too")
    await expect(rows.first).to_have_attribute("data-ticket", str(pablo.id))  # the list follows activity live
    await ann.click(f"tr[data-ticket='{olga.id}'] a")
    await expect(ann.locator(".timeline .msg.customer").last).to_contain_text("still waiting")
    await expect(ann.locator("nav a[data-view='tickets/mine']")).to_have_text("My tickets (1)")  # Pablo's
    await expect(ann).to_have_title("(1) handoff desk")
    # A message on the ticket shown is read at once, and raises no toast.
    toasts = await ann.locator(".toast.news").count()
    await customer_writes(server, "olga", "ok I see you")
    await expect(ann.locator(".timeline .msg.customer").last).to_contain_text("ok I see you")
    await expect(ann.locator("nav a[data-view='tickets/mine']")).to_have_text("My tickets (1)")
    assert await ann.locator(".toast.news").count() <= toasts

    # Bob hears of a new unassigned ticket, and of a ticket transferred to him; Ann of neither.
    bob = await desk_at(browser, server, "bob@example.com", "conversations")
    rt = server.app[RUNTIME]
    rt.settings = rt.settings.model_copy(update={"auto_assign": False})  # unassigned: not routed to Ann or Bob
    await customer_writes(server, "quinn", "escalate me please", "Quinn")
    conversation = await Conversation.get(external_key="quinn")
    queued = await ops.escalate(server.app[RUNTIME], conversation.id, "asked for a person")
    assert queued is not None
    await expect(bob.locator(".toast.news", has_text=f"New unassigned ticket #{queued.id}")).to_be_visible()
    await ops.transfer(server.app[RUNTIME], pablo.id, agents["Ann"], agents["Bob"].id, "yours")
    await expect(bob.locator(".toast.news", has_text=f"Ann transferred ticket #{pablo.id} to you")).to_be_visible()
    await expect(bob.locator("nav a[data-view='tickets/mine']")).to_have_text("My tickets (1)")  # "me too"
    assert await ann.locator(".toast.news", has_text="transferred").count() == 0


async def test_rows_name_the_customer_and_any_conversation_opens_read_only(
        server: Any, agents: dict[str, Agent], browser: Any) -> None:
    from playwright.async_api import expect

    await customer_writes(server, "dana", "¿Dónde está mi pedido? Lo pedí hace una semana.", "Dana Pérez")
    contact = await Contact.create(name=None, email=None)
    ended = await Conversation.create(contact=contact, channel="whatsapp", external_key="old",
                                      contact_external_id="whatsapp:+34600000001", state="ended", language="en")
    ann = await desk_at(browser, server, "ann@example.com", "conversations")
    dana = ann.locator("tr[data-state=bot]")
    await expect(dana.locator("strong")).to_have_text("Dana Pérez")
    await expect(dana.locator("[data-field=last-message]")).to_contain_text("AI: Bot here. You said: ¿Dónde")
    await expect(dana.locator("[data-field=language]")).to_have_text("es")
    await expect(dana.locator("[data-field=answers]")).to_have_text("AI")
    await expect(dana.locator(".badge.channel")).to_have_text("api")
    old = ann.locator(f"tr[data-conversation='{ended.id}']")
    await expect(old.locator("strong")).to_have_text("whatsapp:+34600000001")  # the best identifier
    await expect(old.locator(".badge.ended")).to_have_text("Ended")

    await old.locator("[data-action=open-conversation]").click()
    await expect(ann.locator("[data-field=read-only]")).to_contain_text("has ended")
    await expect(ann.locator("[data-action=takeover]")).to_have_count(0)
    await expect(ann.locator("[data-form=composer]")).to_have_count(0)

    await ann.goto(server.base + "/desk#conversations")
    await dana.locator("[data-action=open-conversation]").click()
    await expect(ann.locator(".timeline .msg.customer")).to_contain_text("¿Dónde está mi pedido?")
    await expect(ann.locator("[data-field=read-only]")).to_contain_text("the AI is answering")
    await customer_writes(server, "dana", "¿Hola?")
    await expect(ann.locator(".timeline .msg.customer").last).to_contain_text("¿Hola?")  # live while read-only
    await ann.click("[data-action=takeover]")
    await ann.wait_for_url("**/desk#ticket/*")
    await expect(ann.locator("[data-field=assignee]")).to_contain_text("Ann")


async def test_the_status_badge_follows_the_customer_live(server: Any, agents: dict[str, Agent], browser: Any) -> None:
    from playwright.async_api import expect

    await customer_writes(server, "ema", "my parcel is late", "Ema")
    ticket = await taken_by(server, "ema", agents["Ann"])
    ann = await desk_at(browser, server, "ann@example.com", f"ticket/{ticket.id}")
    status = ann.locator("[data-field=status]")
    await expect(status).to_have_text("On you")
    await expect(ann.locator(".meta .badge.kind")).to_have_text("live_chat")
    await ann.fill("[data-field=composer]", "Let me check.")
    await ann.click("[data-action=send]")
    await expect(status).to_have_text("Waiting on customer")
    await customer_writes(server, "ema", "thanks, waiting")
    await expect(status).to_have_text("On you")
    assert (await Ticket.get(id=ticket.id)).status == "on_you"
    # A colleague watching the ticket sees it too (their stream carries no ticket.message for it).
    bob = await desk_at(browser, server, "bob@example.com", f"ticket/{ticket.id}")
    await ann.fill("[data-field=composer]", "Found it.")
    await ann.click("[data-action=send]")
    await expect(bob.locator("[data-field=status]")).to_have_text("Waiting on customer")
    await customer_writes(server, "ema", "great")
    await expect(bob.locator("[data-field=status]")).to_have_text("On you")


async def test_a_colleagues_ticket_takes_notes_and_confirms_handback(
        server: Any, agents: dict[str, Agent], browser: Any) -> None:
    from playwright.async_api import expect

    await customer_writes(server, "fay", "I need help", "Fay")
    ticket = await taken_by(server, "fay", agents["Ann"])
    bob = await desk_at(browser, server, "bob@example.com", f"ticket/{ticket.id}")
    await expect(bob.locator("[data-field=composer-hint]")).to_contain_text("Ann is answering this customer")
    await expect(bob.locator("[data-action=mode-reply]")).to_be_disabled()
    await expect(bob.locator("[data-form=composer]")).to_have_attribute("data-mode", "note")
    await expect(bob.locator("[data-action=claim-here]")).to_be_hidden()
    await bob.fill("[data-field=composer]", "Fay called earlier too")
    await bob.click("[data-action=send]")
    await expect(bob.locator(".msg.private").last).to_contain_text("Fay called earlier too")

    await bob.click("[data-action=menu]")
    await bob.click("[data-action=allow-ai]")
    dialog = bob.locator("dialog[data-dialog=confirm]")
    await expect(dialog).to_contain_text("Ann is answering this customer")
    await bob.click("[data-action=confirm-cancel]")
    await expect(dialog).to_have_count(0)
    assert (await Ticket.get(id=ticket.id)).status == "on_you"  # nothing happened
    await bob.click("[data-action=menu]")
    await bob.click("[data-action=allow-ai]")
    await bob.click("[data-action=confirm-ok]")
    await expect(bob.locator("[data-field=status]")).to_have_text("Closed")
    assert (await Ticket.get(id=ticket.id)).status == "closed"
    assert (await Conversation.get(external_key="fay")).state == "bot"

    # Ann's own ticket closes without a question.
    await customer_writes(server, "gus", "hi", "Gus")
    own = await taken_by(server, "gus", agents["Ann"])
    ann = await desk_at(browser, server, "ann@example.com", f"ticket/{own.id}")
    await ann.click("[data-action=menu]")
    await ann.click("[data-action=close]")
    await expect(ann.locator("[data-field=status]")).to_have_text("Closed")
    assert await ann.locator("dialog[data-dialog=confirm]").count() == 0


async def test_the_composer_returns_to_reply_after_a_note_and_across_a_transfer(
        server: Any, agents: dict[str, Agent], browser: Any) -> None:
    from playwright.async_api import expect

    await customer_writes(server, "hal", "where is my refund", "Hal")
    ticket = await taken_by(server, "hal", agents["Ann"])
    ann = await desk_at(browser, server, "ann@example.com", f"ticket/{ticket.id}")
    composer = ann.locator("[data-form=composer]")
    await ann.click("[data-action=mode-note]")
    await expect(composer).to_have_attribute("data-mode", "note")
    await expect(ann.locator("[data-action=send]")).to_have_text("Add note")
    await expect(ann.locator("[data-field=composer-mode]")).to_contain_text("the customer will not see this")
    note_colour = await ann.locator("[data-action=send]").evaluate("b => getComputedStyle(b).backgroundColor")
    await ann.fill("[data-field=composer]", "refund was issued on Monday")
    await ann.click("[data-action=send]")
    await expect(ann.locator(".msg.private").last).to_contain_text("refund was issued")
    await expect(composer).to_have_attribute("data-mode", "reply")
    await expect(ann.locator("[data-action=send]")).to_have_text("Send reply")
    assert await ann.locator("[data-action=send]").evaluate("b => getComputedStyle(b).backgroundColor") != note_colour
    await ann.fill("[data-field=composer]", "Your refund left on Monday.")
    await ann.click("[data-action=send]")
    await expect(ann.locator(".msg.agent:not(.private)").last).to_contain_text("Your refund left on Monday.")

    # Bob watches (notes only); the ticket is transferred to him: his composer is on Reply.
    bob = await desk_at(browser, server, "bob@example.com", f"ticket/{ticket.id}")
    await expect(bob.locator("[data-form=composer]")).to_have_attribute("data-mode", "note")
    await ann.click("[data-action=mode-note]")
    await ann.click("[data-action=transfer]")
    await ann.select_option("[data-field=transfer-agent]", str(agents["Bob"].id))
    await ann.click("[data-action=transfer-confirm]")
    await expect(bob.locator("[data-field=assignee]")).to_contain_text("Bob")
    await expect(bob.locator("[data-form=composer]")).to_have_attribute("data-mode", "reply")
    await expect(bob.locator("[data-action=mode-reply]")).to_be_enabled()
    await bob.fill("[data-field=composer]", "Hi Hal, Bob here.")
    await bob.click("[data-action=send]")
    await expect(bob.locator(".msg.agent:not(.private)").last).to_contain_text("Bob here")
    await settle(server.app[RUNTIME])
    assert [m.private for m in await ticket.messages.filter(text="Hi Hal, Bob here.")] == [False]
    # Ann, no longer the assignee, is left with notes.
    await expect(ann.locator("[data-form=composer]")).to_have_attribute("data-mode", "note")


async def test_a_failed_send_keeps_the_text_and_drafts_survive_a_reload(
        server: Any, agents: dict[str, Agent], browser: Any) -> None:
    from playwright.async_api import expect

    await customer_writes(server, "ivy", "hello", "Ivy")
    ticket = await taken_by(server, "ivy", agents["Ann"])
    ann = await desk_at(browser, server, "ann@example.com", f"ticket/{ticket.id}")
    await ann.fill("[data-field=composer]", "A long answer I do not want to lose")
    await ann.reload()
    await expect(ann.locator("[data-field=composer]")).to_have_value("A long answer I do not want to lose")

    await ann.context.set_offline(True)  # the server is unreachable
    await ann.click("[data-action=send]")
    await expect(ann.locator("[data-field=composer-error]")).to_contain_text("Not sent")
    await expect(ann.locator("[data-field=composer-error]")).to_contain_text("Your text is kept")
    await expect(ann.locator("[data-field=composer]")).to_have_value("A long answer I do not want to lose")
    await ann.context.set_offline(False)
    await ann.click("[data-action=send]")
    await expect(ann.locator(".msg.agent").last).to_contain_text("I do not want to lose")
    await expect(ann.locator("[data-field=composer-error]")).to_be_hidden()
    await expect(ann.locator("[data-field=composer]")).to_have_value("")
    await ann.reload()
    await expect(ann.locator("[data-field=composer]")).to_have_value("")  # a sent draft is gone


@pytest.mark.parametrize("view", ["conversations", "tickets/mine", "ticket"])
async def test_the_desk_fits_a_phone(server: Any, agents: dict[str, Agent], browser: Any, view: str) -> None:
    from playwright.async_api import expect

    await customer_writes(server, "jo", "a fairly long first message to fill the last-message column " * 3,
                          "Josephine Alexandra Montgomery-Smythe")
    ticket = await taken_by(server, "jo", agents["Ann"])
    hash_ = f"ticket/{ticket.id}" if view == "ticket" else view
    ann = await desk_at(browser, server, "ann@example.com", hash_, viewport={"width": 375, "height": 740})
    await expect(ann.locator(".msg.customer, tr[data-ticket], tr[data-conversation]").first).to_be_visible()
    assert await ann.evaluate("document.documentElement.scrollWidth") <= 375
    sign_out = ann.locator("[data-action=logout]")
    await expect(sign_out).to_be_visible()
    box = await sign_out.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 375
    await sign_out.click()
    await expect(ann.locator("[data-form=login]")).to_be_visible()


@pytest.fixture(scope="module")
def axe_source() -> str:
    """axe-core's axe.min.js from node_modules (package.json's devDependency; `npm ci` when missing)."""
    if not AXE.is_file():
        npm = shutil.which("npm")
        if npm is None:
            pytest.fail("npm is needed to install axe-core (Debian: apt-get install npm; scripts/test does this)")
        done = subprocess.run([npm, "ci", "--no-audit", "--no-fund"], cwd=ROOT, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    return AXE.read_text()


async def serious_violations(page: Any, axe_source: str) -> list[dict[str, Any]]:
    """axe-core's violations of WCAG 2.x A/AA rules on the page as it is, serious or critical only."""
    await page.evaluate(axe_source)
    result = await page.evaluate(
        "async () => JSON.stringify(await axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}}))")
    return [{"id": v["id"], "impact": v["impact"], "nodes": [n["target"] for n in v["nodes"]][:5]}
            for v in json.loads(result)["violations"] if v["impact"] in ("serious", "critical")]


async def test_the_desks_main_views_have_no_serious_accessibility_violations(
        server: Any, agents: dict[str, Agent], browser: Any, axe_source: str) -> None:
    from playwright.async_api import expect

    await customer_writes(server, "kim", "hello there", "Kim")
    await customer_writes(server, "lee", "need a person", "Lee")
    ticket = await taken_by(server, "kim", agents["Ann"])
    await customer_writes(server, "kim", "are you there?")
    conversation = await Conversation.get(external_key="lee")
    ann = await desk_at(browser, server, "ann@example.com", "conversations")
    found = {}
    for hash_, ready in (("conversations", "tr[data-conversation]"), ("tickets/mine", "tr[data-ticket]"),
                         ("tickets/all", "tr[data-ticket]"), (f"ticket/{ticket.id}", ".timeline .msg"),
                         (f"conversation/{conversation.id}", ".timeline .msg"), ("account", "form")):
        await ann.goto(server.base + "/desk#" + hash_)
        await expect(ann.locator(ready).first).to_be_visible()
        found[hash_] = await serious_violations(ann, axe_source)
    await ann.goto(server.base + f"/desk#ticket/{ticket.id}")
    await ann.click("[data-action=mode-note]")
    await expect(ann.locator("[data-form=composer]")).to_have_attribute("data-mode", "note")
    found["ticket, note mode"] = await serious_violations(ann, axe_source)
    signin = await (await browser.new_context()).new_page()
    await signin.goto(server.base + "/desk")
    await expect(signin.locator("[data-form=login]")).to_be_visible()
    found["sign-in"] = await serious_violations(signin, axe_source)
    assert {view: v for view, v in found.items() if v} == {}
