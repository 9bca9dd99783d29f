"""Reading a desk stream up to "everything committed so far": a logged marker event.

A logged event reaches every stream in seq order, after every event committed before it; an
ephemeral one (typing) is handed to subscribers at once and can overtake logged events that
still wait for an earlier seq (the hub's sequencer), so it cannot mark the end of them.
"""

from __future__ import annotations

import uuid
from typing import Any

from handoff.runtime import Runtime

MARK = "test.mark"


async def mark(rt: Runtime) -> str:
    """Log and publish a marker event on `rt`'s hub; returns its token for `events_until`."""
    token = uuid.uuid4().hex
    await rt.hub.publish_durable([{"kind": MARK, "token": token}])
    return token


async def events_until(ws: Any, token: str, timeout: float = 5) -> list[dict[str, Any]]:
    """The events `ws` (a desk stream) receives before the marker `token`, in order."""
    seen = []
    while (event := await ws.receive_json(timeout=timeout))["kind"] != MARK or event["token"] != token:
        seen.append(event)
    return seen
