"""Map Slack users to handoff Agents, never guessing.

A Slack user is the agent whose `slack_user_id` is theirs; failing that, the active agent
whose email is the one on their Slack profile (users.info, which needs the `users:read.email`
scope — https://api.slack.com/methods/users.info), and that match is remembered on the
agent. Anyone else is unknown: the caller tells them so in an ephemeral message.
"""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from tortoise.exceptions import IntegrityError

from handoff.models import Agent

log = logging.getLogger(__name__)

UNKNOWN_USER_TEXT = (
    "I couldn't match your Slack account to a handoff agent, so nothing was sent to the customer. "
    "Ask an admin to add you with the same email address as your Slack profile "
    "(`handoff agents add --name … --email …`)."
)


async def agent_for(client: AsyncWebClient, slack_user_id: str) -> Agent | None:
    """The active Agent behind a Slack user, or None when there is none."""
    if not slack_user_id:
        return None
    agent = await Agent.get_or_none(slack_user_id=slack_user_id)
    if agent is not None:
        return agent if agent.is_active else None
    try:
        response = await client.users_info(user=slack_user_id)
    except SlackApiError as error:
        log.warning("users.info %s failed: %s", slack_user_id, error.response.get("error"))
        return None
    user = response.get("user") or {}
    if user.get("is_bot") or user.get("deleted"):
        return None
    email = ((user.get("profile") or {}).get("email") or "").strip()
    if not email:
        return None
    agent = await Agent.filter(email__iexact=email, is_active=True).first()
    if agent is None:
        return None
    if agent.slack_user_id is None:
        agent.slack_user_id = slack_user_id
        try:
            await agent.save(update_fields=["slack_user_id"])
        except IntegrityError:
            log.warning("slack user %s already mapped to another agent", slack_user_id)
            return None
    elif agent.slack_user_id != slack_user_id:
        # The agent is bound to a different Slack account: don't let a second one act for them.
        return None
    return agent


def mention(agent: object) -> str:
    """How to name an agent in Slack: their name, with an @mention when we know their Slack id."""
    if agent is None:
        return "someone else"
    if isinstance(agent, dict):
        slack_id, name = agent.get("slack_user_id"), agent.get("name")
    elif isinstance(agent, str):
        slack_id, name = None, agent
    else:
        slack_id, name = getattr(agent, "slack_user_id", None), getattr(agent, "name", None)
    label = str(name or "someone else")
    return f"{label} (<@{slack_id}>)" if slack_id else label
