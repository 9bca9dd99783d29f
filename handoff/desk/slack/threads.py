"""The durable map between tickets and Slack threads, kept in the `KeyValue` model.

Each ticket is one thread in the configured Slack channel. A thread is identified the way
Slack identifies it — (team, channel, thread_ts), the ts of the root message
(https://api.slack.com/messaging/managing#threading) — and looked up both ways: a thread
reply finds its ticket, a ticket event finds the thread to post into or the root to update.
Each thread reply relayed to the customer is remembered by its own (team, channel, ts), so an
edit or deletion of it in Slack can be recognised. Each timeline message posted into a thread is
remembered by its message id with the (channel, ts) of its post and which version of the message
the post shows, so a customer's later edit or unsend can update that post
(https://api.slack.com/methods/chat.update).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from tortoise.exceptions import IntegrityError

from handoff.models import KeyValue

THREAD_SCOPE = "slack.thread"
TICKET_SCOPE = "slack.ticket"
ROOT_SCOPE = "slack.root"
RELAYED_SCOPE = "slack.relayed"
MIRRORED_SCOPE = "slack.mirrored"
HISTORY_SCOPE = "slack.history"


@dataclass(frozen=True)
class SlackThread:
    """One ticket's thread: where its root message lives."""

    team: str
    channel: str
    ts: str
    ticket_id: int
    conversation_id: int

    @property
    def key(self) -> str:
        """The (team, channel, thread_ts) key as one string."""
        return thread_key(self.team, self.channel, self.ts)


def thread_key(team: str, channel: str, thread_ts: str) -> str:
    """The KeyValue key of a thread."""
    return f"{team}:{channel}:{thread_ts}"


def _from_value(value: dict) -> SlackThread:
    return SlackThread(
        team=value["team"],
        channel=value["channel"],
        ts=value["ts"],
        ticket_id=int(value["ticket_id"]),
        conversation_id=int(value["conversation_id"]),
    )


async def remember(thread: SlackThread) -> None:
    """Store the thread of a ticket (idempotent: a second store of the same ticket keeps the first)."""
    value = {
        "team": thread.team,
        "channel": thread.channel,
        "ts": thread.ts,
        "ticket_id": thread.ticket_id,
        "conversation_id": thread.conversation_id,
    }
    try:
        await KeyValue.create(scope=THREAD_SCOPE, key=thread.key, value=value)
    except IntegrityError:
        pass
    try:
        await KeyValue.create(scope=TICKET_SCOPE, key=str(thread.ticket_id), value=value)
    except IntegrityError:
        pass


async def by_thread(team: str, channel: str, thread_ts: str) -> SlackThread | None:
    """The ticket thread with this root, or None for a thread we did not start."""
    row = await KeyValue.get_or_none(scope=THREAD_SCOPE, key=thread_key(team, channel, thread_ts))
    return _from_value(row.value) if row else None


async def by_ticket(ticket_id: int) -> SlackThread | None:
    """The thread of a ticket, or None when its root message is not posted yet."""
    row = await KeyValue.get_or_none(scope=TICKET_SCOPE, key=str(ticket_id))
    return _from_value(row.value) if row else None


@dataclass(frozen=True)
class RelayedReply:
    """A Slack thread reply handoff sent to the customer: its thread, author, Slack text and message."""

    thread_ts: str
    user: str
    text: str
    message_id: int


async def remember_relayed(thread: SlackThread, ts: str, reply: RelayedReply) -> None:
    """Remember that the thread reply `ts` was relayed as `reply.message_id` (idempotent)."""
    value = {"thread_ts": reply.thread_ts, "user": reply.user, "text": reply.text, "message_id": reply.message_id}
    try:
        await KeyValue.create(scope=RELAYED_SCOPE, key=thread_key(thread.team, thread.channel, ts), value=value)
    except IntegrityError:
        pass


async def relayed(team: str, channel: str, ts: str) -> RelayedReply | None:
    """The relayed reply Slack knows as (team, channel, ts), or None for any other message."""
    row = await KeyValue.get_or_none(scope=RELAYED_SCOPE, key=thread_key(team, channel, ts))
    if row is None:
        return None
    value = row.value
    return RelayedReply(str(value["thread_ts"]), str(value["user"]), str(value["text"]), int(value["message_id"]))


@dataclass(frozen=True)
class MirroredPost:
    """The thread post of one timeline message: where it is and which version of the message it shows
    ("" as first posted, the ISO 8601 `edited_at` of an edit, or "deleted")."""

    message_id: int
    channel: str
    ts: str
    shown: str


async def remember_mirrored(post: MirroredPost) -> None:
    """Record (or move on) what the post of `post.message_id` shows; never the message's text."""
    await KeyValue.update_or_create(scope=MIRRORED_SCOPE, key=str(post.message_id),
                                    defaults={"value": {"channel": post.channel, "ts": post.ts, "shown": post.shown}})


async def mirrored_posts(message_ids: list[int]) -> dict[int, MirroredPost]:
    """The recorded thread posts of these messages, by message id (one query; messages posted
    before posts were recorded, or never posted, are absent)."""
    rows = await KeyValue.filter(scope=MIRRORED_SCOPE, key__in=[str(i) for i in message_ids])
    return {int(row.key): MirroredPost(int(row.key), str(row.value["channel"]), str(row.value["ts"]),
                                       str(row.value.get("shown") or "")) for row in rows}


@dataclass(frozen=True)
class HistoryPost:
    """A ticket's "Conversation so far" post: where it is, and the version of each message it shows
    (by message id, as in `MirroredPost.shown`)."""

    channel: str
    ts: str
    shown: dict[int, str]


async def remember_history(ticket_id: int, post: HistoryPost) -> None:
    """Record (or move on) what the ticket's "Conversation so far" post shows; never a message's text."""
    value = {"channel": post.channel, "ts": post.ts, "shown": {str(i): v for i, v in post.shown.items()}}
    await KeyValue.update_or_create(scope=HISTORY_SCOPE, key=str(ticket_id), defaults={"value": value})


def _history_from(value: dict) -> HistoryPost:
    return HistoryPost(str(value["channel"]), str(value["ts"]), {int(i): str(v) for i, v in value["shown"].items()})


async def history_post(ticket_id: int) -> HistoryPost | None:
    """The ticket's "Conversation so far" post, or None when it has none (or it was posted before
    these posts were recorded)."""
    row = await KeyValue.get_or_none(scope=HISTORY_SCOPE, key=str(ticket_id))
    return _history_from(row.value) if row else None


async def histories_showing(ticket_ids: list[int], message_id: int) -> list[int]:
    """Which of these tickets' "Conversation so far" posts show the message (one query)."""
    rows = await KeyValue.filter(scope=HISTORY_SCOPE, key__in=[str(i) for i in ticket_ids])
    return [int(row.key) for row in rows if message_id in _history_from(row.value).shown]


async def with_threads(ticket_ids: list[int]) -> set[int]:
    """Which of these tickets have a thread (one query)."""
    keys = await KeyValue.filter(scope=TICKET_SCOPE, key__in=[str(i) for i in ticket_ids]).values_list("key", flat=True)
    return {int(key) for key in keys}


def root_digest(text: str, root_blocks: list) -> str:
    """A fingerprint of what a root message shows."""
    return hashlib.sha256(json.dumps([text, root_blocks], sort_keys=True).encode()).hexdigest()


async def shown_root(ticket_id: int) -> str | None:
    """The fingerprint of the root message last posted for the ticket."""
    row = await KeyValue.get_or_none(scope=ROOT_SCOPE, key=str(ticket_id))
    return (row.value or {}).get("digest") if row else None


async def remember_root(ticket_id: int, digest: str) -> None:
    """Record what the ticket's root message now shows."""
    await KeyValue.update_or_create(scope=ROOT_SCOPE, key=str(ticket_id), defaults={"value": {"digest": digest}})
