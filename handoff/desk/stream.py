"""The desk's live stream (`GET /api/v1/stream`, a WebSocket): the events `desk.live` picks for
one agent, resumable after the last `seq` the desk saw.

It opens with `stream.ready` `{"agent", "seq"}` (the seq the stream goes on from). With
`?after=<seq>`, the logged events after that seq are sent first, in order, then the live ones,
each once. When the missed events cannot be replayed (older than the log's retention, more
than `REPLAY_LIMIT`, a seq the log never reached, or the log unreadable) the stream sends
`stream.resync` `{"seq"}` instead: reload the lists, then go on from `seq`. A subscriber that
fell behind (`stream.lagged`) is caught up from the log the same way.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from handoff import eventlog, metrics
from handoff.desk import live
from handoff.events import EventKind
from handoff.hub import Hub, Subscription

log = logging.getLogger(__name__)
REPLAY_LIMIT = 1000  # events a resuming desk is sent at most; past that it reloads


async def serve(hub: Hub, ws: web.WebSocketResponse, agent: dict[str, Any], agent_id: int, after: int | None,
                opened: Callable[[], Awaitable[None]] | None = None) -> None:
    """Run one prepared desk WebSocket until the desk closes it; `opened` runs once the stream is
    subscribed, before `stream.ready` (what it publishes reaches this stream too)."""
    async with hub.subscribe() as events:
        if opened is not None:
            await opened()
        upto = hub.last  # read with the subscription in place: later events are queued for it
        await ws.send_json({"kind": EventKind.STREAM_READY, "agent": agent, "seq": upto})
        if after is not None:
            await _replay(events, ws, after, upto, agent_id)
        sender = asyncio.create_task(_pump(hub, events, ws, upto, agent_id))
        try:
            async for _ in ws:  # the desk sends nothing we act on; this ends when it closes
                pass
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)


async def missed(after: int, upto: int) -> list[dict[str, Any]] | None:
    """The logged events with `after < seq <= upto`, oldest first; None when they cannot all be given."""
    if after >= upto:
        return [] if after == upto else None
    first = await eventlog.first()
    if first is None or first > after + 1:
        return None  # pruned (a hole left by a rolled-back append there costs a reload, no data)
    rows = await eventlog.after(after, upto=upto, limit=REPLAY_LIMIT + 1)
    return rows if len(rows) <= REPLAY_LIMIT else None


async def _replay(events: Subscription, ws: web.WebSocketResponse, after: int, upto: int, agent_id: int) -> None:
    try:
        rows = await missed(after, upto)
    except Exception:
        log.exception("desk stream: the event log could not be read; the desk reloads")
        rows = None
    if rows is None:
        metrics.HUB_RESYNCS.inc()
        await ws.send_json({"kind": EventKind.STREAM_RESYNC, "seq": upto})
        return
    for event in rows:
        if events.wants(event["kind"]) and live.wants(event, agent_id):
            await ws.send_str(json.dumps(event, default=str))


async def _pump(hub: Hub, events: Subscription, ws: web.WebSocketResponse, sent: int, agent_id: int) -> None:
    """Forward live events; a logged one at or below `sent` (already replayed) is skipped."""
    async for event in events:
        if event.get("kind") == EventKind.STREAM_LAGGED:  # dropped from the queue: replay them from the log
            upto = hub.last
            await _replay(events, ws, sent, upto, agent_id)
            sent = max(sent, upto)
            continue
        seq = event.get("seq")
        if seq is not None:
            if seq <= sent:
                continue
            sent = seq
        if live.wants(event, agent_id):
            await ws.send_str(json.dumps(event, default=str))
