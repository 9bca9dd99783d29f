"""Interactivity and the `/handoff` slash command: dispatch tables from action to desk operation.

Follows https://api.slack.com/interactivity/handling: every interaction is acknowledged at
once and its work spawned after the ack. Buttons (`block_actions`,
https://api.slack.com/reference/interaction-payloads/block-actions-payload) take over,
assign, hand back to the AI, open the Transfer modal or close; the modal's
`view_submission` transfers; `/handoff` (https://api.slack.com/interactivity/slash-commands)
lists live bot conversations with Take over buttons, and `/handoff take <id>` takes one.
Whoever loses a race is told who won, in an ephemeral message.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from handoff import errors, transitions
from handoff.desk.slack import agents, blocks, payloads
from handoff.models import Agent, Conversation, Message
from handoff.states import ConversationState
from handoff.validation import id_from_text

if TYPE_CHECKING:
    from handoff.desk.slack import SlackIntegration

log = logging.getLogger(__name__)

LIST_LIMIT = 15
USAGE = "`/handoff` lists live conversations with the AI · `/handoff take <id>` takes one over"

ActionHandler = Callable[["SlackIntegration", "Where", Agent, int, dict[str, Any]], Awaitable[None]]


class Where:
    """Where to answer the Slack user who acted: their id and the channel (and thread) they acted in."""

    def __init__(self, user: str, channel: str, thread_ts: str | None = None) -> None:
        self.user, self.channel, self.thread_ts = user, channel, thread_ts


async def _tell(slack: SlackIntegration, where: Where, text: str) -> None:
    await slack.ephemeral(where.channel, where.user, text, thread_ts=where.thread_ts)


def _id_of(value: Any) -> Any:
    return value.get("id") if isinstance(value, dict) else getattr(value, "id", None)


async def _run(slack: SlackIntegration, where: Where, label: str, operation: Awaitable[Any],
               agent: Agent | None = None) -> Any:
    """Await a desk operation, turning its errors into an ephemeral message for the user."""
    try:
        return await operation
    except errors.Conflict as conflict:
        ticket_id = _id_of(getattr(conflict, "ticket", None))
        on = f" ticket #{ticket_id}" if ticket_id else " it"
        if agent is not None and conflict.assignee is not None and _id_of(conflict.assignee) == agent.id:
            await _tell(slack, where, f"You already have{on}.")
        else:
            await _tell(slack, where, f"Too late: {agents.mention(conflict.assignee)} already has{on}.")
    except errors.NotFound:
        await _tell(slack, where, f"Couldn't {label}: it no longer exists.")
    except errors.DeskError as error:
        await _tell(slack, where, f"Couldn't {label}: {error}.")
    return None


# -- buttons ---------------------------------------------------------------------------
async def take_over(slack: SlackIntegration, where: Where, agent: Agent, conversation_id: int, payload: dict) -> None:
    """Take a live bot conversation over; its ticket's thread appears in the channel."""
    ticket = await _run(slack, where, "take over", transitions.takeover(slack.rt, conversation_id, agent), agent)
    if ticket is not None:
        await _tell(slack, where, f"You took over conversation #{conversation_id} as ticket #{ticket.id}. "
                                  "Reply in its thread to talk to the customer.")


async def assign_to_me(slack: SlackIntegration, where: Where, agent: Agent, ticket_id: int, payload: dict) -> None:
    """Claim an unassigned ticket."""
    await _run(slack, where, "assign the ticket", transitions.claim(slack.rt, ticket_id, agent), agent)


async def allow_ai(slack: SlackIntegration, where: Where, agent: Agent, ticket_id: int, payload: dict) -> None:
    """Hand the conversation back to the AI (closes the ticket)."""
    await _run(slack, where, "hand back to the AI", transitions.allow_ai(slack.rt, ticket_id, agent))


async def close(slack: SlackIntegration, where: Where, agent: Agent, ticket_id: int, payload: dict) -> None:
    """Close the ticket and end the conversation."""
    await _run(slack, where, "close the ticket", transitions.close(slack.rt, ticket_id, agent))


async def open_transfer(slack: SlackIntegration, where: Where, agent: Agent, ticket_id: int, payload: dict) -> None:
    """Open the Transfer modal (the trigger_id is only valid for 3 seconds)."""
    colleagues = await Agent.filter(is_active=True).exclude(id=agent.id).order_by("name").values_list("id", "name")
    if not colleagues:
        await _tell(slack, where, "There is no other agent to transfer to.")
        return
    await slack.client.views_open(trigger_id=payload.get("trigger_id"),
                                  view=blocks.transfer_modal(ticket_id, list(colleagues)))


BUTTONS: dict[str, ActionHandler] = {
    blocks.TAKE_OVER: take_over,
    blocks.ASSIGN_TO_ME: assign_to_me,
    blocks.ALLOW_AI: allow_ai,
    blocks.TRANSFER: open_transfer,
    blocks.CLOSE: close,
}


async def _on_buttons(slack: SlackIntegration, payload: dict[str, Any]) -> None:
    user = payloads.dig(payload, "user", "id")
    if not isinstance(user, str) or not user:
        payloads.skip("interaction", "block_actions without user.id")
        return
    container = payloads.dig(payload, "container") or {}
    channel = next((c for c in (payloads.dig(payload, "channel", "id"), payloads.dig(container, "channel_id"))
                    if isinstance(c, str) and c), slack.channel)
    thread_ts = payloads.dig(container, "thread_ts")
    where = Where(user, channel, thread_ts if isinstance(thread_ts, str) else None)
    agent = await agents.agent_for(slack.client, user)
    if agent is None:
        await _tell(slack, where, agents.UNKNOWN_USER_TEXT)
        return
    actions = payload.get("actions")
    if not isinstance(actions, list):
        payloads.skip("action", "block_actions without an actions list")
        return
    # Each action on its own: a malformed or failing one is logged and the others still run.
    for index, item in enumerate(actions):
        action = payloads.parse(payloads.Action, item, "action")
        if action is None:
            continue
        handler = BUTTONS.get(action.action_id)
        if handler is None:
            log.info("unhandled slack action %r", action.action_id)
            continue
        record_id = id_from_text(action.value)
        if record_id is None:
            payloads.skip("action", f"actions.{index}.value: not an id")
            continue
        try:
            await handler(slack, where, agent, record_id, payload)
        except Exception:
            log.exception("slack action %s (%d of %d) failed", action.action_id, index + 1, len(actions))


# -- modal -----------------------------------------------------------------------------
def transfer_values(payload: dict[str, Any]) -> tuple[int | None, int | None, str]:
    """(ticket id, chosen agent id, note) from a Transfer view_submission; None where it is not an id."""
    values = payloads.dig(payload, "view", "state", "values")
    chosen = payloads.dig(values, blocks.AGENT_BLOCK, blocks.AGENT_INPUT, "selected_option", "value")
    note = payloads.dig(values, blocks.NOTE_BLOCK, blocks.NOTE_INPUT, "value")
    return (id_from_text(payloads.dig(payload, "view", "private_metadata")), id_from_text(chosen),
            note if isinstance(note, str) else "")


async def _transfer(slack: SlackIntegration, payload: dict[str, Any], ticket_id: int, to_agent_id: int, note: str) -> None:
    user = str(payloads.dig(payload, "user", "id") or "")
    where = Where(user, slack.channel)
    agent = await agents.agent_for(slack.client, user)
    if agent is None:
        await _tell(slack, where, agents.UNKNOWN_USER_TEXT)
        return
    await _run(slack, where, "transfer the ticket",
               transitions.transfer(slack.rt, ticket_id, agent, to_agent_id, note))


# -- entry points ----------------------------------------------------------------------
async def handle_interaction(slack: SlackIntegration, payload: dict[str, Any]) -> dict[str, Any] | None:
    """Acknowledge one interaction payload; returns the ack body (None: empty 200)."""
    kind = payload.get("type")
    if kind == "block_actions":
        slack.spawn(_on_buttons(slack, payload))
        return None
    if kind == "view_submission" and payloads.dig(payload, "view", "callback_id") == blocks.TRANSFER_VIEW:
        ticket_id, agent_id, note = transfer_values(payload)
        if agent_id is None:
            return {"response_action": "errors", "errors": {blocks.AGENT_BLOCK: "Choose an agent"}}
        if ticket_id is None:
            return None
        slack.spawn(_transfer(slack, payload, ticket_id, agent_id, note))
        return None
    log.info("unhandled slack interaction %r", kind)
    return None


async def handle_command(slack: SlackIntegration, form: dict[str, str]) -> dict[str, Any]:
    """Answer `/handoff [list | take <id> | help]` (the answer is the ack body)."""
    words = (form.get("text") or "").split()
    if not words or words[0].lower() == "list":
        return blocks.live_list(await live_conversations())
    conversation_id = id_from_text(words[1].lstrip("#")) if len(words) == 2 else None
    if words[0].lower() == "take" and conversation_id is not None:
        slack.spawn(_take_by_command(slack, form, conversation_id))
        return blocks.ephemeral(f"Taking over conversation #{conversation_id}…")
    return blocks.ephemeral(USAGE)


async def _take_by_command(slack: SlackIntegration, form: dict[str, str], conversation_id: int) -> None:
    user = form.get("user_id", "")
    where = Where(user, form.get("channel_id") or slack.channel)
    agent = await agents.agent_for(slack.client, user)
    if agent is None:
        await _tell(slack, where, agents.UNKNOWN_USER_TEXT)
        return
    await take_over(slack, where, agent, conversation_id, {})


async def live_conversations(limit: int = LIST_LIMIT) -> list[blocks.LiveConversation]:
    """The most recently active conversations the AI is handling."""
    rows = await Conversation.filter(state=ConversationState.BOT).order_by("-last_activity_at").limit(limit).prefetch_related("contact")
    found = []
    for conv in rows:
        last = await Message.filter(conversation_id=conv.id, direction="incoming").order_by("-id").first()
        contact = conv.contact
        found.append(blocks.LiveConversation(
            conversation_id=conv.id,
            customer=contact.name or contact.email or conv.contact_external_id,
            channel=conv.channel,
            last_text=(last.text if last else "")[:200],
        ))
    return found
