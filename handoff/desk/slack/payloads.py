"""The parts of Slack's payloads handoff acts on, validated (pydantic, strict types) before use.

Slack's documents: the `message` event and its subtypes (https://api.slack.com/events/message,
/events/message/message_changed, /events/message/message_deleted) and the `block_actions`
payload (https://api.slack.com/reference/interaction-payloads/block-actions-payload). Fields
handoff does not read are ignored. `parse` turns a malformed item into a logged skip, counted in
`handoff_webhook_items_skipped_total{channel="slack"}`: the request is still acknowledged 2xx
(Slack retries anything else), and the other items of the same payload are handled.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from handoff import metrics

log = logging.getLogger(__name__)

Model = TypeVar("Model", bound=BaseModel)


class _Payload(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class ThreadMessage(_Payload):
    """A person's `message` event (no subtype, `thread_broadcast` or `file_share`) in a thread."""

    channel: str
    user: str
    ts: str
    thread_ts: str
    text: str = ""
    files: list[Any] = []


class ChangedMessage(_Payload):
    """The `message` inside a `message_changed` event: the message as it now reads."""

    ts: str
    text: str = ""
    thread_ts: str | None = None


class MessageChanged(_Payload):
    """A `message_changed` event."""

    channel: str
    message: ChangedMessage


class PreviousMessage(_Payload):
    """The `previous_message` of a `message_deleted` event (Slack may leave it out)."""

    thread_ts: str | None = None


class MessageDeleted(_Payload):
    """A `message_deleted` event: `deleted_ts` is the ts of the message that is gone."""

    channel: str
    deleted_ts: str
    previous_message: PreviousMessage | None = None


class Action(_Payload):
    """One element of a `block_actions` payload's `actions` (handoff's buttons carry an id as `value`)."""

    action_id: str
    value: str | None = None


def parse(model: type[Model], data: Any, what: str) -> Model | None:
    """`data` as `model`, or None after logging why (field paths only: values may be personal)."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'item'}: {e['msg']}"
                             for e in error.errors(include_input=False, include_url=False))
        skip(what, problems)
        return None


def skip(what: str, why: str) -> None:
    """Log and count one Slack item that cannot be used."""
    log.warning("skipping malformed slack %s: %s", what, why)
    metrics.WEBHOOK_ITEMS_SKIPPED.labels("slack", f"malformed_{what}").inc()


def dig(data: Any, *keys: str) -> Any:
    """`data[k1][k2]...`, or None as soon as a level is not an object or lacks the key."""
    for key in keys:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data
