"""Prometheus metrics (served at /metrics)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

MESSAGES_IN = Counter("handoff_messages_in_total", "Inbound customer messages stored", ["channel"],
                      registry=REGISTRY)
MESSAGES_OUT = Counter("handoff_messages_out_total", "Outbound messages by delivery result",
                       ["channel", "result"], registry=REGISTRY)
TAKEOVERS = Counter("handoff_takeovers_total", "Tickets opened, by agent takeover or bot escalation",
                    ["kind"], registry=REGISTRY)
BOT_REPLIES_FENCED = Counter("handoff_bot_replies_fenced_total",
                             "Bot replies dropped because a human took the conversation", registry=REGISTRY)
BOT_REPLIES_CAPPED = Counter("handoff_bot_replies_capped_total",
                             "Bot turns not answered: the channel's hourly cap of bot replies to one address was reached",
                             registry=REGISTRY)
OUTBOX_BACKLOG = Gauge("handoff_outbox_backlog", "Outbox rows waiting for delivery", registry=REGISTRY)
OUTBOX_FAILURES = Counter("handoff_outbox_failures_total", "Messages that failed after their last attempt",
                          ["channel"], registry=REGISTRY)
EMAIL_QUARANTINED = Counter("handoff_email_quarantined_total",
                            "Emails moved to the quarantine folder because they could not be processed",
                            registry=REGISTRY)
WEBHOOK_LATENCY = Histogram("handoff_webhook_latency_seconds", "Time to acknowledge a webhook",
                            ["channel"], registry=REGISTRY)
WEBHOOK_ITEMS_SKIPPED = Counter("handoff_webhook_items_skipped_total",
                                "Items of a provider request that could not be used and were skipped "
                                "(the rest of the batch is stored)", ["channel", "reason"], registry=REGISTRY)
WEBHOOK_ITEMS_FAILED = Counter("handoff_webhook_items_failed_total",
                               "Items whose storing raised; the request is answered 500 so the provider retries",
                               ["channel"], registry=REGISTRY)
HUB_REDIS_UP = Gauge("handoff_hub_redis_up",
                     "1 while the live-event hub's Redis works (subscribed, publishes answered); 0 while it "
                     "is down or not configured (see /healthz)", registry=REGISTRY)
HUB_LAST_SEQ = Gauge("handoff_hub_last_seq", "The newest live-event seq this instance handed to its subscribers",
                     registry=REGISTRY)
HUB_EVENTS_FROM_LOG = Counter("handoff_hub_events_from_log_total",
                              "Live events this instance read from the event log because Redis did not bring "
                              "them in time", registry=REGISTRY)
HUB_GAPS = Counter("handoff_hub_gaps_total",
                   "Gaps in the live-event seqs this instance received, filled from the event log",
                   registry=REGISTRY)
HUB_PUBLISH_FAILURES = Counter("handoff_hub_publish_failures_total",
                               "Live-event batches that could not be published to Redis (the other instances "
                               "read them from the event log)", registry=REGISTRY)
HUB_RESYNCS = Counter("handoff_hub_resyncs_total",
                      "stream.resync events: a client told to reload because its missed events could not be "
                      "replayed", registry=REGISTRY)
