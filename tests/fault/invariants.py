"""What must hold after every fault scenario, read from the database and from the integrator's
receiver once the cluster has settled:

- every customer message acknowledged is stored exactly once (one `message` row per provider id);
- every burst is answered once: on each conversation's timeline (message ids, which follow the
  commit order because both the gateway and the bot's write update the conversation row before
  inserting), every bot reply follows at least one customer message (two replies in a row would
  answer the same words twice), answers the latest customer message before it (the offline bot
  answers the newest question; `TOPIC_OF_ANSWER` names it), and the timeline ends with a reply —
  the bot's rule (`bot/turn.py`): a reply the customer wrote past is superseded, and the next
  turn answers the whole burst;
- no outbound message reaches the receiver twice (counted by the callback's `id`, the message id),
  every outgoing message is delivered, and each conversation's arrive in id order. The one
  exception is the documented at-least-once window (README, Deployment): an instance killed
  between the provider's acceptance of a message and the commit that records it has that message
  sent again by its successor. A repeat whose first copy arrived within `AT_LEAST_ONCE_WINDOW`
  before a kill (`killed_at`) is counted in the figures (`resent_after_kill`), any other is a
  violation;
- nothing stalls: each conversation's last answer arrives within `STALL_LIMIT` seconds of the
  latest of its last acknowledgement, the end of the fault, and the receiver's last deliberate
  refusal of one of its callbacks.

`check()` returns the figures and the list of violations (empty when all hold).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from tests.fakes.api_customers import TOPIC_OF_ANSWER, Load
from tests.fakes.api_receiver import CallbackReceiver

STALL_LIMIT = 30.0  # seconds
# How long before a SIGKILL a message's first delivery may have been for its repeat to count as
# the at-least-once window (benchmarks/outbox_window.py measures the window: milliseconds).
AT_LEAST_ONCE_WINDOW = 1.0  # seconds


@dataclass
class Outcome:
    """The figures of a run and what broke the invariants."""

    figures: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    def fail(self, what: str, examples: list[Any]) -> None:
        """Record a broken invariant with up to five examples."""
        if examples:
            self.violations.append(f"{what}: {len(examples)} (e.g. {examples[:5]})")

    def __str__(self) -> str:
        lines = [f"{key}={value}" for key, value in self.figures.items()]
        return "\n".join(["figures: " + ", ".join(lines), *self.violations])


async def _rows(database_url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(database_url.replace("postgres://", "postgresql://", 1))
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


def answered(load: Load, receiver: CallbackReceiver) -> bool:
    """True when every conversation's latest customer message has its answer at the receiver."""
    last_topic: dict[str, set[str]] = defaultdict(set)
    for sent in load.messages:
        last_topic[sent.conversation].add(sent.topic)
    got: dict[str, set[str]] = defaultdict(set)
    for callback in receiver.received:
        got[callback["conversation"]].add(TOPIC_OF_ANSWER.get(callback["text"], "?"))
    return all(got[key] for key in last_topic) and all(sent.acked_at for sent in load.messages)


async def settle(database_url: str, load: Load, receiver: CallbackReceiver, timeout: float) -> None:
    """Wait until the outbox is empty, no bot conversation waits for an answer, and the receiver
    has an answer for every conversation (or `timeout` seconds pass: `check` then says what is missing)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if answered(load, receiver):
            try:
                busy = await _rows(database_url, """
                    SELECT (SELECT count(*) FROM outbox WHERE status IN ('pending', 'sending'))
                         + (SELECT count(*) FROM conversation WHERE state = 'bot' AND last_responder = 'customer') AS n""")
            except (OSError, asyncpg.PostgresError):
                busy = None
            if busy is not None and busy[0]["n"] == 0:
                return
        await asyncio.sleep(0.5)


async def check(database_url: str, load: Load, receiver: CallbackReceiver, fault_ended: float | None = None,
                killed_at: float | None = None) -> Outcome:
    """Check every invariant above; `fault_ended` is the monotonic time the fault ended, `killed_at`
    when an instance was SIGKILLed (if one was)."""
    out = Outcome()
    sent = {m.id: m for m in load.messages}
    acked = [m for m in load.messages if m.acked_at is not None]
    out.figures.update(conversations=len({m.conversation for m in load.messages}), messages=len(sent),
                       posts=sum(m.posts for m in load.messages), failed_posts=sum(m.failed_posts for m in load.messages),
                       callbacks_failed_at_random=receiver.failed_at_random)
    out.fail("messages never acknowledged", [m.id for m in load.messages if m.acked_at is None])

    incoming = await _rows(database_url, """
        SELECT provider_id, count(*) AS n FROM message WHERE channel = 'api' AND direction = 'incoming'
        GROUP BY provider_id""")
    stored = {r["provider_id"]: r["n"] for r in incoming}
    out.figures["stored"] = sum(stored.values())
    out.fail("customer messages stored more than once", [(k, n) for k, n in stored.items() if n > 1])
    out.fail("acknowledged messages not stored", [m.id for m in acked if m.id not in stored])
    out.fail("stored messages nobody sent", [k for k in stored if k not in sent])

    timeline = await _rows(database_url, """
        SELECT m.id, c.external_key, m.direction, m.author_kind, m.text, m.provider_id, m.private
        FROM message m JOIN conversation c ON c.id = m.conversation_id ORDER BY m.id""")
    by_conversation: dict[str, list[asyncpg.Record]] = defaultdict(list)
    for row in timeline:
        by_conversation[row["external_key"]].append(row)
    twice, stale, unanswered, others = [], [], [], []
    replies = 0
    for key, rows in by_conversation.items():
        previous = None
        for row in rows:
            if row["direction"] == "incoming":
                previous = row
                continue
            if row["author_kind"] != "bot":
                others.append((key, row["author_kind"], row["text"][:40]))
                continue
            replies += 1
            if previous is None or previous["direction"] != "incoming":
                twice.append((key, row["id"]))
            elif TOPIC_OF_ANSWER.get(row["text"]) != sent[previous["provider_id"]].topic:
                stale.append((key, row["id"], row["text"][:40]))
            previous = row
        if previous is None or previous["direction"] == "incoming":
            unanswered.append(key)
    out.figures["bot_replies"] = replies
    out.fail("bot replies with no customer message since the previous reply (answered twice)", twice)
    out.fail("bot replies that do not answer the customer's latest message", stale)
    out.fail("conversations whose latest customer message has no bot reply", unanswered)
    out.fail("other outgoing messages (notices, escalations)", others)

    delivered = Counter(int(c["id"]) for c in receiver.received)
    outgoing = {r["id"]: r["external_key"] for r in timeline if r["direction"] == "outgoing" and not r["private"]}
    out.figures["callbacks_delivered"] = sum(delivered.values())
    first_arrival: dict[int, float] = {}
    for callback, at in zip(receiver.received, receiver.arrived_at):
        first_arrival.setdefault(int(callback["id"]), at)
    repeated = [(i, n) for i, n in delivered.items() if n > 1]
    in_window = [(i, n) for i, n in repeated
                 if killed_at is not None and killed_at - AT_LEAST_ONCE_WINDOW <= first_arrival[i] <= killed_at]
    out.figures["resent_after_kill"] = len(in_window)
    out.fail("outbound messages delivered twice", [r for r in repeated if r not in in_window])
    missing = [i for i in outgoing if i not in delivered]
    if missing:  # say where each one is stuck
        rows = await _rows(database_url, f"""
            SELECT message_id, status, attempts, claimed_until - now() AS claim_left, last_error FROM outbox
            WHERE message_id IN ({", ".join(str(i) for i in missing)})""")
        out.fail("outgoing messages never delivered (outbox row)", [dict(r) for r in rows] or missing)
    out.fail("callbacks for messages not in the database", [i for i in delivered if i not in outgoing])
    arrivals: dict[str, list[int]] = defaultdict(list)
    for callback in receiver.received:
        arrivals[callback["conversation"]].append(int(callback["id"]))
    out.fail("conversations whose callbacks arrived out of order",
             [(k, ids) for k, ids in arrivals.items() if ids != sorted(ids)])

    last_ack: dict[str, float] = {}
    for m in acked:
        last_ack[m.conversation] = max(last_ack.get(m.conversation, 0.0), m.acked_at or 0.0)
    last_arrival: dict[str, float] = {}
    for callback, at in zip(receiver.received, receiver.arrived_at):
        last_arrival[callback["conversation"]] = at
    # From the last thing the test did to the conversation: its last message, the fault's end, or the
    # receiver's last deliberate refusal of one of its callbacks (a retry then waits out its backoff
    # by design; a run of refusals made one conversation wait 32.6 s once, with no fault at all).
    waits = {key: last_arrival[key] - max(ack, fault_ended or 0.0, receiver.refused_at.get(key, 0.0))
             for key, ack in last_ack.items() if key in last_arrival}
    if waits:
        longest = sorted(waits.items(), key=lambda kw: -kw[1])[:3]
        out.figures["longest_waits_s"] = [(key, round(wait, 1)) for key, wait in longest]
    out.fail(f"conversations answered more than {STALL_LIMIT:.0f}s after their last message, the fault's end "
             "or the last callback the receiver refused",
             sorted(((k, round(w, 1)) for k, w in waits.items() if w > STALL_LIMIT), key=lambda kw: -kw[1]))
    return out
