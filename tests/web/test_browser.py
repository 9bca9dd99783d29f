"""End-to-end: a customer in the widget and agents in the desk, in Debian's Chromium (Playwright).

Chromium comes from Debian (`/usr/bin/chromium`); the `chromium` fixture installs it with
apt-get when it is missing (as root, as in CI). Screenshots of the widget and of the
ticket page are taken during the run; they are written to docs/screenshots/ only with
`HANDOFF_SAVE_SCREENSHOTS=1` (so an ordinary run leaves the tree clean), else to a temporary folder.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from handoff.bot.base import BotReply, Summary, Turn
from handoff.channels.api import sign
from handoff.contact_names import fill_contact_name
from handoff.desk.auth import create_agent
from handoff.models import Agent, Contact, ContactIdentity, Conversation, Message, Ticket
from handoff.runtime import RUNTIME
from handoff.web import auth
from tests.conftest import API_SECRET, api_body, settle

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
PASSWORD = "a long test password"
TIMEOUT = 10_000


def _install_chromium() -> None:
    """apt-get install chromium, retrying while another installer holds the dpkg lock."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for attempt in range(20):
        update = subprocess.run(["apt-get", "update"], env=env, capture_output=True, text=True)
        install = subprocess.run(
            ["apt-get", "install", "-y", "--no-install-recommends", "chromium"], env=env, capture_output=True, text=True
        )
        if install.returncode == 0 and Path(CHROMIUM).exists():
            return
        if "lock" not in (update.stderr + install.stderr).lower() or attempt == 19:
            raise RuntimeError(f"apt-get install chromium failed:\n{install.stderr[-2000:]}")
        time.sleep(15)


@pytest.fixture(scope="session")
def chromium() -> str:
    """The path of Debian's Chromium, installed on first use when missing."""
    if not Path(CHROMIUM).exists():
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            pytest.skip("Chromium is missing and cannot be installed here (needs root and apt-get)")
        _install_chromium()
    return CHROMIUM


class EchoBot:
    """A deterministic bot: answers every customer turn with a recognisable line."""

    async def reply(self, history: Sequence[Turn], language: str) -> BotReply:
        return BotReply(text=f"Bot here. You said: {history[-1].text}")


class SlowSummarizer:
    """A summarizer that takes a moment, so the desk shows the summary arriving live."""

    async def summarize(self, history: Sequence[Turn], language: str, contact: str | None = None) -> Summary:
        await asyncio.sleep(0.3)
        first = next((t.text for t in history if t.author == "customer"), "")
        return Summary(subject=f"Help with: {first[:40]}", summary=f"The customer wrote {len(history)} messages.")


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """Browser tests exercise the UI: one SQLite database is enough (storage tests cover PostgreSQL)."""
    return f"sqlite://{tmp_path / 'browser.db'}"


@pytest.fixture
async def server(aiohttp_server: Any, app_factory: Any, settings: Any, tmp_path: Path) -> Any:
    """The whole app on a real port, with the deterministic bot."""
    app = app_factory(
        settings=settings.model_copy(update=dict(media_dir=str(tmp_path / "media"))), bot=EchoBot(), summarizer=SlowSummarizer()
    )
    srv = await aiohttp_server(app)
    srv.base = str(srv.make_url("")).rstrip("/")
    yield srv
    await settle(app[RUNTIME])


@pytest.fixture
async def agents(server: Any) -> dict[str, Agent]:
    """Two agents who can sign in to the desk with a password."""
    made = {}
    for name in ("Ann", "Bob"):
        agent, _token = await create_agent(name, f"{name.lower()}@example.com")
        agent.password_hash = auth.hash_password(PASSWORD)
        await agent.save(update_fields=["password_hash"])
        made[name] = agent
    return made


@pytest.fixture
async def browser(chromium: str) -> Any:
    """A headless Chromium."""
    from playwright.async_api import async_playwright

    from playwright.async_api import expect

    expect.set_options(timeout=TIMEOUT)  # CI machines are shared: give live updates room
    async with async_playwright() as pw:
        instance = await pw.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
        yield instance
        await instance.close()


async def open_widget(browser: Any, base: str) -> Any:
    context = await browser.new_context(viewport={"width": 1100, "height": 760})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    await page.goto(base + "/")
    await page.click(".hw-launcher")
    await wait_for_connection(page, "online")
    return page


async def wait_for_connection(page: Any, connection: str) -> None:
    """Waits until the widget shows the connection state (a DOM wait: the page's CSP forbids eval)."""
    from playwright.async_api import expect

    await expect(page.locator(".hw-panel")).to_have_attribute("data-connection", connection)


async def customer_says(page: Any, text: str) -> None:
    await page.fill(".hw-input", text)
    await page.press(".hw-input", "Enter")


async def open_desk(browser: Any, base: str, email: str) -> Any:
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT)
    await page.goto(base + "/desk")
    await page.fill("[data-form=login] input[name=email]", email)
    await page.fill("[data-form=login] input[name=password]", PASSWORD)
    await page.click("[data-form=login] button[type=submit]")
    await page.wait_for_selector("nav a.active")
    await page.wait_for_selector(".live.on")
    return page


def bot_lines(page: Any) -> Any:
    return page.locator(".hw-msg[data-author=bot]")


async def taken_over_in_desk(browser: Any, base: str, first_message: str) -> tuple[Any, Any]:
    """A widget customer who said `first_message` and got the bot's answer, and Ann, who took over."""
    from playwright.async_api import expect

    customer = await open_widget(browser, base)
    await customer_says(customer, first_message)
    await expect(bot_lines(customer).last).to_contain_text(first_message)
    ann = await open_desk(browser, base, "ann@example.com")
    await ann.locator("[data-action=takeover]").first.click()
    await ann.wait_for_url("**/desk#ticket/*")
    return customer, ann


async def test_full_cycle_between_widget_and_desk(server: Any, agents: dict[str, Agent], browser: Any,
                                                 tmp_path: Path) -> None:
    from playwright.async_api import expect

    customer = await open_widget(browser, server.base)
    await customer_says(customer, "Hello, where is my order 1234?")
    await expect(bot_lines(customer).last).to_contain_text("You said: Hello, where is my order 1234?")

    ann = await open_desk(browser, server.base, "ann@example.com")
    row = ann.locator("tr[data-state=bot]").first
    await expect(row).to_be_visible()
    await row.locator("[data-action=takeover]").click()
    await ann.wait_for_url("**/desk#ticket/*")
    first_ticket = int(ann.url.rsplit("/", 1)[1])

    # The AI stops, the customer sees the spinner and the Live Chat separator.
    await expect(customer.locator(".hw-spinner")).to_be_visible()
    await expect(customer.locator(".hw-spinner")).to_contain_text(re.compile(r"Waiting for (a )?support agent to join"))
    await expect(customer.locator(".hw-separator").last).to_contain_text("Live Chat")
    SCREENSHOTS = DOCS_SCREENSHOTS if os.environ.get("HANDOFF_SAVE_SCREENSHOTS") == "1" else tmp_path
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await customer.screenshot(path=str(SCREENSHOTS / "widget-waiting-for-agent.png"))

    # The summary appears live on the ticket page.
    await expect(ann.locator("[data-field=summary]")).to_contain_text("The customer wrote")
    await expect(ann.locator(".ticket .subject")).to_contain_text("Help with")

    # The first agent message clears the spinner and carries the agent's name.
    await ann.fill("[data-field=composer]", "Hi, I'm Ann. Let me check that order for you.")
    await ann.click("[data-action=send]")
    agent_line = customer.locator(".hw-msg[data-author=agent]").last
    await expect(agent_line).to_contain_text("Let me check that order")
    await expect(agent_line.locator(".hw-author")).to_have_text("Ann")
    await expect(customer.locator(".hw-spinner")).to_be_hidden()

    # An internal note never reaches the customer.
    await ann.click("[data-action=mode-note]")
    await ann.fill("[data-field=composer]", "Order 1234 is stuck in the warehouse.")
    await ann.click("[data-action=send]")
    await expect(ann.locator(".msg.private").last).to_contain_text("stuck in the warehouse")

    # The customer writes back; the agent sees it live.
    await customer_says(customer, "Thanks Ann!")
    await expect(ann.locator(".msg.customer").last).to_contain_text("Thanks Ann!")
    await ann.screenshot(path=str(SCREENSHOTS / "desk-ticket.png"))
    await customer.screenshot(path=str(SCREENSHOTS / "widget-live-chat.png"))

    # Transfer to Bob, with a note.
    await ann.click("[data-action=transfer]")
    await ann.select_option("[data-field=transfer-agent]", str(agents["Bob"].id))
    await ann.fill("[data-field=transfer-note]", "Bob, can you chase the warehouse?")
    await ann.click("[data-action=transfer-confirm]")
    await expect(ann.locator("[data-field=assignee]")).to_contain_text("Bob")
    assert (await Ticket.get(id=first_ticket)).assignee_id == agents["Bob"].id
    await expect(customer.locator(".hw-notice[data-notice=transferred]")).to_contain_text("Bob")
    await expect(bot_lines(customer)).to_have_count(1)  # the AI stayed silent during the live chat

    # Bob hands back to the AI from the menu.
    bob = await open_desk(browser, server.base, "bob@example.com")
    await bob.goto(server.base + "/desk#tickets/mine")
    await bob.locator(f"tr[data-ticket='{first_ticket}'] a").first.click()
    await expect(bob.locator(".msg.private").last).to_contain_text("chase the warehouse")
    await bob.click("[data-action=menu]")
    await bob.click("[data-action=allow-ai]")
    await expect(customer.locator(".hw-separator").last).to_contain_text("AI Resumed")
    await customer_says(customer, "Is the bot back?")
    await expect(bot_lines(customer).last).to_contain_text("You said: Is the bot back?")
    assert (await Ticket.get(id=first_ticket)).status == "closed"

    # A second takeover makes a new ticket and shows the spinner again.
    await ann.goto(server.base + "/desk#conversations")
    await ann.locator("tr[data-state=bot] [data-action=takeover]").first.click()
    await ann.wait_for_url("**/desk#ticket/*")
    assert int(ann.url.rsplit("/", 1)[1]) != first_ticket
    await expect(customer.locator(".hw-spinner")).to_be_visible()
    await expect(customer.locator(".hw-separator", has_text="Live Chat")).to_have_count(2)
    # The full timeline keeps both cycles.
    await expect(ann.locator(".timeline .separator", has_text="AI Resumed")).to_have_count(1)


async def _ticket_of_widget_conversation(timeout: float = 10.0) -> Ticket:
    """The takeover ticket, once one of the clicks' requests has committed it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while (ticket := await Ticket.get_or_none(conversation__channel="widget")) is None:
        assert loop.time() < deadline, "no takeover ticket was created"
        await asyncio.sleep(0.05)
    return ticket


async def test_two_agents_race_to_take_over(server: Any, agents: dict[str, Agent], browser: Any) -> None:
    from playwright.async_api import expect

    customer = await open_widget(browser, server.base)
    await customer_says(customer, "I want a refund")
    await expect(bot_lines(customer).last).to_contain_text("refund")
    ann = await open_desk(browser, server.base, "ann@example.com")
    bob = await open_desk(browser, server.base, "bob@example.com")
    for page in (ann, bob):
        await expect(page.locator("tr[data-state=bot] [data-action=takeover]")).to_have_count(1)
    await asyncio.gather(
        ann.locator("[data-action=takeover]").click(), bob.locator("[data-action=takeover]").click()
    )
    winner_ticket = await _ticket_of_widget_conversation()
    winner = "Ann" if winner_ticket.assignee_id == agents["Ann"].id else "Bob"
    loser = bob if winner == "Ann" else ann
    await expect(loser.locator(".toast.conflict")).to_contain_text(f"Already taken over by {winner}")
    await loser.locator(".toast.conflict a").click()
    await expect(loser.locator("[data-field=assignee]")).to_contain_text(winner)
    await expect(customer.locator(".hw-spinner")).to_be_visible()


async def test_reconnect_loses_nothing_and_shows_nothing_twice(
    server: Any, agents: dict[str, Agent], browser: Any
) -> None:
    from playwright.async_api import expect

    customer, ann = await taken_over_in_desk(browser, server.base, "first message")
    await expect(customer.locator(".hw-spinner")).to_be_visible()

    await customer.evaluate("window.HandoffWidget.disconnect()")
    await wait_for_connection(customer, "offline")
    await ann.fill("[data-field=composer]", "Sent while you were offline")
    await ann.click("[data-action=send]")
    await expect(ann.locator(".msg.agent")).to_contain_text("Sent while you were offline")
    await customer_says(customer, "typed while offline")
    await expect(customer.locator(".hw-msg.hw-sending")).to_have_count(1)

    await customer.evaluate("window.HandoffWidget.reconnect()")
    await expect(customer.locator(".hw-msg[data-author=agent]")).to_have_count(1)
    await expect(customer.locator(".hw-msg[data-author=agent]")).to_contain_text("offline")
    await expect(customer.locator(".hw-msg.hw-sending")).to_have_count(0)
    await expect(ann.locator(".msg.customer", has_text="typed while offline")).to_have_count(1)
    await expect(customer.locator(".hw-spinner")).to_be_hidden()

    # A full page reload replays the history once, from the database.
    await customer.reload()
    await customer.click(".hw-launcher")
    await wait_for_connection(customer, "online")
    await expect(customer.locator(".hw-msg", has_text="typed while offline")).to_have_count(1)
    await expect(customer.locator(".hw-msg", has_text="Sent while you were offline")).to_have_count(1)
    assert await Message.filter(channel="widget", text="typed while offline").count() == 1


async def test_html_in_messages_is_rendered_as_text(server: Any, agents: dict[str, Agent], browser: Any) -> None:
    from playwright.async_api import expect

    attack = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    customer, ann = await taken_over_in_desk(browser, server.base, attack)
    await expect(ann.locator(".msg.customer").first).to_contain_text('<img src=x onerror="window.__pwned=1">')
    await ann.fill("[data-field=composer]", "<b>not bold</b><img src=y onerror=window.__pwned=3>")
    await ann.click("[data-action=send]")
    await expect(customer.locator(".hw-msg[data-author=agent]")).to_contain_text("<b>not bold</b>")
    for page in (customer, ann):
        assert await page.evaluate("window.__pwned") is None
        assert await page.locator("img[src=x], img[src=y]").count() == 0


async def test_a_reply_draft_survives_a_rerender_of_the_ticket_page(
    server: Any, agents: dict[str, Agent], browser: Any
) -> None:
    from playwright.async_api import expect

    customer, ann = await taken_over_in_desk(browser, server.base, "my parcel is late")
    await expect(ann.locator(".msg.customer").first).to_contain_text("my parcel is late")
    await ann.fill("[data-field=composer]", "Half-written answer")
    # A catch-up after a reconnect re-renders the page, as a navigation does.
    await ann.evaluate("window.dispatchEvent(new HashChangeEvent('hashchange'))")
    await expect(ann.locator(".timeline .msg.customer")).to_have_count(1)
    await expect(ann.locator("[data-field=composer]")).to_have_value("Half-written answer")
    await ann.click("[data-action=send]")
    await expect(customer.locator(".hw-msg[data-author=agent]")).to_contain_text("Half-written answer")
    await expect(ann.locator("[data-field=composer]")).to_have_value("")


def tiny_png() -> bytes:
    """A valid 1x1 PNG."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b"")


async def test_agent_attaches_files_in_the_desk(server: Any, agents: dict[str, Agent], browser: Any) -> None:
    import aiohttp
    from playwright.async_api import expect

    customer, ann = await taken_over_in_desk(browser, server.base, "Can you send me the return label?")

    await ann.set_input_files("[data-field=attach-input]", files=[
        {"name": "label.png", "mimeType": "image/png", "buffer": tiny_png()},
        {"name": "<i>steps.txt", "mimeType": "text/plain", "buffer": b"1. print 2. stick"},
    ])
    await expect(ann.locator(".upload-chip")).to_have_count(2)
    await ann.click("[data-action=send]")  # no text: the files are the message

    sent = ann.locator(".msg.agent").last
    await expect(sent.locator(".attachment.thumb img")).to_have_attribute("alt", "label.png")
    await expect(sent.locator(".attachment:not(.thumb)")).to_contain_text("i_steps.txt")
    await expect(ann.locator(".upload-chip")).to_have_count(0)
    line = customer.locator(".hw-msg[data-author=agent]").last
    await expect(line.locator("img")).to_have_attribute("alt", "label.png")
    await expect(line.locator(".hw-fileLink")).to_contain_text("i_steps.txt")
    src = await line.locator("img").get_attribute("src")
    assert src and src.startswith(server.base + "/media/")
    async with aiohttp.ClientSession() as http, http.get(src) as response:
        assert response.status == 200 and await response.read() == tiny_png()
    for image in (line.locator("img"), sent.locator(".attachment.thumb img")):  # both pages really loaded it
        await expect(image).to_be_visible()
        assert await image.evaluate("img => img.complete && img.naturalWidth") == 1


class KnownNames:
    """A name source (as Messenger's Graph profile lookup is) that knows every contact as Ana."""

    name = "widget"

    def cached_name(self, contact_id: str) -> tuple[bool, str | None]:
        return False, None

    async def contact_name(self, contact_id: str) -> str | None:
        return "Ana Souza"


async def test_a_contact_name_found_later_shows_on_the_open_ticket(server: Any, agents: dict[str, Agent], browser: Any) -> None:
    from playwright.async_api import expect

    _customer, ann = await taken_over_in_desk(browser, server.base, "hello")
    await expect(ann.locator("[data-field=contact-name]")).to_have_text("—")
    await expect(ann.locator("[data-field=summary]")).to_contain_text("The customer wrote")  # the page is settled
    await settle(server.app[RUNTIME])

    conversation = await Conversation.get(channel="widget")
    identity = await ContactIdentity.get(contact_id=conversation.contact_id)  # type: ignore[attr-defined]
    await fill_contact_name(server.app[RUNTIME], KnownNames(), identity.external_id, conversation.id)
    await expect(ann.locator("[data-field=contact-name]")).to_have_text("Ana Souza")


async def test_desk_search_and_load_more_survive_live_updates(
    server: Any, agents: dict[str, Agent], browser: Any
) -> None:
    import aiohttp
    from playwright.async_api import expect

    async def customer_writes(name: str) -> None:
        key = name.split()[0].lower()
        body = api_body("hello", conversation=key, contact=key, name=name)
        async with aiohttp.ClientSession() as http, http.post(
                server.base + "/webhooks/api", data=body, headers={"X-Handoff-Signature": sign(API_SECRET, body)}) as r:
            assert r.status == 202

    for i in range(50):  # older conversations, enough to fill the first page
        contact = await Contact.create(name=f"Earlier {i}")
        await Conversation.create(contact=contact, channel="api", external_key=f"old-{i}",
                                  contact_external_id=f"old-{i}", state="ended")
    for name in ("Ana Souza", "Bruno Lima", "Chloé Martin"):
        await customer_writes(name)

    ann = await open_desk(browser, server.base, "ann@example.com")
    rows = ann.locator("tr[data-conversation]")
    await expect(rows).to_have_count(50)
    await ann.click("[data-action=load-more]")
    await expect(rows).to_have_count(53)
    await expect(ann.locator("[data-action=load-more]")).to_be_hidden()
    await customer_writes("Dora Lima")  # a live event reloads the rows, all that were loaded
    await expect(rows).to_have_count(54)

    await ann.fill("[data-field=search]", "souza")
    await expect(rows).to_have_count(1)
    await expect(rows).to_contain_text("Ana Souza")
    await customer_writes("Eve Souza")  # the live reload keeps the search and what it found
    await expect(rows).to_have_count(2)
    await expect(ann.locator("[data-field=search]")).to_have_value("souza")
    assert sorted(await rows.locator("strong").all_text_contents()) == ["Ana Souza", "Eve Souza"]
