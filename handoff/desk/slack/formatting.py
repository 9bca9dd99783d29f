"""Slack's message formatting decoded into the plain text a customer reads (pure, no I/O).

What a person types in Slack arrives in Slack's wire format ("Formatting text for app
surfaces", https://api.slack.com/reference/surfaces/formatting): control sequences in angle
brackets, and `&`, `<`, `>` escaped as `&amp;`, `&lt;`, `&gt;` ("Escaping text"). `to_plain`
turns it into text for any channel:

| Slack sends | the customer reads |
|---|---|
| `<https://x.example/a\\|Track it>` | `Track it (https://x.example/a)` |
| `<https://x.example/a>`, `<https://x.example/a\\|https://x.example/a>` | `https://x.example/a` |
| `<http://x.example\\|x.example>` (Slack linked what was typed) | `x.example` |
| `<mailto:ana@x.example\\|ana@x.example>`, `<mailto:ana@x.example>` | `ana@x.example` |
| `<@U123>` | `@` + the user's name from `users`, else `@someone` |
| `<#C123\\|general>` | `#general` (`<#C123>` and `<#C123\\|>`: the name from `channels`, else `#channel`) |
| `<!here>`, `<!channel>`, `<!everyone>` | `@here`, `@channel`, `@everyone` |
| `<!subteam^S123\\|@support>` | `@support` |
| `<!date^1700000000^{date_short}\\|Nov 14, 2023>` | `Nov 14, 2023` (no fallback: the date in UTC) |
| `&lt;` `&gt;` `&amp;` | `<` `>` `&`, in one pass: `&amp;lt;` reads `&lt;` |

Names looked up elsewhere (`users`, `channels`) are inserted as they are, never unescaped.
Slack's emphasis marks (`*bold*`, `_italic_`) are left as typed: chat channels show them as such.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

_TOKEN = re.compile(r"<([^<>]*)>|&(amp|lt|gt);")
_ENTITY = re.compile(r"&(amp|lt|gt);")
_ENTITIES = {"amp": "&", "lt": "<", "gt": ">"}
_BROADCASTS = {"here", "channel", "everyone"}
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:(//)?", re.IGNORECASE)

UNKNOWN_USER = "@someone"
UNKNOWN_CHANNEL = "#channel"
UNKNOWN_GROUP = "@team"


@dataclass(frozen=True)
class References:
    """The ids in a text whose names must be looked up: users mentioned, channels shown without a name."""

    users: frozenset[str] = field(default_factory=frozenset)
    channels: frozenset[str] = field(default_factory=frozenset)


def unescape(text: str) -> str:
    """Slack's three entities back to characters, in one pass (`&amp;lt;` → `&lt;`)."""
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(1)], text)


def references(text: str) -> References:
    """The user ids (`<@U…>`) and unnamed channel ids (`<#C…>`, `<#C…|>`) in a Slack text."""
    users, channels = set(), set()
    for match in _TOKEN.finditer(text):
        target, _, label = (match.group(1) or "").partition("|")
        if target.startswith("@") and len(target) > 1:
            users.add(target[1:])
        elif target.startswith("#") and len(target) > 1 and not label:
            channels.add(target[1:])
    return References(frozenset(users), frozenset(channels))


def to_plain(text: str, users: Mapping[str, str] | None = None, channels: Mapping[str, str] | None = None) -> str:
    """A Slack message text as plain text; `users`/`channels` map ids to display names (without @ or #)."""
    users, channels = users or {}, channels or {}

    def one(match: re.Match[str]) -> str:
        if match.group(2):
            return _ENTITIES[match.group(2)]
        return _control(match.group(1), users, channels)

    return _TOKEN.sub(one, text)


def _control(body: str, users: Mapping[str, str], channels: Mapping[str, str]) -> str:
    target, _, label = body.partition("|")
    label = unescape(label)
    if target.startswith("@"):
        # `<@U123|alice>` is the older form with the user name as label.
        name = users.get(target[1:]) or label.lstrip("@")
        return "@" + name if name else UNKNOWN_USER
    if target.startswith("#"):
        name = label or channels.get(target[1:], "")
        return "#" + name.lstrip("#") if name else UNKNOWN_CHANNEL
    if target.startswith("!"):
        return _special(target[1:], label)
    return _link(unescape(target), label)


def _special(command: str, label: str) -> str:
    name, _, rest = command.partition("^")
    if name in _BROADCASTS:
        return "@" + name
    if name == "subteam":
        return "@" + label.lstrip("@") if label else UNKNOWN_GROUP
    if name == "date":
        return label or _utc_date(rest.partition("^")[0])
    return label


def _utc_date(timestamp: str) -> str:
    try:
        return datetime.fromtimestamp(int(timestamp), UTC).strftime("%Y-%m-%d %H:%M UTC")
    except (ValueError, OverflowError, OSError):
        return ""


def _link(url: str, label: str) -> str:
    shown = url[len("mailto:"):] if url.lower().startswith("mailto:") else url
    if not label or label in (url, shown, _SCHEME.sub("", url, count=1)):
        return label or shown
    return f"{label} ({shown})"
