"""`handoff.canned` without a database: placeholders filled in (Liquid, Chatwoot's variable
names), unknown values tidied away, bounded rendering, and what counts as a shortcut."""

from __future__ import annotations

import pytest

from handoff.canned import (
    TemplateError,
    Values,
    check_template,
    normalize_code,
    render,
    shortcut_of,
)

ANA = Values(contact_name="Dana Pérez", contact_email="dana@example.com", agent_name="Ana Lopez", conversation_id=7)


@pytest.mark.parametrize(("content", "values", "expected"), [
    ("Hi {{contact.name}}!", ANA, "Hi Dana Pérez!"),
    ("Hi {{ contact.first_name }}, I'm {{agent.first_name}} (#{{conversation.id}}).", ANA, "Hi Dana, I'm Ana (#7)."),
    ("We wrote to {{contact.email}}.", ANA, "We wrote to dana@example.com."),
    ("Hi {{contact.name}}, thanks!", Values(), "Hi, thanks!"),
    ("Hi {{contact.name}}!", Values(), "Hi!"),
    ("Dear {{contact.name}} and team", Values(), "Dear and team"),
    ("{{contact.name}}, your parcel left.\nBye", Values(), "your parcel left.\nBye"),
    ("Hello {{ contact.first_name | default: 'there' }}!", Values(), "Hello there!"),
    ("{% if contact.name %}Hi {{contact.name}}{% else %}Hello{% endif %}.", Values(), "Hello."),
    ("Thanks {{ contact.name | upcase }}", ANA, "Thanks DANA PÉREZ"),
])
def test_placeholders_are_filled_in_and_unknown_ones_tidied(content: str, values: Values, expected: str) -> None:
    assert render(content, values) == expected


def test_templates_are_checked_and_rendering_is_bounded() -> None:
    assert check_template("Hi {{contact.name}}") == "Hi {{contact.name}}"
    for bad in ("{{ contact.name ", "{% for %}", "{{ x | nosuch }}", "{% include 'a' %}"):
        with pytest.raises(TemplateError, match="is not a valid template"):
            check_template(bad)
    with pytest.raises(TemplateError, match="loop iteration limit"):
        render("{% for i in (1..100000000) %}x{% endfor %}", ANA)


def test_short_codes_and_shortcuts() -> None:
    assert normalize_code(" /Shipping ") == "shipping"
    assert normalize_code("refund.policy-2_b") == "refund.policy-2_b"
    for bad in ("", "/", "two words", "a/b", "x" * 51):
        with pytest.raises(ValueError):
            normalize_code(bad)
    assert shortcut_of("/shipping") == ("shipping", "")
    assert shortcut_of("  /Shipping thanks") == ("shipping", "thanks")
    assert shortcut_of("/x\nmore") == ("x", "\nmore")
    assert shortcut_of("/etc/hosts") is None
    assert shortcut_of("see /shipping") is None
