"""The one route table: webhooks, health, metrics, the desk API (and what channels and
integrations add, see app.py)."""

from __future__ import annotations

import logging
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from handoff import contact_names, metrics
from handoff.bodies import read_body
from handoff.channels.base import BadPayload, Handshake, InvalidSignature, webhook_response
from handoff.desk.api import routes as desk_routes
from handoff.desk.availability import routes as availability_routes
from handoff.ingest import ingest_all
from handoff.models import Agent, Outbox
from handoff.runtime import RUNTIME
from handoff.schema import InboundMessage

log = logging.getLogger(__name__)
routes = web.RouteTableDef()


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


@routes.post("/webhooks/{channel}")
async def webhook(request: web.Request) -> web.StreamResponse:
    """Verify, parse and commit a provider webhook; answer only after the commit."""
    started = time.perf_counter()
    rt = request.app[RUNTIME]
    name = request.match_info["channel"]
    channel = rt.channels.get(name)
    if channel is None:
        return _error(404, f"channel {name!r} is not configured")
    body = await read_body(request, rt.settings.max_body_bytes)
    try:
        await channel.verify(request, body)
    except InvalidSignature as exc:
        return _error(401, str(exc) or "invalid signature")
    try:
        items = channel.parse(body, request.content_type)
    except (BadPayload, ValueError) as exc:
        return _error(400, str(exc) or "malformed body")
    items = [contact_names.with_cached_name(channel, i) if isinstance(i, InboundMessage) else i for i in items]
    outcome = await ingest_all(rt, name, items)
    if outcome.failed:
        # Stored items are committed; the provider's retry is a no-op for them and tries the rest again.
        return _error(500, f"{outcome.failed} of {len(items)} items could not be stored; retry")
    unnamed = {item.contact_id: receipt.conversation_id for item, receipt in outcome.receipts if not item.contact_name}
    contact_names.look_up_later(rt, channel, unnamed)  # runs after the ack: a slow provider never delays it
    metrics.WEBHOOK_LATENCY.labels(name).observe(time.perf_counter() - started)
    return webhook_response(channel)


@routes.get("/webhooks/{channel}")
async def webhook_handshake(request: web.Request) -> web.StreamResponse:
    """A provider's subscription handshake (Meta's hub.challenge), where the channel has one."""
    rt = request.app[RUNTIME]
    channel = rt.channels.get(request.match_info["channel"])
    if not isinstance(channel, Handshake):
        return web.json_response({"error": "this channel takes POST only (it has no GET handshake)"}, status=405,
                                 headers={"Allow": "POST"})
    return await channel.handshake(request)


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    """Liveness and database reachability: 200 `{"ok": true, "channels": [...], "hub": {"redis":
    "ok" | "down" | "not configured", "since", "seq", "log"}}` (see `Hub.state`), or 503
    `{"ok": false, "database": "unreachable", "hub": ...}` (the cause goes to the log, not to the caller).

    Redis being down alone keeps the answer 200: the instance still serves every request, and
    live events reach the other instances through the database's event log (a second late)."""
    hub = request.app[RUNTIME].hub.state()
    try:
        await Agent.all().limit(1).values_list("id", flat=True)
    except Exception:
        log.exception("health check: the database is unreachable")
        return web.json_response({"ok": False, "database": "unreachable", "hub": hub}, status=503)
    rt = request.app[RUNTIME]
    return web.json_response({"ok": True, "channels": sorted(rt.channels), "hub": hub})


@routes.get("/metrics")
async def prometheus(request: web.Request) -> web.Response:
    """Prometheus metrics; the outbox backlog is counted at scrape time, not on every delivery round.
    The hub's: `handoff_hub_redis_up`, `handoff_hub_last_seq`, `handoff_hub_events_from_log_total`,
    `handoff_hub_gaps_total`, `handoff_hub_publish_failures_total`, `handoff_hub_resyncs_total`."""
    metrics.HUB_REDIS_UP.set(1 if request.app[RUNTIME].hub.state()["redis"] == "ok" else 0)
    metrics.OUTBOX_BACKLOG.set(await Outbox.filter(status__in=("pending", "sending", "accepted")).count())
    return web.Response(body=generate_latest(metrics.REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


ALL_ROUTES = [*routes, *desk_routes, *availability_routes]
