"""handoff's base Model builds instances as tortoise's own Model.__init__ does (its per-model
plan of defaults must not drift from tortoise's answers)."""

from __future__ import annotations

import inspect

import pytest
from tortoise import models
from tortoise.exceptions import ValidationError

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
