"""Errors the transitions (`handoff.transitions`) raise; `status` is the HTTP status the REST API answers."""

from __future__ import annotations

from typing import Any


class DeskError(Exception):
    """Base of desk operation errors; `status` is the HTTP status the API answers."""

    status = 400

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.details = details


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


class Forbidden(DeskError):
    """The agent may not do this (replying on a ticket assigned to someone else...)."""

    status = 403


class InvalidInput(DeskError):
    """The request's content is unacceptable: empty or oversized text, wrong types."""

    status = 400
