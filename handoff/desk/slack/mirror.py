"""Mirror the desk into Slack: live hub events become durable post jobs, jobs become Slack posts.

A new ticket becomes a root message (Block Kit, see `blocks.py`) in the configured channel,
followed by the conversation so far; ticket changes and the AI summary update that root
(https://api.slack.com/methods/chat.update); timeline messages of the ticket are posted into
its thread (https://api.slack.com/methods/chat.postMessage with `thread_ts`).

Posting a thread is a *sync*: every message of the ticket not yet marked mirrored is posted,
in order, then marked. A live event only asks for a sync, so a lost event (a lagging
subscriber, a restart between commit and enqueue, another instance's event) is repaired by the
next sync, and two syncs never post a message twice. Replies that agents wrote in Slack
(`Message.origin == "slack"`) are marked without being posted back. A note's line ends with the
Slack mentions of the agents it @mentions (`mentions.py`).

A sync also brings posted messages up to date: each post's (channel, ts) is recorded with the
version of the message it shows (`threads.MirroredPost`), and a message the customer edited or
unsent since (`handoff.changes`) has its post replaced with chat.update — the unsend notice, with no
trace of the text or files (Meta's platform policy asks apps to honour deletions), or the new text
marked "(edited)". The ticket's "Conversation so far" post (the messages from before the ticket)
is brought up to date the same way. The `message.updated` event of such a change becomes a
durable "change" job, which syncs the threads that show the message; a sync reads the current
rows, so a message changed before it was posted is posted as it is now, and a change whose event
was lost is caught up with by the next sync of its thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError
from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q

from handoff.desk.slack import blocks, threads
from handoff.desk.slack.mentions import with_mentions
from handoff.desk.slack.poster import Job
from handoff.events import EventKind, message_json
from handoff.models import Message, ProcessedKey, Ticket, utcnow

if TYPE_CHECKING:
    from handoff.desk.slack import SlackIntegration

log = logging.getLogger(__name__)

MIRRORED_SCOPE = "slack.mirrored"
HISTORY_TURNS = 12
CATCH_UP_HOURS = 24
# chat.postMessage errors about the message itself (https://api.slack.com/methods/chat.postMessage#errors).
MESSAGE_ERRORS = {"msg_too_long", "msg_blocks_too_long", "no_text", "invalid_blocks", "invalid_attachments",
                  "too_many_attachments"}
# chat.update errors that no retry can overcome for this post (https://api.slack.com/methods/chat.update#errors):
# a post someone deleted in Slack shows nothing any more, which honours an unsend as well.
UPDATE_ERRORS = MESSAGE_ERRORS | {"message_not_found", "cant_update_message", "edit_window_closed"}


class Mirror:
    """Turns hub events into post jobs and performs them through the Slack client."""

    def __init__(self, slack: SlackIntegration) -> None:
        self.slack = slack

    # -- hub events -> jobs --------------------------------------------------------------
    async def on_event(self, event: dict[str, Any]) -> None:
        """Queue the Slack posts one live event calls for."""
        kind = event.get("kind")
        if kind == EventKind.TICKET_CREATED:
            ticket_id = _ticket_id(event)
            if ticket_id is not None:
                await self.slack.poster.enqueue({"op": "root", "ticket_id": ticket_id, "channel": self.slack.channel},
                                                key=f"root:{ticket_id}")
        elif kind in (EventKind.TICKET_UPDATED, EventKind.TICKET_SUMMARY):
            ticket_id = _ticket_id(event)
            if ticket_id is not None:
                await self.request_update(ticket_id)
        elif kind == EventKind.MESSAGE_CREATED:
            message = event.get("message") or {}
            ticket_id = event.get("ticket_id") or message.get("ticket_id")
            if ticket_id is not None:
                await self.request_sync(int(ticket_id))
        elif kind == EventKind.MESSAGE_UPDATED and ("deleted" in event or "edited_at" in event):
            await self.request_change(event.get("message_id"))
        elif kind == EventKind.STREAM_LAGGED:
            await self.catch_up()

    async def request_update(self, ticket_id: int, *, if_stale: bool = False) -> None:
        """Queue a refresh of the ticket's root message; `if_stale`: only when it shows something
        other than the ticket's current state (a catch-up must not re-post every root)."""
        await self.slack.poster.enqueue(
            {"op": "update", "ticket_id": ticket_id, "channel": self.slack.channel, "if_stale": if_stale},
            key=f"update:{ticket_id}:{uuid.uuid4().hex}")

    async def request_sync(self, ticket_id: int) -> None:
        """Queue a sync of the ticket's thread."""
        await self.slack.poster.enqueue({"op": "sync", "ticket_id": ticket_id, "channel": self.slack.channel},
                                        key=f"sync:{ticket_id}:{uuid.uuid4().hex}")

    async def request_change(self, message_id: Any) -> None:
        """Queue the update of the posts that show a message the customer edited or unsent."""
        if isinstance(message_id, int):
            await self.slack.poster.enqueue({"op": "change", "message_id": message_id, "channel": self.slack.channel},
                                            key=f"change:{message_id}:{uuid.uuid4().hex}")

    async def catch_up(self) -> int:
        """After a restart or lost events: sync and refresh every thread of a ticket that is open or
        was closed recently, and start the thread of an open ticket that has none; returns how many
        tickets were queued."""
        since = utcnow() - timedelta(hours=CATCH_UP_HOURS)
        tickets = await Ticket.filter(Q(closed_at__isnull=True) | Q(closed_at__gte=since)).values_list("id", "closed_at")
        threaded = await threads.with_threads([int(ticket_id) for ticket_id, _ in tickets])
        queued = 0
        for ticket_id, closed_at in tickets:
            has_thread = int(ticket_id) in threaded
            if not has_thread and closed_at is not None:
                continue
            await self.request_sync(int(ticket_id))  # posts the root first when the ticket has no thread
            if has_thread:
                await self.request_update(int(ticket_id), if_stale=True)
            queued += 1
        return queued

    # -- jobs -> Slack -------------------------------------------------------------------
    async def perform(self, job: Job) -> None:
        """Perform one stored job (called by the poster, in order)."""
        op = job.get("op")
        if op == "root":
            await self.ensure_root(int(job["ticket_id"]))
        elif op == "update":
            await self._update(job)
        elif op in ("sync", "line"):  # "line": a job stored by an earlier version
            await self._sync(job)
        elif op == "change":
            await self._change(job)
        else:
            log.warning("unknown slack job %r", job)

    async def card(self, ticket_id: int) -> blocks.TicketCard | None:
        """The current state of a ticket as its root message shows it."""
        ticket = await Ticket.get_or_none(id=ticket_id).prefetch_related("assignee", "conversation__contact")
        if ticket is None:
            return None
        conversation = ticket.conversation
        contact = conversation.contact
        return blocks.TicketCard(
            ticket_id=ticket.id,
            conversation_id=conversation.id,
            subject=ticket.subject,
            summary=ticket.summary,
            customer=contact.name or contact.email or conversation.contact_external_id,
            channel=ticket.channel,
            status=ticket.status,
            assignee=ticket.assignee.name if ticket.assignee else None,
            conversation_state=conversation.state,
        )

    async def ensure_root(self, ticket_id: int, card: blocks.TicketCard | None = None) -> threads.SlackThread | None:
        """The ticket's thread, posting its root message (and the conversation so far) first if needed."""
        thread = await threads.by_ticket(ticket_id)
        if thread is not None:
            return thread
        card = card or await self.card(ticket_id)
        if card is None:
            return None
        text, root_blocks = blocks.root_message(card)
        await self.slack.poster.pace(self.slack.channel)
        response = await self.slack.client.chat_postMessage(
            channel=self.slack.channel, text=text, blocks=root_blocks, unfurl_links=False
        )
        thread = threads.SlackThread(
            team=self.slack.team_id, channel=response["channel"], ts=response["ts"],
            ticket_id=ticket_id, conversation_id=card.conversation_id,
        )
        await threads.remember(thread)
        await threads.remember_root(ticket_id, threads.root_digest(text, root_blocks))
        rows = await self._history_rows(card)
        if rows:
            await self.slack.poster.pace(self.slack.channel)
            response = await self.slack.client.chat_postMessage(
                channel=thread.channel, thread_ts=thread.ts, text=_history_text(rows, card), unfurl_links=False
            )
            await threads.remember_history(ticket_id, threads.HistoryPost(
                str(response["channel"]), str(response["ts"]), {row.id: _version(message_json(row)) for row in rows}))
        return thread

    async def _history_rows(self, card: blocks.TicketCard) -> list[Message]:
        """The conversation's last messages before the ticket, as its "Conversation so far" shows them."""
        rows = await Message.filter(conversation_id=card.conversation_id, ticket_id__isnull=True,
                                    private=False).order_by("-id").limit(HISTORY_TURNS)
        return [row for row in reversed(rows) if row.direction != "activity" and not row.notice]

    async def _refresh_history(self, ticket_id: int, card: blocks.TicketCard) -> None:
        """Make the ticket's "Conversation so far" post show its messages as they are now, when the
        customer edited or unsent one of them since it was posted (chat.update)."""
        post = await threads.history_post(ticket_id)
        if post is None:
            return
        changed = await Message.filter(Q(edited_at__isnull=False) | Q(deleted_at__isnull=False),
                                       id__in=list(post.shown)).values_list("id", flat=True)
        if not changed:
            return
        rows = await Message.filter(id__in=list(post.shown)).order_by("id")
        shown = {row.id: _version(message_json(row)) for row in rows}
        if shown == {i: v for i, v in post.shown.items() if i in shown}:
            return
        await self.slack.poster.pace(post.channel)
        try:
            await self.slack.client.chat_update(channel=post.channel, ts=post.ts, text=_history_text(rows, card),
                                                blocks=[], attachments=[])
        except SlackApiError as error:
            if error.response.get("error") not in UPDATE_ERRORS:
                raise  # retried with the sync
            log.warning("slack refused to update the history of ticket %s (%s); left as it is",
                        ticket_id, error.response.get("error"))
        await threads.remember_history(ticket_id, dataclasses.replace(post, shown=shown))

    async def _update(self, job: Job) -> None:
        ticket_id = int(job["ticket_id"])
        if await self.slack.poster.later_exists(f"update:{ticket_id}:", int(job.get("_id", 0))):
            return
        thread = await threads.by_ticket(ticket_id)
        card = await self.card(ticket_id)
        if thread is None or card is None:
            return
        text, root_blocks = blocks.root_message(card)
        digest = threads.root_digest(text, root_blocks)
        if job.get("if_stale") and await threads.shown_root(ticket_id) == digest:
            return  # the root already shows this: spare Slack's rate limit
        await self.slack.poster.pace(thread.channel)
        await self.slack.client.chat_update(channel=thread.channel, ts=thread.ts, text=text, blocks=root_blocks)
        await threads.remember_root(ticket_id, digest)

    async def _sync(self, job: Job) -> None:
        ticket_id = int(job["ticket_id"])
        if await self.slack.poster.later_exists(f"sync:{ticket_id}:", int(job.get("_id", 0))):
            return  # a later sync of this thread is queued: it posts everything this one would
        card = await self.card(ticket_id)
        thread = await self.ensure_root(ticket_id, card) if card is not None else None
        if thread is None or card is None:
            return
        await self._refresh_history(ticket_id, card)
        rows = await Message.filter(ticket_id=ticket_id).order_by("id").prefetch_related("agent")
        keys = [str(row.id) for row in rows]
        done = set(await ProcessedKey.filter(scope=MIRRORED_SCOPE, key__in=keys).values_list("key", flat=True))
        posts = await threads.mirrored_posts([row.id for row in rows])
        for row in rows:
            post = posts.get(row.id)
            if post is not None and (row.edited_at or row.deleted_at):
                await self._refresh(post, row, card)
            if str(row.id) in done:
                continue
            if post is None:  # a recorded post whose mark was lost to a crash is not posted again
                await self._post(thread, row, card)
            with contextlib.suppress(IntegrityError):  # another sync marked it meanwhile
                await ProcessedKey.create(scope=MIRRORED_SCOPE, key=str(row.id))

    async def _post(self, thread: threads.SlackThread, row: Message, card: blocks.TicketCard) -> None:
        """Post one timeline message into the ticket's thread and record its post."""
        message = _line_json(row)
        line = None if row.origin == "slack" else blocks.thread_line(message, card.customer)
        if not line:
            return
        line = await with_mentions(line, message)
        await self.slack.poster.pace(thread.channel)
        try:
            response = await self.slack.client.chat_postMessage(
                channel=thread.channel, thread_ts=thread.ts, text=line, unfurl_links=False
            )
        except SlackApiError as error:
            # Slack refusing this one message must not hold back the rest of the thread;
            # anything else (rate limit, auth, channel) fails the sync, which is retried.
            if error.response.get("error") not in MESSAGE_ERRORS:
                raise
            log.warning("slack refused message %s of ticket %s (%s); skipped",
                        row.id, card.ticket_id, error.response.get("error"))
            return
        await threads.remember_mirrored(threads.MirroredPost(
            row.id, str(response["channel"]), str(response["ts"]), _version(message)))

    async def _change(self, job: Job) -> None:
        """Sync the threads that show a changed message (the event names no ticket: the row says
        which). A ticket with no thread yet gets none for this: its first sync posts the message
        as it is then."""
        row = await Message.get_or_none(id=int(job["message_id"])).values("ticket_id", "conversation_id")
        if row is None:
            return
        if row["ticket_id"] is not None:
            ticket_ids = list(await threads.with_threads([int(row["ticket_id"])]))
        else:  # a message from before any ticket shows in the "Conversation so far" of the tickets after it
            tickets = await Ticket.filter(conversation_id=row["conversation_id"]).values_list("id", flat=True)
            ticket_ids = await threads.histories_showing([int(i) for i in tickets], int(job["message_id"]))
        for ticket_id in ticket_ids:
            await self._sync({"ticket_id": ticket_id, "_id": job.get("_id", 0)})

    async def _refresh(self, post: threads.MirroredPost, row: Message, card: blocks.TicketCard) -> None:
        """Make a posted message's thread post show the message as it is now (chat.update)."""
        message = _line_json(row)
        version = _version(message)
        line = blocks.thread_line(message, card.customer)
        if post.shown == version or not line:
            return
        line = await with_mentions(line, message)
        await self.slack.poster.pace(post.channel)
        try:
            # Empty blocks and attachments: chat.update keeps those of the post otherwise, and
            # Slack's unfurl of a file link is one of them (https://api.slack.com/methods/chat.update).
            await self.slack.client.chat_update(channel=post.channel, ts=post.ts, text=line, blocks=[], attachments=[])
        except SlackApiError as error:
            if error.response.get("error") not in UPDATE_ERRORS:
                raise  # retried with the sync
            log.warning("slack refused to update the post of message %s (%s); left as it is",
                        row.id, error.response.get("error"))
        await threads.remember_mirrored(dataclasses.replace(post, shown=version))


def _line_json(row: Message) -> dict[str, Any]:
    """What `blocks.thread_line` reads of a stored message (with its agent's name)."""
    return message_json(row, {row.agent.id: row.agent} if row.agent else None)


def _history_text(rows: list[Message], card: blocks.TicketCard) -> str:
    """The "Conversation so far" post: who said what, one line each."""
    lines = []
    for row in rows:
        who = blocks.escape(card.customer) if row.direction == "incoming" else (
            "AI" if row.author_kind == "bot" else "Agent")
        lines.append(f"*{who}*: {blocks.shown_text(message_json(row))}")
    return "*Conversation so far*\n" + "\n".join(lines)


def _version(message: dict[str, Any]) -> str:
    """Which version of a message (`message_json` shape) a post shows: see `threads.MirroredPost`."""
    return "deleted" if message.get("deleted") else str(message.get("edited_at") or "")


def _ticket_id(event: dict[str, Any]) -> int | None:
    ticket = event.get("ticket")
    if isinstance(ticket, dict) and ticket.get("id") is not None:
        return int(ticket["id"])
    if event.get("ticket_id") is not None:
        return int(event["ticket_id"])
    return None
