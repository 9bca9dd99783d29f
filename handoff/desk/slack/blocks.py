"""Block Kit builders for everything handoff shows in Slack (pure functions, no I/O).

Follows https://api.slack.com/reference/block-kit: a ticket's root message (subject, AI
summary, customer, channel, status, assignee and the action buttons), the lines posted into
a ticket's thread (a message the customer unsent reads as such, with no trace of its text or
files; an edited one shows its new text marked "(edited)"), the Transfer modal and the
`/handoff` list of live bot conversations.
Action ids are the contract with `actions.py`; button values carry the ticket or
conversation id.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from handoff.states import ConversationState, TicketStatus

TAKE_OVER = "handoff.take_over"
ASSIGN_TO_ME = "handoff.assign_to_me"
ALLOW_AI = "handoff.allow_ai"
TRANSFER = "handoff.transfer"
CLOSE = "handoff.close"
TRANSFER_VIEW = "handoff.transfer"
AGENT_BLOCK, AGENT_INPUT = "agent", "agent_select"
NOTE_BLOCK, NOTE_INPUT = "note", "note_input"

STATUS_LABELS = {
    TicketStatus.OPEN: ":large_yellow_circle: Waiting for an agent",
    TicketStatus.ON_YOU: ":large_green_circle: With an agent",
    TicketStatus.ON_CUSTOMER: ":hourglass: Waiting on the customer",
    TicketStatus.CLOSED: ":white_circle: Closed",
}
DELETED_BY_CUSTOMER = "This message was deleted by the customer"
EDITED = "(edited)"
CHANNEL_LABELS = {
    "widget": "Web chat", "email": "Email", "whatsapp": "WhatsApp", "messenger": "Messenger",
    "instagram": "Instagram", "api": "API",
}


@dataclass(frozen=True)
class TicketCard:
    """What the root message of a ticket shows."""

    ticket_id: int
    conversation_id: int
    subject: str
    summary: str
    customer: str
    channel: str
    status: str
    assignee: str | None
    conversation_state: str


@dataclass(frozen=True)
class LiveConversation:
    """One line of the `/handoff` list."""

    conversation_id: int
    customer: str
    channel: str
    last_text: str


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _button(text: str, action_id: str, value: int | str, style: str | None = None) -> dict[str, Any]:
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "action_id": action_id,
        "value": str(value),
    }
    if style:
        button["style"] = style
    return button


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def card_buttons(card: TicketCard) -> list[dict[str, Any]]:
    """The buttons that make sense for a ticket in its current state."""
    if card.status == TicketStatus.CLOSED:
        if card.conversation_state == ConversationState.BOT:
            return [_button("Take over", TAKE_OVER, card.conversation_id, "primary")]
        return []
    buttons = []
    if card.assignee is None:
        buttons.append(_button("Assign to me", ASSIGN_TO_ME, card.ticket_id, "primary"))
    buttons += [
        _button("Allow AI replies", ALLOW_AI, card.ticket_id),
        _button("Transfer", TRANSFER, card.ticket_id),
        _button("Close", CLOSE, card.ticket_id, "danger"),
    ]
    return buttons


def root_message(card: TicketCard) -> tuple[str, list[dict[str, Any]]]:
    """The fallback text and blocks of a ticket's root message."""
    subject = card.subject or f"Conversation #{card.conversation_id}"
    summary = card.summary or "_The AI summary is on its way…_"
    status = STATUS_LABELS.get(card.status, card.status)
    assignee = escape(card.assignee) if card.assignee else "_unassigned_"
    channel = CHANNEL_LABELS.get(card.channel, card.channel)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(f"#{card.ticket_id} {subject}", 150)}},
        {"type": "section", "text": {"type": "mrkdwn", "text": _clip(escape(summary), 3000)}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*Customer*\n{escape(card.customer)}"},
                {"type": "mrkdwn", "text": f"*Channel*\n{escape(channel)}"},
                {"type": "mrkdwn", "text": f"*Status*\n{status}"},
                {"type": "mrkdwn", "text": f"*Assignee*\n{assignee}"},
            ],
        },
    ]
    buttons = card_buttons(card)
    if buttons:
        blocks.append({"type": "actions", "block_id": f"ticket:{card.ticket_id}", "elements": buttons})
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": "Reply in this thread to answer the customer · start with `note:` for an internal note"},
    ]})
    text = f"Ticket #{card.ticket_id}: {subject} ({card.customer}, {channel}) — {status}"
    return text, blocks


def shown_text(message: dict[str, Any]) -> str:
    """The text of a timeline message (`message_json` shape) as Slack shows it, escaped: the unsend
    notice for an unsent message (`deleted`), the text then "(edited)" for an edited one."""
    if message.get("deleted"):
        return f"_{DELETED_BY_CUSTOMER}_"
    text = escape(str(message.get("text") or ""))
    return f"{text} _{EDITED}_" if message.get("edited_at") else text


def thread_line(message: dict[str, Any], customer: str) -> str | None:
    """How one timeline message (`events.message_json` shape, its projection for Slack) reads in
    the ticket's thread; None for messages not mirrored."""
    text = shown_text(message)
    files = [] if message.get("deleted") else message.get("attachments") or []
    links = [a.get("url") for a in files if isinstance(a, dict) and a.get("url")]
    if links:
        text = "\n".join([text, *(f"<{url}|{escape(url.rsplit('/', 1)[-1] or 'attachment')}>" for url in links)])
    direction = message.get("direction")
    author = message.get("author")
    if direction == "incoming":
        return f"*{escape(customer)}*: {text}"
    if direction == "activity":
        return f":arrow_right: _{text}_" if text else None
    if message.get("private"):
        return f":memo: *{escape(_agent_name(message))}* (internal note): {text}"
    if author == "agent":
        return f"*{escape(_agent_name(message))}* (agent): {text}"
    if message.get("notice") or author == "system":
        return f":speech_balloon: _Sent to the customer: {text}_"
    if author == "bot":
        return f":robot_face: *AI*: {text}"
    return None


def _agent_name(message: dict[str, Any]) -> str:
    agent = message.get("agent")
    return str((agent.get("name") if isinstance(agent, dict) else None) or "Agent")


def transfer_modal(ticket_id: int, agents: Sequence[tuple[int, str]]) -> dict[str, Any]:
    """The Transfer modal: a static select of agents and an optional note."""
    options = [
        {"text": {"type": "plain_text", "text": _clip(name, 75)}, "value": str(agent_id)}
        for agent_id, name in agents[:100]
    ]
    return {
        "type": "modal",
        "callback_id": TRANSFER_VIEW,
        "private_metadata": str(ticket_id),
        "title": {"type": "plain_text", "text": f"Transfer #{ticket_id}"},
        "submit": {"type": "plain_text", "text": "Transfer"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "input",
                "block_id": AGENT_BLOCK,
                "label": {"type": "plain_text", "text": "Transfer to"},
                "element": {"type": "static_select", "action_id": AGENT_INPUT, "options": options,
                            "placeholder": {"type": "plain_text", "text": "Choose an agent"}},
            },
            {
                "type": "input",
                "block_id": NOTE_BLOCK,
                "optional": True,
                "label": {"type": "plain_text", "text": "Note for your colleague"},
                "element": {"type": "plain_text_input", "action_id": NOTE_INPUT, "multiline": True},
            },
        ],
    }


def live_list(conversations: Sequence[LiveConversation]) -> dict[str, Any]:
    """The ephemeral `/handoff` answer: live bot conversations, each with a Take over button."""
    if not conversations:
        return {"response_type": "ephemeral", "text": "No live conversations with the AI right now."}
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Live conversations with the AI*"}},
    ]
    for conv in conversations:
        channel = CHANNEL_LABELS.get(conv.channel, conv.channel)
        blocks.append({
            "type": "section",
            "text": {"type": "mrkdwn", "text": _clip(
                f"*#{conv.conversation_id}* {escape(conv.customer)} · {escape(channel)}\n>{escape(conv.last_text)}", 3000)},
            "accessory": _button("Take over", TAKE_OVER, conv.conversation_id, "primary"),
        })
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": "Or type `/handoff take <id>`"}]})
    return {"response_type": "ephemeral", "text": f"{len(conversations)} live conversations", "blocks": blocks}


def ephemeral(text: str) -> dict[str, Any]:
    """A plain ephemeral answer to a slash command."""
    return {"response_type": "ephemeral", "text": text}
