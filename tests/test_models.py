"""handoff's base Model builds instances as tortoise's own Model.__init__ does (its per-model
plan of defaults must not drift from tortoise's answers)."""

from __future__ import annotations

import inspect

import pytest
from tortoise import models
from tortoise.exceptions import ValidationError
from tortoise.signals import Signals

from handoff import models as handoff_models

MODELS = [m for _, m in inspect.getmembers(handoff_models, inspect.isclass)
          if issubclass(m, handoff_models.Model) and not m._meta.abstract]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_a_new_instance_has_the_fields_and_defaults_tortoise_gives_it(model):
    ours = model()
    theirs = model.__new__(model)
    models.Model.__init__(theirs)
    assert vars(ours).keys() == vars(theirs).keys()
    for key, value in vars(theirs).items():
        assert vars(ours)[key] == value, key
        if isinstance(value, (dict, list)):  # a mutable default is each instance's own
            assert vars(ours)[key] is not value and vars(ours)[key] is not vars(model())[key]


async def test_a_relation_set_on_an_instance_is_still_type_checked(client):
    message = handoff_models.Message()
    with pytest.raises(ValidationError, match="conversation"):
        message.conversation = handoff_models.Contact(name="not a conversation")


async def _both_ways(model, **kwargs):
    """A row made by handoff's `create` and one made by tortoise's own save, with `kwargs`."""
    ours = await model.create(**kwargs)
    theirs = model(**kwargs)
    await models.Model.save(theirs, force_create=True)
    return ours, theirs


def _state(instance, *, drop=("id", "created_at")):
    return {key: value for key, value in vars(instance).items() if key not in drop}


async def test_create_stores_and_returns_what_tortoise_save_does(client):
    contact, other = await _both_ways(handoff_models.Contact, name="Ana Lima", email=None)
    assert contact.id and other.id == contact.id + 1 and contact._saved_in_db
    assert contact.created_at is not None and _state(contact) == _state(other)
    conversation, _ = await _both_ways(handoff_models.Conversation, contact=contact, channel="api",
                                       external_key="k", contact_external_id="c", thread={"subject": "Hi"})
    message, twin = await _both_ways(handoff_models.Message, conversation=conversation, channel="api",
                                     direction="outgoing", author_kind="bot", text="hello", notice_params={"a": 1},
                                     attachments=[{"url": "https://example.com/a.png"}], delivery_status="pending")
    assert _state(message, drop=("id", "created_at", "_conversation")) == _state(twin, drop=("id", "created_at",
                                                                                              "_conversation"))
    assert message.conversation_id == conversation.id and (await message.conversation).id == conversation.id
    rows = await handoff_models.Message.filter(id__in=[message.id, twin.id]).order_by("id").values()
    assert [{k: v for k, v in row.items() if k not in ("id", "created_at")} for row in rows] == [
        {k: v for k, v in rows[0].items() if k not in ("id", "created_at")}] * 2
    assert rows[0]["notice_params"] == {"a": 1} and rows[0]["attachments"] == [{"url": "https://example.com/a.png"}]
    stored = await handoff_models.Message.get(id=message.id)
    assert stored.created_at == message.created_at  # the instance holds what the row holds


async def test_create_keeps_tortoise_errors_and_save_signals(client):
    from tortoise.exceptions import IntegrityError
    from tortoise.signals import post_save

    await handoff_models.Agent.create(name="Ana", email="ana@example.com", token_hash="a" * 64)
    with pytest.raises(IntegrityError):
        await handoff_models.Agent.create(name="Ana", email="ana@example.com", token_hash="b" * 64)
    with pytest.raises(ValidationError, match="name"):
        await handoff_models.Agent.create(name="x" * 201, email="bo@example.com", token_hash="c" * 64)
    saved = []

    async def listener(sender, instance, created, using_db, update_fields):
        saved.append((sender, instance.name, created))

    post_save(handoff_models.Agent)(listener)
    try:
        await handoff_models.Agent.create(name="Bo", email="bo@example.com", token_hash="d" * 64)
    finally:
        handoff_models.Agent._listeners[Signals.post_save][handoff_models.Agent].remove(listener)
    assert saved == [(handoff_models.Agent, "Bo", True)]
