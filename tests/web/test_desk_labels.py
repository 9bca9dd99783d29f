"""Labels and who replied last in the desk (issue 16, items 1 and 4), in Debian's Chromium: an
agent creates a label and labels the conversation from its ticket page, a colleague watching the
conversation sees it live, the lists show the chips and filter by label, by who replied last and
by AI or human; axe-core finds no serious violation in the labels dialog."""

from __future__ import annotations

from typing import Any

import pytest

from handoff.models import Agent, Conversation, ConversationLabel
from tests.web import test_desk_shift as shift

pytestmark = pytest.mark.browser

chromium, browser, db_url, server, agents = shift.chromium, shift.browser, shift.db_url, shift.server, shift.agents
axe_source = shift.axe_source


async def test_an_agent_labels_from_the_ticket_page_and_the_lists_filter_by_label_and_responder(
        server: Any, agents: dict[str, Agent], browser: Any, axe_source: str) -> None:
    from playwright.async_api import expect

    await shift.customer_writes(server, "gia", "I want a refund", "Gia")
    await shift.customer_writes(server, "hal", "opening hours?", "Hal")
    ticket = await shift.taken_by(server, "gia", agents["Ann"])
    gia = await Conversation.get(external_key="gia")
    hal = await Conversation.get(external_key="hal")
    bob = await shift.desk_at(browser, server, "bob@example.com", f"conversation/{gia.id}")
    await expect(bob.locator("[data-labels-for] .muted")).to_have_text("No labels")

    ann = await shift.desk_at(browser, server, "ann@example.com", f"ticket/{ticket.id}")
    await ann.fill("[data-field=composer]", "Refund on its way.")
    await ann.click("[data-action=send]")
    await expect(ann.locator(".timeline .msg.agent")).to_contain_text("Refund on its way.")
    card = ann.locator("[data-card=labels]")
    await card.locator("[data-action=edit-labels]").click()
    dialog = ann.locator("dialog[data-dialog=labels]")
    await dialog.locator("[data-field=new-label-name]").fill("a,b")
    await dialog.locator("[data-action=create-label]").click()
    await expect(dialog.locator(".error")).to_contain_text("commas")
    await dialog.locator("[data-field=new-label-name]").fill("  Needs human ")
    await dialog.locator("[data-field=new-label-color]").fill("#ffe066")
    await dialog.locator("[data-action=create-label]").click()
    await expect(dialog.locator("[data-label-option='Needs human']")).to_be_checked()
    assert await shift.serious_violations(ann, axe_source) == []
    await dialog.locator("[data-action=save-labels]").click()
    await expect(dialog).to_have_count(0)
    chip = card.locator(".label-chip")
    await expect(chip).to_have_text("Needs human")
    assert await chip.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(255, 224, 102)"
    await expect(ann.locator(".timeline [data-event=labels_changed]")).to_contain_text("Ann labelled it Needs human")
    assert await ConversationLabel.filter(conversation_id=gia.id).count() == 1
    await expect(bob.locator("[data-labels-for] .label-chip")).to_have_text("Needs human")  # live

    await ann.goto(server.base + "/desk#conversations")
    row = ann.locator(f"tr[data-conversation='{gia.id}']")
    await expect(row.locator(".label-chip")).to_have_text("Needs human")
    await expect(row.locator("[data-field=last-reply]")).to_have_text("last reply: You")
    await expect(ann.locator(f"tr[data-conversation='{hal.id}'] [data-field=last-reply]")).to_have_text("last reply: AI")
    rows = ann.locator("tr[data-conversation]")
    await expect(rows).to_have_count(2)
    await expect(ann.locator("select[data-filter=label] option[value='Needs human']")).to_have_count(1)
    await ann.select_option("select[data-filter=label]", "Needs human")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-conversation", str(gia.id))
    await ann.select_option("select[data-filter=label]", "")
    await ann.select_option("select[data-filter=agent_type]", "bot")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-conversation", str(hal.id))
    await ann.select_option("select[data-filter=agent_type]", "")
    await expect(ann.locator(f"select[data-filter=responded_by] option[value='{agents['Bob'].id}']")).to_have_text("Bob")
    await ann.select_option("select[data-filter=responded_by]", "me")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_have_attribute("data-conversation", str(gia.id))
    await ann.select_option("select[data-filter=responded_by]", str(agents["Bob"].id))
    await expect(ann.locator("p.empty")).to_have_text("Nothing matches these filters.")

    await ann.goto(server.base + "/desk#tickets/all")
    await expect(ann.locator(f"tr[data-ticket='{ticket.id}'] .label-chip")).to_have_text("Needs human")
    await ann.select_option("select[data-filter=label]", "Needs human")
    await expect(ann.locator("tr[data-ticket]")).to_have_count(1)
