"""Files an agent attaches to a ticket's Slack thread, copied into the media store for the customer.

A thread reply with files arrives as a `message` event of subtype `file_share`
(https://api.slack.com/events/message/file_share) whose `files` are file objects
(https://api.slack.com/types/file) — partial ones (`file_access: check_file_info`) in some
channels. So each file is looked up with files.info (bot scope `files:read`) and its
`url_private_download` fetched with the bot token as a Bearer header, size-limited while
streaming. The token is only sent to Slack's own hosts (or SLACK_API_BASE's host, for tests).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
from slack_sdk.errors import SlackApiError

from handoff.media import CHUNK_BYTES, StoredFile, UploadError, attachment_json

if TYPE_CHECKING:
    from handoff.desk.slack import SlackIntegration
    from handoff.models import Agent

MAX_FILES = 10
DOWNLOAD_TIMEOUT = aiohttp.ClientTimeout(total=120, sock_connect=10)


class NotCopied(Exception):
    """One Slack file could not be copied; the message says why, for the agent."""


@dataclass
class Copied:
    """The attachments copied from Slack, and a line for each file that was not."""

    attachments: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


async def files_for_reply(slack: SlackIntegration, files: list[dict[str, Any]], agent: Agent,
                          tell: Callable[[str], Awaitable[None]]) -> list[dict[str, Any]]:
    """The reply's Slack files as attachments; the agent is told which ones could not be sent."""
    copied = await copy_files(slack, files, {"agent_id": agent.id})
    if copied.problems:
        await tell("Not sent to the customer: " + "; ".join(copied.problems) + ".")
    return copied.attachments


async def copy_files(slack: SlackIntegration, files: list[dict[str, Any]], owner: dict[str, Any]) -> Copied:
    """Each Slack file into the media store, owned by `owner`."""
    copied = Copied()
    media = slack.rt.media
    async with aiohttp.ClientSession(timeout=DOWNLOAD_TIMEOUT) as http:
        for item in files[:MAX_FILES]:
            name = str(item.get("name") or item.get("id") or "a file")
            try:
                stored = await _copy(slack, http, str(item.get("id") or ""), owner)
            except NotCopied as reason:
                copied.problems.append(f"{name} ({reason})")
                continue
            copied.attachments.append(attachment_json(media.attach(stored)))
    if len(files) > MAX_FILES:
        copied.problems.append(f"{len(files) - MAX_FILES} more files (at most {MAX_FILES} per reply)")
    return copied


async def _copy(slack: SlackIntegration, http: aiohttp.ClientSession, file_id: str,
                owner: dict[str, Any]) -> StoredFile:
    media = slack.rt.media
    try:
        info = (await slack.client.files_info(file=file_id)).get("file") or {}
    except SlackApiError as error:
        raise NotCopied(f"Slack said {error.response.get('error')}") from None
    url = str(info.get("url_private_download") or info.get("url_private") or "")
    if not trusted_file_url(url, slack.api_base):
        raise NotCopied("it is not stored in Slack")  # external files (Google Drive...) have no Slack download
    size = info.get("size")
    if isinstance(size, int) and size > media.max_bytes:
        raise NotCopied(f"larger than {media.max_bytes // (1024 * 1024)} MB")
    try:
        async with http.get(url, headers={"Authorization": f"Bearer {slack.client.token}"}) as response:
            if response.status != 200:
                raise NotCopied(f"the download failed with HTTP {response.status}")
            mimetype = str(info.get("mimetype") or response.content_type)
            if response.content_type == "text/html" and mimetype != "text/html":
                # Slack answers a download it refuses with its sign-in page and HTTP 200.
                raise NotCopied("Slack refused the download; does the app have the files:read scope?")
            return await media.save(response.content.iter_chunked(CHUNK_BYTES), content_type=mimetype,
                                    filename=str(info.get("name") or "file"), owner=owner)
    except UploadError:
        raise NotCopied(f"larger than {media.max_bytes // (1024 * 1024)} MB") from None
    except (aiohttp.ClientError, asyncio.TimeoutError) as error:
        raise NotCopied(f"the download failed: {type(error).__name__}") from None


def trusted_file_url(url: str, api_base: str = "") -> bool:
    """True for a URL the bot token may be sent to: Slack's HTTPS hosts, or the configured API host."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme == "https" and (host == "slack.com" or host.endswith(".slack.com")):
        return True
    if not api_base:
        return False
    base = urlsplit(api_base)
    return (parts.scheme, parts.hostname, parts.port) == (base.scheme, base.hostname, base.port) and bool(host)
