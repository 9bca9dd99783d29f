"""The states of the conversation state machine and of a ticket (DESIGN.md §2), as enums.

The columns stay plain text (`Conversation.state`, `Ticket.status`); each member's value is
the text stored and shown by the API. Every change of either goes through `handoff.transitions`.
"""

from __future__ import annotations

from enum import StrEnum


class ConversationState(StrEnum):
    """Who answers a conversation: the AI, a person, or nobody (it has ended)."""

    BOT = "bot"
    HUMAN = "human"
    ENDED = "ended"


class TicketStatus(StrEnum):
    """A ticket's place in the help-desk cycle, from the queue to closed."""

    OPEN = "open"  # unassigned, in the queue
    ON_YOU = "on_you"  # assigned; the customer waits for the agent
    ON_CUSTOMER = "on_customer"  # the agent answered; waiting for the customer
    CLOSED = "closed"
