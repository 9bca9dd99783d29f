"""Mirror the desk into Slack: live hub events become durable post jobs, jobs become Slack posts.

A new ticket becomes a root message (Block Kit, see `blocks.py`) in the configured channel,
followed by the conversation so far; ticket changes and the AI summary update that root
(https://api.slack.com/methods/chat.update); timeline messages of the ticket are posted into
its thread (https://api.slack.com/methods/chat.postMessage with `thread_ts`). Replies that
agents wrote in Slack are not posted back (they are already there).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from typing import TYPE_CHECKING, Any

from tortoise.exceptions import IntegrityError

from handoff.desk.slack import blocks, threads
from handoff.desk.slack.poster import Job
from handoff.models import Message, ProcessedKey, Ticket

if TYPE_CHECKING:
    from handoff.desk.slack import SlackIntegration

log = logging.getLogger(__name__)

ECHO_SCOPE = "slack.echo"
HISTORY_TURNS = 12


class Mirror:
    """Turns hub events into post jobs and performs them through the Slack client."""

    def __init__(self, slack: SlackIntegration) -> None:
        self.slack = slack
        self._locks: dict[int, asyncio.Lock] = defaultdict(asyncio.Lock)

    def ticket_lock(self, ticket_id: int) -> asyncio.Lock:
        """Held while a Slack reply on this ticket is written, so its echo is recognised."""
        return self._locks[ticket_id]

    async def mark_from_slack(self, message_id: int) -> None:
        """Remember that this timeline message came from Slack (it must not be posted back)."""
        try:
            await ProcessedKey.create(scope=ECHO_SCOPE, key=str(message_id))
        except IntegrityError:
            pass

    # -- hub events -> jobs --------------------------------------------------------------
    async def on_event(self, event: dict[str, Any]) -> None:
        """Queue the Slack posts one live event calls for."""
        kind = event.get("kind")
        channel = self.slack.channel
        if kind == "ticket.created":
            ticket_id = _ticket_id(event)
            if ticket_id is not None:
                await self.slack.poster.enqueue({"op": "root", "ticket_id": ticket_id, "channel": channel},
                                                key=f"root:{ticket_id}")
        elif kind in ("ticket.updated", "ticket.summary"):
            ticket_id = _ticket_id(event)
            if ticket_id is not None:
                await self.slack.poster.enqueue({"op": "update", "ticket_id": ticket_id, "channel": channel},
                                                key=f"update:{ticket_id}:{uuid.uuid4().hex}")
        elif kind == "message.created":
            message = event.get("message") or {}
            ticket_id = event.get("ticket_id") or message.get("ticket_id")
            message_id = message.get("id")
            if ticket_id is None or message_id is None:
                return
            await self.slack.poster.enqueue(
                {"op": "line", "ticket_id": int(ticket_id), "message": message, "channel": channel},
                key=f"msg:{message_id}",
            )

    # -- jobs -> Slack -------------------------------------------------------------------
    async def perform(self, job: Job) -> None:
        """Perform one stored job (called by the poster, in order)."""
        op = job.get("op")
        if op == "root":
            await self.ensure_root(int(job["ticket_id"]))
        elif op == "update":
            await self._update(job)
        elif op == "line":
            await self._line(job)
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

    async def ensure_root(self, ticket_id: int) -> threads.SlackThread | None:
        """The ticket's thread, posting its root message (and the conversation so far) first if needed."""
        thread = await threads.by_ticket(ticket_id)
        if thread is not None:
            return thread
        card = await self.card(ticket_id)
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
        history = await self._history(card)
        if history:
            await self.slack.poster.pace(self.slack.channel)
            await self.slack.client.chat_postMessage(
                channel=thread.channel, thread_ts=thread.ts, text=history, unfurl_links=False
            )
        return thread

    async def _history(self, card: blocks.TicketCard) -> str:
        rows = await Message.filter(conversation_id=card.conversation_id, ticket_id__isnull=True,
                                    private=False).order_by("-id").limit(HISTORY_TURNS)
        lines = []
        for row in reversed(rows):
            if row.direction == "activity" or row.notice:
                continue
            who = blocks.escape(card.customer) if row.direction == "incoming" else (
                "AI" if row.author_kind == "bot" else "Agent")
            lines.append(f"*{who}*: {blocks.escape(row.text)}")
        return "*Conversation so far*\n" + "\n".join(lines) if lines else ""

    async def _update(self, job: Job) -> None:
        ticket_id = int(job["ticket_id"])
        if await self.slack.poster.later_exists(f"update:{ticket_id}:", int(job.get("_id", 0))):
            return
        thread = await threads.by_ticket(ticket_id)
        card = await self.card(ticket_id)
        if thread is None or card is None:
            return
        text, root_blocks = blocks.root_message(card)
        await self.slack.poster.pace(thread.channel)
        await self.slack.client.chat_update(channel=thread.channel, ts=thread.ts, text=text, blocks=root_blocks)

    async def _line(self, job: Job) -> None:
        ticket_id = int(job["ticket_id"])
        message = job.get("message") or {}
        async with self.ticket_lock(ticket_id):
            if await ProcessedKey.exists(scope=ECHO_SCOPE, key=str(message.get("id"))):
                return
        thread = await self.ensure_root(ticket_id)
        card = await self.card(ticket_id)
        if thread is None or card is None:
            return
        line = blocks.thread_line(message, card.customer)
        if not line:
            return
        await self.slack.poster.pace(thread.channel)
        await self.slack.client.chat_postMessage(
            channel=thread.channel, thread_ts=thread.ts, text=line, unfurl_links=False
        )


def _ticket_id(event: dict[str, Any]) -> int | None:
    ticket = event.get("ticket")
    if isinstance(ticket, dict) and ticket.get("id") is not None:
        return int(ticket["id"])
    if event.get("ticket_id") is not None:
        return int(event["ticket_id"])
    return None
