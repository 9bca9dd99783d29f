"""Slack's message formatting decoded for the customer: one row per control sequence and escape."""

from __future__ import annotations

import pytest

from handoff.desk.slack import formatting

USERS = {"U0BOB": "Bob Marsh", "U0AMP": "R&D <lab>"}
CHANNELS = {"C0BILLING": "billing"}

CASES = [
    # links
    ("Track it: <https://shop.example/t?o=1&amp;l=en>", "Track it: https://shop.example/t?o=1&l=en"),
    ("<https://shop.example/t?o=1&amp;l=en|your parcel>", "your parcel (https://shop.example/t?o=1&l=en)"),
    ("<https://shop.example/a|https://shop.example/a>", "https://shop.example/a"),
    ("see <http://shop.example/faq|shop.example/faq>", "see shop.example/faq"),
    ("<https://shop.example|Fish &amp; Chips>", "Fish & Chips (https://shop.example)"),
    ("<mailto:dana@shop.example|dana@shop.example>", "dana@shop.example"),
    ("<mailto:dana@shop.example>", "dana@shop.example"),
    ("<mailto:dana@shop.example|write to us>", "write to us (dana@shop.example)"),
    # mentions
    ("ask <@U0BOB>", "ask @Bob Marsh"),
    ("ask <@U0NOBODY>", "ask @someone"),
    ("ask <@U0NOBODY|bob>", "ask @bob"),
    ("<@U0AMP> checked", "@R&D <lab> checked"),
    ("in <#C0GENERAL|general>", "in #general"),
    ("in <#C0BILLING>", "in #billing"),
    ("in <#C0BILLING|>", "in #billing"),
    ("in <#C0UNKNOWN>", "in #channel"),
    ("<!here> <!channel> <!everyone>", "@here @channel @everyone"),
    ("<!here|here>", "@here"),
    ("<!subteam^S0SUPPORT|@support-team> will call", "@support-team will call"),
    ("<!subteam^S0SUPPORT>", "@team"),
    ("<!date^1700000000^{date_short} at {time}|Nov 14, 2023 at 10:13 PM> ok", "Nov 14, 2023 at 10:13 PM ok"),
    ("<!date^1700000000^{date_short}^https://shop.example|Nov 14>", "Nov 14"),
    ("<!date^1700000000^{date_short}>", "2023-11-14 22:13 UTC"),
    # escapes, decoded last and once
    ("a &lt;b&gt; &amp; c", "a <b> & c"),
    ("&amp;lt;", "&lt;"),
    ("&amp;amp;", "&amp;"),
    ("1 &lt; 2 &gt; 0", "1 < 2 > 0"),
    ("&quot;kept&quot; &copy;", "&quot;kept&quot; &copy;"),
    ("*bold* and _italic_ stay", "*bold* and _italic_ stay"),
    ("no formatting at all", "no formatting at all"),
    ("", ""),
]


@pytest.mark.parametrize("slack, plain", CASES)
def test_to_plain(slack: str, plain: str) -> None:
    assert formatting.to_plain(slack, USERS, CHANNELS) == plain


def test_references_lists_users_and_unnamed_channels() -> None:
    text = "<@U0BOB> <@U0ANA|ana> <#C0BILLING> <#C0OPS|> <#C0GENERAL|general> <!here> <https://x.example|@U0NOT>"
    refs = formatting.references(text)
    assert refs.users == {"U0BOB", "U0ANA"}
    assert refs.channels == {"C0BILLING", "C0OPS"}
