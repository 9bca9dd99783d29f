"""Tortoise models: the one conversation model every channel is normalized into.

Words follow help-desk usage: a Contact has per-channel identities; a Conversation is in
state bot/human/ended; Messages are incoming, outgoing or activity (private = internal
note); a Ticket is one live-chat cycle; Events are the append-only timeline; Outbox rows
carry outbound messages to their channel.

Two invariants are enforced by the database itself, portably on SQLite and PostgreSQL,
through nullable unique "open keys" (NULLs never collide):
- `Conversation.open_key` = "<channel>:<conversation key>" while not ended: one running
  conversation per channel conversation key;
- `Ticket.open_key` = the conversation id while the ticket is not closed: at most one
  open ticket per conversation.
"""

from __future__ import annotations

import functools
import inspect
from copy import deepcopy
from datetime import datetime, timezone
from typing import Any, Self

from tortoise import fields, models
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.expressions import Q
from tortoise.signals import Signals

from handoff.states import ConversationState, TicketStatus


class Model(models.Model):
    """tortoise's Model, with the same behaviour at less cost on the hot path:

    - a save of a model without signal listeners does not wait on an empty `asyncio.gather`
      before and after its statement (tortoise's does, twice per insert). Listeners registered
      with `tortoise.signals` run as before;
    - a new instance fills the fields it was not given from a plan made once per model
      (`_PLANS`) instead of asking `inspect.iscoroutinefunction` of every field's default
      on every construction; and an attribute set looks its relation fields up once per model;
    - `create` runs the INSERT itself when tortoise's `save` would have nothing else to do.
    """

    class Meta:
        abstract = True

    def __init__(self, **kwargs: object) -> None:
        # tortoise's Model.__init__ (tortoise-orm 1.x), with its per-field questions answered once.
        self._partial = False
        self._saved_in_db = False
        self._custom_generated_pk = False
        self._await_when_save = {}
        plan = _PLANS.setdefault(type(self), {})
        relations = _relations(type(self))
        for key in self._meta.fields.difference(self._set_kwargs(kwargs)):
            how, default = plan.get(key) or _plan_field(type(self), key, plan)
            if how is _AWAIT:
                self._await_when_save[key] = default
                continue
            if how is _CALL:
                value = default()
            elif how is _COPY:
                value = deepcopy(default)
            elif how is _DB_DEFAULT:
                value = default.get_db_default_value()
            else:
                value = default
            # A field not given has no async default to override; only a relation is checked.
            (setattr if key in relations else object.__setattr__)(self, key, value)

    def __setattr__(self, key: str, value: object) -> None:
        # tortoise's: a value set overrides an async default; a relation is type-checked.
        waiting = self.__dict__.get("_await_when_save")
        if waiting:
            waiting.pop(key, None)
        if key in _relations(type(self)):
            self._validate_relation_type(key, value)
        object.__setattr__(self, key, value)

    async def _wait_for_listeners(self, signal: Signals, *listener_args: object) -> None:
        if self._listeners.get(signal, {}).get(self.__class__):
            await super()._wait_for_listeners(signal, *listener_args)

    @classmethod
    async def create(cls, using_db: BaseDBAsyncClient | None = None, **kwargs: Any) -> Self:
        """tortoise's `Model.create` (the instance, then its INSERT on `using_db` or the context's
        connection; raises what tortoise raises), without the steps of its `save` that a plain new
        row does not need: no async default to await, no save signal listener, no database default,
        no primary key given. Anything else goes through tortoise's `save`."""
        instance = cls(**kwargs)
        db = using_db or cls._choose_db(True)
        executor = db.executor_class(model=cls, db=db)
        if (instance._await_when_save or instance._custom_generated_pk or cls._meta.db_default_db_columns
                or cls._listeners[Signals.pre_save].get(cls) or cls._listeners[Signals.post_save].get(cls)):
            instance._saved_in_db = False
            await instance.save(using_db=db, force_create=True)
            return instance
        fields_map = cls._meta.fields_map
        values = [fields_map[name].to_db_value(getattr(instance, name), instance) for name in executor.regular_columns]
        await executor._process_insert_result(instance, await db.execute_insert(executor.insert_query, values))
        instance._saved_in_db = True
        return instance


_AWAIT, _CALL, _COPY, _DB_DEFAULT, _VALUE = "await", "call", "copy", "db default", "value"


# How `Model.__init__` fills each field of a model it was not given, as tortoise decides it:
# {model: {field: (how, default)}}, filled in field by field (`_plan_field`): tortoise's start-up
# adds fields (a relation's `<name>_id`) to a model that may have been built before it.
_PLANS: dict[type[models.Model], dict[str, tuple[str, Any]]] = {}


def _plan_field(model: type[models.Model], key: str, plan: dict[str, tuple[str, Any]]) -> tuple[str, Any]:
    field = model._meta.fields_map[key]
    default = field.default
    if inspect.iscoroutinefunction(default):
        how = (_AWAIT, default)
    elif callable(default):
        how = (_CALL, default)
    elif default is not None:
        how = (_VALUE, default) if isinstance(default, (int, float, str, bool, bytes)) else (_COPY, default)
    elif field.has_db_default():
        how = (_DB_DEFAULT, field)
    else:
        how = (_VALUE, None)
    plan[key] = how
    return how


@functools.cache
def _relations(model: type[models.Model]) -> frozenset[str]:
    """The foreign-key and one-to-one fields of `model` (tortoise checks a value set on them)."""
    return frozenset(model._meta.fk_fields | model._meta.o2o_fields)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC (what every timestamp column stores)."""
    return datetime.now(timezone.utc)


CONVERSATION_STATES = tuple(ConversationState)
TICKET_STATUSES = tuple(TicketStatus)
DIRECTIONS = ("incoming", "outgoing", "activity")
AUTHOR_KINDS = ("customer", "bot", "agent", "system")
DELIVERY_STATES = ("none", "pending", "queued", "sent", "delivered", "read", "failed", "undelivered", "cancelled", "skipped")


class Agent(Model):
    """A human support agent. Only a hash of the API token is stored."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200)
    email = fields.CharField(max_length=320, unique=True)
    token_hash = fields.CharField(max_length=64, unique=True)
    password_hash = fields.CharField(max_length=200, null=True)
    slack_user_id = fields.CharField(max_length=64, null=True, unique=True)
    is_active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "agent"


class Contact(Model):
    """A customer, possibly known on several channels."""

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=200, null=True)
    email = fields.CharField(max_length=320, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "contact"


class ContactIdentity(Model):
    """The id of a contact on one channel (phone number, PSID, email address, visitor id)."""

    id = fields.IntField(primary_key=True)
    contact: fields.ForeignKeyRelation[Contact] = fields.ForeignKeyField(
        "models.Contact", related_name="identities", on_delete=fields.CASCADE
    )
    channel = fields.CharField(max_length=32)
    external_id = fields.CharField(max_length=320)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "contact_identity"
        unique_together = (("channel", "external_id"),)


class Conversation(Model):
    """One conversation with a contact on one channel. Its state says who answers.

    `version` is the ownership epoch: every state change increments it, and a bot reply is
    only written if the version it was generated under is still current (the fence).
    """

    id = fields.IntField(primary_key=True)
    contact: fields.ForeignKeyRelation[Contact] = fields.ForeignKeyField(
        "models.Contact", related_name="conversations", on_delete=fields.CASCADE
    )
    channel = fields.CharField(max_length=32, db_index=True)
    external_key = fields.CharField(max_length=320)
    contact_external_id = fields.CharField(max_length=320)
    open_key = fields.CharField(max_length=360, null=True, unique=True)
    state = fields.CharField(max_length=8, default="bot", db_index=True)
    version = fields.IntField(default=0)
    language = fields.CharField(max_length=8, null=True)
    assignee: fields.ForeignKeyNullableRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="conversations", null=True, on_delete=fields.SET_NULL
    )
    last_responder = fields.CharField(max_length=8, null=True)
    # Who answered the customer last, "bot" or "agent" (with the agent when one is known), kept
    # apart from `last_responder`, which is "customer" while the customer waits for an answer.
    responded_by = fields.CharField(max_length=8, null=True, db_index=True)
    responded_by_agent: fields.ForeignKeyNullableRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="responded_conversations", null=True, on_delete=fields.SET_NULL
    )
    waiting_since = fields.DatetimeField(null=True)
    last_customer_message_at = fields.DatetimeField(null=True)
    # Customer messages (not automated) received so far: a bot reply is written only while the
    # count it answered is still current (a newer message supersedes it; see bot.turn).
    customer_messages = fields.IntField(default=0, db_default=0)
    # While the conversation waits in Unassigned for a team that is away (business hours, or
    # nobody online), the bot keeps answering the customer until an agent is assigned (which
    # bumps `version`, fencing a bot reply in flight): see `bot_answers`.
    bot_while_waiting = fields.BooleanField(default=False, db_default=False)
    # The bot turn's claim: which instance's turn answers now, until when (see bot.claim).
    bot_turn_holder = fields.CharField(max_length=32, null=True)
    bot_turn_until = fields.DatetimeField(null=True)
    last_activity_at = fields.DatetimeField(auto_now_add=True, db_index=True)
    thread = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)
    ended_at = fields.DatetimeField(null=True)

    class Meta:
        table = "conversation"

    @property
    def bot_answers(self) -> bool:
        """Whether the bot answers this conversation's customer now (`bot_answers()`)."""
        return self.state == ConversationState.BOT or (
            self.state == ConversationState.HUMAN and self.assignee_id is None  # type: ignore[attr-defined]
            and self.bot_while_waiting)


def bot_answers() -> Q:
    """The filter of conversations whose customer the bot answers: those in state "bot", and
    "human" ones waiting unassigned while the bot helps meanwhile (`bot_while_waiting`)."""
    return Q(state=ConversationState.BOT) | Q(state=ConversationState.HUMAN, assignee_id=None, bot_while_waiting=True)


# `bot_answers()` as an SQL condition on the conversation table, for `handoff.sql` statements.
BOT_ANSWERS_SQL = "(state = 'bot' OR (state = 'human' AND assignee_id IS NULL AND bot_while_waiting))"


class Ticket(Model):
    """One live-chat cycle of a conversation: takeover or escalation until handback or close."""

    id = fields.IntField(primary_key=True)
    conversation: fields.ForeignKeyRelation[Conversation] = fields.ForeignKeyField(
        "models.Conversation", related_name="tickets", on_delete=fields.CASCADE
    )
    open_key = fields.IntField(null=True, unique=True)
    kind = fields.CharField(max_length=16, default="live_chat")
    channel = fields.CharField(max_length=32)
    status = fields.CharField(max_length=12, default="open", db_index=True)
    assignee: fields.ForeignKeyNullableRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="tickets", null=True, on_delete=fields.SET_NULL
    )
    subject = fields.CharField(max_length=200, default="")
    summary = fields.TextField(default="")
    language = fields.CharField(max_length=8, null=True)
    reason = fields.CharField(max_length=200, default="")
    created_at = fields.DatetimeField(auto_now_add=True)
    closed_at = fields.DatetimeField(null=True)

    class Meta:
        table = "ticket"
        # A conversation's tickets, an agent's (and the queue's) live ones, without a scan.
        indexes = (("conversation_id", "id"), ("assignee_id", "status"))


class TicketRead(Model):
    """How far one agent has read one ticket: the id of the last customer message on the ticket
    when they last opened it (`GET /api/v1/tickets/{id}`). A ticket's unread count for an agent
    is the number of its customer messages with a greater id; no row means nothing read yet."""

    id = fields.IntField(primary_key=True)
    ticket: fields.ForeignKeyRelation[Ticket] = fields.ForeignKeyField(
        "models.Ticket", related_name="reads", on_delete=fields.CASCADE
    )
    agent: fields.ForeignKeyRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="ticket_reads", on_delete=fields.CASCADE
    )
    last_read_message_id = fields.IntField(default=0)
    read_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "ticket_read"
        unique_together = (("ticket", "agent"),)


class Message(Model):
    """A message on the timeline of a conversation. Incoming messages come from the customer, outgoing are
    bot, agent and notice messages (private ones are internal notes, never sent);
    activity messages are separators and system lines.

    `provider_id` is unique per channel: a provider retry of an inbound message, or a
    receipt for an outbound one, finds the same row. `origin` names where an agent wrote it
    when that was not the web desk or the API ("slack"), so it is not mirrored back there.

    A customer's edit replaces `text` and sets `edited_at`; `revisions` keeps the earlier
    texts, oldest first, as `[{"text", "replaced_at"}]` (ISO 8601 UTC). A message the customer
    unsent has `deleted_at` set and its text and attachments erased (Meta's platform policy).

    `sender` names who wrote an incoming message, `{"id", "name"}` (the channel's id: an email
    address), with `"automated": true` when a machine sent it (an auto-reply, a bounce): several
    people can write in one email thread, and the bot never answers a machine.
    """

    id = fields.IntField(primary_key=True)
    conversation: fields.ForeignKeyRelation[Conversation] = fields.ForeignKeyField(
        "models.Conversation", related_name="messages", on_delete=fields.CASCADE
    )
    ticket: fields.ForeignKeyNullableRelation[Ticket] = fields.ForeignKeyField(
        "models.Ticket", related_name="messages", null=True, on_delete=fields.SET_NULL
    )
    channel = fields.CharField(max_length=32)
    direction = fields.CharField(max_length=8)
    author_kind = fields.CharField(max_length=8)
    agent: fields.ForeignKeyNullableRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="messages", null=True, on_delete=fields.SET_NULL
    )
    text = fields.TextField(default="")
    private = fields.BooleanField(default=False)
    notice = fields.CharField(max_length=32, null=True)
    notice_params = fields.JSONField(default=dict)
    attachments = fields.JSONField(default=list)
    provider_id = fields.CharField(max_length=255, null=True)
    epoch = fields.IntField(null=True)
    delivery_status = fields.CharField(max_length=12, default="none")
    delivery_error = fields.TextField(null=True)
    origin = fields.CharField(max_length=16, null=True)
    sender = fields.JSONField(null=True)
    edited_at = fields.DatetimeField(null=True)
    revisions = fields.JSONField(null=True)
    deleted_at = fields.DatetimeField(null=True)
    # The agents an internal note @mentions, resolved when it was written: [{"id", "name"}].
    mentions = fields.JSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "message"
        unique_together = (("channel", "provider_id"),)
        # A conversation's newest messages (the bot's history, the language sample) and a ticket's
        # (its unread count, Slack's thread) without a scan.
        indexes = (("conversation_id", "id"), ("ticket_id", "id"))


class Event(Model):
    """An append-only timeline entry: takeover, transfer, handback, failures, summaries."""

    id = fields.IntField(primary_key=True)
    conversation: fields.ForeignKeyRelation[Conversation] = fields.ForeignKeyField(
        "models.Conversation", related_name="events", on_delete=fields.CASCADE
    )
    ticket: fields.ForeignKeyNullableRelation[Ticket] = fields.ForeignKeyField(
        "models.Ticket", related_name="events", null=True, on_delete=fields.SET_NULL
    )
    kind = fields.CharField(max_length=32)
    agent: fields.ForeignKeyNullableRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="events", null=True, on_delete=fields.SET_NULL
    )
    data = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "event"
        indexes = (("conversation_id", "id"),)  # a conversation's timeline, without a scan


class Outbox(Model):
    """A pending delivery of one outgoing message to its channel.

    A message the channel sends in several parts records how many the provider accepted
    (`parts_sent`) and the first one's id, so a retry resumes after them. `status` is pending,
    sending (claimed by the worker `claimed_by` until `claimed_until`, database time), accepted
    (the provider took the whole message; what remains is to record it), done, failed,
    cancelled or skipped.
    """

    id = fields.IntField(primary_key=True)
    message: fields.OneToOneRelation[Message] = fields.OneToOneField(
        "models.Message", related_name="outbox", on_delete=fields.CASCADE
    )
    channel = fields.CharField(max_length=32)
    conversation_id = fields.IntField(db_index=True)
    status = fields.CharField(max_length=10, default="pending", db_index=True)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(db_index=True)
    claimed_until = fields.DatetimeField(null=True)
    claimed_by = fields.CharField(max_length=32, null=True)
    last_error = fields.TextField(null=True)
    parts_sent = fields.IntField(default=0, db_default=0)
    first_part_id = fields.CharField(max_length=255, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "outbox"


class PendingReceipt(Model):
    """A delivery receipt for a provider message id no message holds yet.

    Providers can post a receipt before the send call that returned the id has finished
    (Twilio's status callback, Meta's delivery/read): it waits here, and is applied when the
    outbox records the id; the sweeper drops receipts older than a day.
    """

    id = fields.IntField(primary_key=True)
    channel = fields.CharField(max_length=32)
    provider_id = fields.CharField(max_length=255)
    state = fields.CharField(max_length=12)
    error_code = fields.CharField(max_length=64, null=True)
    error = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "pending_receipt"
        unique_together = (("channel", "provider_id", "state"),)


class ProcessedKey(Model):
    """Keys of provider events already handled (Slack event_id, callback ids): replays are no-ops."""

    id = fields.IntField(primary_key=True)
    scope = fields.CharField(max_length=32)
    key = fields.CharField(max_length=255)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "processed_key"
        unique_together = (("scope", "key"),)


class KeyValue(Model):
    """Small durable state for integrations (Slack thread map, email cursors, contact name cache)."""

    id = fields.IntField(primary_key=True)
    scope = fields.CharField(max_length=32)
    key = fields.CharField(max_length=255)
    value = fields.JSONField(default=dict)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "key_value"
        unique_together = (("scope", "key"),)


class Label(Model):
    """A label agents put on conversations ("refund", "needs-human"), shown in `color` (`#rrggbb`).

    `name` is kept as written (trimmed, inner spaces single); `key`, its case-folded form, is
    unique, so two labels never differ only by case.
    """

    id = fields.IntField(primary_key=True)
    name = fields.CharField(max_length=40)
    key = fields.CharField(max_length=160, unique=True)
    color = fields.CharField(max_length=7)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "label"


class ConversationLabel(Model):
    """A label on a conversation, put there by `agent` (its tickets show the conversation's labels)."""

    id = fields.IntField(primary_key=True)
    conversation: fields.ForeignKeyRelation[Conversation] = fields.ForeignKeyField(
        "models.Conversation", related_name="label_links", on_delete=fields.CASCADE
    )
    label: fields.ForeignKeyRelation[Label] = fields.ForeignKeyField(
        "models.Label", related_name="conversation_links", on_delete=fields.CASCADE, db_index=True
    )
    agent: fields.ForeignKeyNullableRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="label_links", null=True, on_delete=fields.SET_NULL
    )
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "conversation_label"
        unique_together = (("conversation", "label"),)


class Notification(Model):
    """Something on the desk for one agent only: today, that a colleague @mentioned them in an
    internal note (`kind` "mention"; Chatwoot's `conversation_mention`). `actor` is who wrote the
    note, `message` the note; `read_at` is set once the agent read it."""

    id = fields.IntField(primary_key=True)
    agent: fields.ForeignKeyRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="notifications", on_delete=fields.CASCADE
    )
    kind = fields.CharField(max_length=16, default="mention")
    conversation: fields.ForeignKeyRelation[Conversation] = fields.ForeignKeyField(
        "models.Conversation", related_name="notifications", on_delete=fields.CASCADE
    )
    ticket: fields.ForeignKeyNullableRelation[Ticket] = fields.ForeignKeyField(
        "models.Ticket", related_name="notifications", null=True, on_delete=fields.SET_NULL
    )
    message: fields.ForeignKeyNullableRelation[Message] = fields.ForeignKeyField(
        "models.Message", related_name="notifications", null=True, on_delete=fields.CASCADE
    )
    actor: fields.ForeignKeyNullableRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="notifications_sent", null=True, on_delete=fields.SET_NULL
    )
    read_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "notification"
        indexes = (("agent_id", "created_at"),)  # an agent's list, newest first, and their unread count


class CannedResponse(Model):
    """A saved reply (Chatwoot's canned response): an agent types `/<short_code>` in the desk's
    composer or a Slack thread and gets `content`, its `{{contact.name}}`-style placeholders
    filled in (`handoff.canned`). `short_code` is stored in lower case, unique."""

    id = fields.IntField(primary_key=True)
    short_code = fields.CharField(max_length=50, unique=True)
    content = fields.TextField()
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "canned_response"


class AgentPresence(Model):
    """An agent's own availability and routing mark

    `status` is what they said ("online", or "away" while they do not want new tickets); `last_assigned_at` is when routing last gave them
    a ticket (round robin picks the agent who waited longest). Whether they are connected at all
    is `AgentConnection`'s; `handoff.presence` combines the two."""

    id = fields.IntField(primary_key=True)
    agent: fields.OneToOneRelation[Agent] = fields.OneToOneField(
        "models.Agent", related_name="presence", on_delete=fields.CASCADE
    )
    status = fields.CharField(max_length=8, default="online")
    last_assigned_at = fields.DatetimeField(null=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "agent_presence"


class AgentConnection(Model):
    """One open desk stream of an agent

    On instance `instance`, live until `expires_at` (database time, renewed by the stream's heartbeat): an instance that dies leaves rows that
    simply expire."""

    id = fields.IntField(primary_key=True)
    agent: fields.ForeignKeyRelation[Agent] = fields.ForeignKeyField(
        "models.Agent", related_name="connections", on_delete=fields.CASCADE
    )
    instance = fields.CharField(max_length=32)
    expires_at = fields.DatetimeField(db_index=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "agent_connection"
class LiveEvent(Model):
    """A live event, in the order clients see them (`id` is its `seq`): the log a desk stream
    resumes from and that other instances read when Redis loses a message (handoff.eventlog).
    Pruned after `live_event_retention` hours by the sweeper."""

    id = fields.BigIntField(primary_key=True)
    kind = fields.CharField(max_length=64)
    data = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "live_event"
