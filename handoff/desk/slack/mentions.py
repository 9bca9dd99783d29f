"""Slack mentions for the agents an internal note @mentions (issue 16, item 2).

A note mirrored into its ticket's thread gets a last line that @mentions, in Slack's own format
(`<@U…>`, https://api.slack.com/reference/surfaces/formatting#mentioning-users), each agent it
names who is linked to a Slack user (`Agent.slack_user_id`, set when they first act in Slack) —
not its author, and not an agent no longer active — so Slack notifies them. A note written in
Slack is not posted back: a Slack mention typed there has already notified its user.
"""

from __future__ import annotations

from typing import Any

from handoff.models import Agent

BELL = ":bell:"


async def with_mentions(line: str, message: dict[str, Any]) -> str:
    """`line` (a note's thread line, `message` its `message_json`) with the Slack mentions of the
    agents the note names appended; `line` itself for anything else."""
    if not message.get("private"):
        return line
    author = (message.get("agent") or {}).get("id")
    ids = [m["id"] for m in message.get("mentions") or [] if isinstance(m, dict) and m.get("id") != author]
    if not ids:
        return line
    linked = dict(await Agent.filter(id__in=ids, is_active=True, slack_user_id__not_isnull=True)
                  .values_list("id", "slack_user_id"))
    users = [f"<@{linked[i]}>" for i in ids if linked.get(i)]
    return f"{line}\n{BELL} {' '.join(users)}" if users else line
