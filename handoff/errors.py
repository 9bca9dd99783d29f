"""The desk's one error family: raised by the transitions (`handoff.transitions`) and the REST API's
handlers, answered once by `handoff.http_errors.json_errors` as `status` with the JSON body `json()`
(`{"error": message}`, plus `ticket_id` and `assignee` for a Conflict)."""

from __future__ import annotations

from typing import Any

from handoff.events import agent_json


class DeskError(Exception):
    """Base of desk operation errors; `status` is the HTTP status the API answers."""

    status = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details

    def json(self) -> dict[str, Any]:
        """The JSON error body: `{"error": message}`."""
        return {"error": str(self)}


class NotFound(DeskError):
    """The conversation, ticket or agent does not exist."""

    status = 404


class InvalidState(DeskError):
    """The operation is not allowed in the current state (takeover of an ended conversation...)."""

    status = 409


class Conflict(DeskError):
    """Someone else won the race: `ticket` and `assignee` say who."""

    status = 409

    def __init__(self, message: str, *, ticket: Any = None, assignee: Any = None) -> None:
        super().__init__(message)
        self.ticket = ticket
        self.assignee = assignee

    def json(self) -> dict[str, Any]:
        """`{"error", "ticket_id", "assignee"}`: who won the race (null when unknown)."""
        return {"error": str(self), "ticket_id": self.ticket.id if self.ticket else None,
                "assignee": agent_json(self.assignee)}


class Unauthorized(DeskError):
    """No valid agent token or desk session."""

    status = 401


class Forbidden(DeskError):
    """The agent may not do this (replying on a ticket assigned to someone else...)."""

    status = 403


class InvalidInput(DeskError):
    """The request's content is unacceptable: empty or oversized text, wrong types."""

    status = 400


class TooLarge(DeskError):
    """An upload past the size limit (the connection is closed rather than read further)."""

    status = 413
