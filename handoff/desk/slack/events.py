"""Events API handling: a dispatch table from event type to handler.

Follows https://api.slack.com/apis/events-api. `url_verification` is answered with its
challenge; an `event_callback` is deduplicated on `event_id` (Slack redelivers with
X-Slack-Retry-Num when it did not get a 2xx within 3 s) and acknowledged at once, its work
spawned after the ack. The only event that does anything is a message in a ticket's thread
(https://api.slack.com/events/message): a reply by a person becomes an agent reply to the
customer, or an internal note when it starts with `note:`. A reply (or note) starting with
`/<short_code>` is that canned response, filled in (`handoff.canned`); an unknown one sends
nothing and tells the agent. Slack's client takes a message starting with `/` for a slash
command, so agents type a space before it (` /shipping`), as Slack itself suggests. Files on a reply (subtype
`file_share`) are copied from Slack and sent with it (see files.py); where the customer's
channel cannot show files they get links, and the agent is told. The text is decoded from
Slack's formatting first (links, mentions, entities: see formatting.py and names.py). An edit
or deletion of a relayed reply gets the agent an ephemeral reminder that the customer keeps
the original (edits.py). Bot messages, our own posts and other subtypes are dropped; a
malformed event is a logged skip, still acknowledged 200 so Slack does not redeliver it.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from tortoise.exceptions import IntegrityError

from handoff import canned, errors, transitions
from handoff.desk.slack import agents, edits, files, payloads, threads
from handoff.models import Conversation, ProcessedKey, Ticket
from handoff.states import ConversationState, TicketStatus

if TYPE_CHECKING:
    from handoff.desk.slack import SlackIntegration

log = logging.getLogger(__name__)

EVENT_SCOPE = "slack.event"
NOTE_PREFIX = re.compile(r"^\s*note:\s*", re.IGNORECASE)
# Subtypes that are still a person writing in the thread; everything else (edits, joins, bots) is dropped.
PERSON_SUBTYPES = {None, "thread_broadcast", "file_share"}

Handler = Callable[["SlackIntegration", dict[str, Any], dict[str, Any]], Awaitable[None]]


async def handle_body(slack: SlackIntegration, body: dict[str, Any], retry_num: int | None = None) -> dict[str, Any]:
    """Acknowledge one Events API body (from HTTP or Socket Mode); the work runs after the ack."""
    kind = body.get("type")
    if kind == "url_verification":
        return {"challenge": str(body.get("challenge", ""))}
    if kind != "event_callback":
        log.info("ignoring slack body of type %r", kind)
        return {"ok": True}
    event = body.get("event") or {}
    if not isinstance(event, dict):
        payloads.skip("event", "event is not an object")
        return {"ok": True}
    event_id = str(body.get("event_id") or "")
    if not event_id:
        log.info("slack event without event_id ignored")
        return {"ok": True}
    try:
        await ProcessedKey.create(scope=EVENT_SCOPE, key=event_id)
    except IntegrityError:
        log.info("duplicate slack event %s (retry %s) ignored", event_id, retry_num)
        return {"ok": True, "duplicate": True}
    handler = EVENT_HANDLERS.get(str(event.get("type")))
    if handler is None:
        log.info("unhandled slack event type %r", event.get("type"))
        return {"ok": True}
    slack.spawn(handler(slack, body, event))
    return {"ok": True}


def _threaded_and_not_a_bot(event: dict[str, Any]) -> bool:
    return bool(event.get("thread_ts")) and not (event.get("bot_id") or event.get("app_id")) \
        and event.get("subtype") in PERSON_SUBTYPES


def is_person_in_thread(slack: SlackIntegration, event: dict[str, Any]) -> bool:
    """True for a message a person wrote as a reply in some thread (never ours, never a bot's)."""
    user = event.get("user")
    return _threaded_and_not_a_bot(event) and bool(user) and user != slack.bot_user_id \
        and event.get("thread_ts") != event.get("ts")


async def on_message(slack: SlackIntegration, body: dict[str, Any], event: dict[str, Any]) -> None:
    """A thread reply in a ticket's thread: relay it to the customer, or store it as a note."""
    if event.get("subtype") in edits.SUBTYPES:
        await edits.on_edit(slack, body, event)
        return
    if not _threaded_and_not_a_bot(event):
        return  # top-level messages, bots' posts, joins...: not an agent answering a ticket
    message = payloads.parse(payloads.ThreadMessage, event, "event")
    if message is None or not is_person_in_thread(slack, event):
        return
    # One thread's replies are handled one at a time, in the order Slack delivered them.
    team = str(body.get("team_id") or event.get("team") or slack.team_id)
    async with slack.thread_lock(message.channel, message.thread_ts):
        await _on_thread_reply(slack, team, message)


async def _on_thread_reply(slack: SlackIntegration, team: str, message: payloads.ThreadMessage) -> None:
    channel = message.channel
    thread = await threads.by_thread(team, channel, message.thread_ts)
    if thread is None:
        return
    user = message.user

    async def tell(text: str) -> None:
        await slack.ephemeral(channel, user, text, thread_ts=thread.ts)

    agent = await agents.agent_for(slack.client, user)
    if agent is None:
        await tell(agents.UNKNOWN_USER_TEXT)
        return
    text = message.text
    internal = bool(NOTE_PREFIX.match(text))
    if internal:
        text = NOTE_PREFIX.sub("", text, count=1)
    shared = [f for f in message.files if isinstance(f, dict)]
    if len(shared) < len(message.files):
        payloads.skip("file", f"{len(message.files) - len(shared)} of the files are not objects")
    if shared and internal:
        await tell("Files can't go on an internal note, so they were not saved; "
                   "reply without `note:` to send them to the customer.")
        shared = []
    text = await slack.names.plain_text(text)
    if not text.strip() and not shared:
        return
    try:
        text, unknown = await _expand_shortcut(thread, agent, text)
    except canned.TemplateError as error:
        await tell(f"That canned response can't be used ({error}); nothing was sent.")
        return
    if unknown is not None:
        await tell(f"There is no canned response `/{unknown}`, so nothing was sent. "
                   "Saved replies are listed on the desk's Canned responses page.")
        return
    ticket_id = await _ticket_for_reply(slack, thread, agent, internal, tell)
    if ticket_id is None:
        return
    attachments = await files.files_for_reply(slack, shared, agent, tell) if shared else []
    if not text.strip() and not attachments:
        return
    try:
        sent = await slack.reply(ticket_id, agent, text, internal=internal, attachments=attachments)
    except errors.DeskError as error:
        await tell(f"Not sent: {error}.")
        return
    if sent is not None and not internal:
        await threads.remember_relayed(thread, message.ts, threads.RelayedReply(
            thread_ts=thread.ts, user=user, text=message.text, message_id=int(sent.id)))
    if attachments and not await _channel_shows_files(slack, ticket_id):
        await tell("The customer's channel can't show files, so they got links to them instead.")


async def _expand_shortcut(thread: threads.SlackThread, agent: Any, text: str) -> tuple[str, str | None]:
    """`canned.expand` for a thread reply: a leading `/code` becomes that canned response, filled
    in for the thread's customer and `agent`; `(text, code)` names an unknown shortcut."""
    if canned.shortcut_of(text) is None:
        return text, None
    conversation = await Conversation.get_or_none(id=thread.conversation_id)
    if conversation is None:
        return text, None
    return await canned.expand(text, await canned.values_for(conversation, agent))


async def _channel_shows_files(slack: SlackIntegration, ticket_id: int) -> bool:
    ticket = await Ticket.get(id=ticket_id)
    capabilities = getattr(slack.rt.channels.get(ticket.channel), "capabilities", None)
    return bool(capabilities and capabilities.attachments)


async def _ticket_for_reply(slack: SlackIntegration, thread: threads.SlackThread, agent: Any, internal: bool,
                            tell: Callable[[str], Awaitable[None]]) -> int | None:
    """The open ticket a thread reply goes to; a reply on a conversation the bot owns takes it over."""
    ticket = await Ticket.get_or_none(id=thread.ticket_id)
    if ticket is None:
        await tell("This ticket no longer exists.")
        return None
    if ticket.status != TicketStatus.CLOSED:
        return ticket.id
    conversation = await Conversation.get_or_none(id=thread.conversation_id)
    if conversation is None or conversation.state == ConversationState.ENDED:
        await tell(f"Ticket #{ticket.id} is closed and the conversation has ended; nothing was sent.")
        return None
    if conversation.state == ConversationState.HUMAN:
        current = await Ticket.filter(conversation_id=conversation.id).exclude(status=TicketStatus.CLOSED).first()
        where = f" It continues in ticket #{current.id}." if current else ""
        await tell(f"Ticket #{ticket.id} is closed; nothing was sent.{where}")
        return None
    if internal:
        await tell("The AI is handling this conversation; a note needs an open ticket. Nothing was saved.")
        return None
    try:
        new_ticket = await transitions.takeover(slack.rt, conversation.id, agent)
    except errors.Conflict as conflict:
        await tell(f"{agents.mention(conflict.assignee)} took over this conversation first; nothing was sent.")
        return None
    except (errors.NotFound, errors.InvalidState) as error:
        await tell(f"Couldn't take over this conversation: {error}")
        return None
    return int(new_ticket.id)


EVENT_HANDLERS: dict[str, Handler] = {
    "message": on_message,
}
