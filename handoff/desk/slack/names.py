"""Names for the users and channels a Slack message mentions, so a relayed reply reads plainly.

A user is named from users.info (https://api.slack.com/methods/users.info): the profile's
`display_name`, else its `real_name`, else the account name; when Slack cannot say, the handoff
agent linked to that Slack user, else `formatting.UNKNOWN_USER`. A channel shown without its
name (`<#C123>`) is named from conversations.info
(https://api.slack.com/methods/conversations.info). Answers are kept in a bounded LRU per
process; a failed call is not kept, so the next message asks again.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from handoff.channels.meta import NameCache
from handoff.desk.slack import formatting
from handoff.models import Agent

log = logging.getLogger(__name__)

# Errors that say the id names nothing we may read (or the app lacks the scope to read it, e.g.
# channels:read for conversations.info): kept as "no name" rather than asked again.
_FINAL_ERRORS = {"user_not_found", "channel_not_found", "not_in_channel", "missing_scope"}


class SlackNames:
    """Looks up and caches display names through the bot's Web API client."""

    def __init__(self, client: AsyncWebClient, maxsize: int = 1000) -> None:
        self.client = client
        self.users = NameCache(maxsize)
        self.channels = NameCache(maxsize)

    async def plain_text(self, text: str) -> str:
        """A Slack message text as the customer should read it (see `formatting.to_plain`)."""
        refs = formatting.references(text)
        user_ids, channel_ids = sorted(refs.users), sorted(refs.channels)
        found = await asyncio.gather(*(self.user(u) for u in user_ids), *(self.channel(c) for c in channel_ids))
        users = {u: name for u, name in zip(user_ids, found) if name}
        channels = {c: name for c, name in zip(channel_ids, found[len(user_ids):]) if name}
        return formatting.to_plain(text, users, channels)

    async def user(self, user_id: str) -> str | None:
        """The Slack user's display name, else their linked agent's name, else None."""
        known, name = self.users.get(user_id)
        if not known:
            name = await self._ask(self.client.users_info, "user", user_id, self.users, _user_name)
        if name:
            return name
        agent = await Agent.get_or_none(slack_user_id=user_id)
        return agent.name if agent else None

    async def channel(self, channel_id: str) -> str | None:
        """The channel's name, or None."""
        known, name = self.channels.get(channel_id)
        if known:
            return name
        return await self._ask(self.client.conversations_info, "channel", channel_id, self.channels,
                               lambda c: str(c.get("name") or "") or None)

    @staticmethod
    async def _ask(method: Any, kind: str, key: str, cache: NameCache, name_of: Any) -> str | None:
        try:
            response = await method(**{kind: key})
        except SlackApiError as error:
            code = error.response.get("error")
            log.info("no name for slack %s %s: %s", kind, key, code)
            if code in _FINAL_ERRORS:
                cache.put(key, None)
            return None
        found = response.get(kind)
        name = name_of(found) if isinstance(found, dict) else None
        cache.put(key, name)
        return name


def _user_name(user: dict[str, Any]) -> str | None:
    profile = user.get("profile") if isinstance(user.get("profile"), dict) else {}
    for value in (profile.get("display_name"), profile.get("real_name"), user.get("real_name"), user.get("name")):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None
