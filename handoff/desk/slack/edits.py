"""Edits and deletions, in Slack, of thread replies handoff already relayed to the customer.

A message sent on the customer's channel cannot be changed or taken back from Slack, so the
edit is not relayed: the agent who wrote the reply is told, in an ephemeral message in the
thread (https://api.slack.com/methods/chat.postEphemeral), that the customer keeps the
original, what it says, and to send a new reply to correct it. Events follow
https://api.slack.com/events/message/message_changed and /events/message/message_deleted;
messages handoff did not relay (notes, replies that were refused, anyone else's) are ignored.
"""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

from handoff.desk.slack import blocks, payloads, threads
from handoff.models import Message

if TYPE_CHECKING:
    from handoff.desk.slack import SlackIntegration

log = logging.getLogger(__name__)

SUBTYPES = {"message_changed", "message_deleted"}
QUOTE_CHARS = 300
CORRECT_IT = "To correct it, send a new reply in this thread."


async def on_edit(slack: SlackIntegration, body: dict[str, Any], event: dict[str, Any]) -> None:
    """Tell the author of a relayed reply that their edit or deletion did not reach the customer."""
    team = str(body.get("team_id") or slack.team_id)
    edited: str | None = None  # the text the message now has; None for a deletion
    if event.get("subtype") == "message_changed":
        change = payloads.parse(payloads.MessageChanged, event, "event")
        if change is None:
            return
        channel, ts, thread_ts = change.channel, change.message.ts, change.message.thread_ts
        edited = change.message.text
    else:
        deletion = payloads.parse(payloads.MessageDeleted, event, "event")
        if deletion is None:
            return
        channel, ts = deletion.channel, deletion.deleted_ts
        thread_ts = deletion.previous_message.thread_ts if deletion.previous_message else None
    async with AsyncExitStack() as stack:
        if thread_ts:  # after the reply itself has been handled, when both arrive at once
            await stack.enter_async_context(slack.thread_lock(channel, thread_ts))
        reply = await threads.relayed(team, channel, ts)
        if reply is None:
            return
        if edited is not None:
            if edited == reply.text:
                return  # Slack also sends message_changed for link previews and edits back to the original
            text = (f"Edits in Slack don't reach the customer: they have your reply as first sent, "
                    f"{await _quote(reply)}. {CORRECT_IT}")
        else:
            text = (f"Deleting a reply in Slack doesn't unsend it: the customer still has "
                    f"{await _quote(reply)}. {CORRECT_IT}")
        await slack.ephemeral(channel, reply.user, text, thread_ts=reply.thread_ts)


async def _quote(reply: threads.RelayedReply) -> str:
    """What the customer got, quoted for Slack (the stored text, shortened)."""
    message = await Message.get_or_none(id=reply.message_id)
    if message is None or not message.text.strip():
        return "your original message" if message is None else "the files you sent"
    text = message.text if len(message.text) <= QUOTE_CHARS else message.text[:QUOTE_CHARS - 1] + "…"
    return f"“{blocks.escape(text)}”"
