"""One request, many items: each is stored on its own (handoff/ingest.py).

A storage fault on one item of a Meta batch (three messages and a delivery receipt) — a real one,
raised by a database trigger on both stores — never costs its neighbours: they are committed, the
request answers 500 so Meta retries, and the retry stores the rest once.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from tortoise import connections

from handoff import metrics
from handoff.channels.meta import sign_headers
from handoff.config import Settings
from handoff.models import Message

BATCH = (Path(__file__).parents[1] / "webhooks" / "messenger" / "message__batched.json").read_bytes()
SECRET = "test-app-secret"
POISONED = "m_batch0002"

_FAULT = {
    "sqlite": (f"CREATE TRIGGER poison BEFORE INSERT ON message WHEN NEW.provider_id = '{POISONED}' "
               "BEGIN SELECT RAISE(ABORT, 'storage fault'); END;",
               "DROP TRIGGER IF EXISTS poison;"),
    "postgres": (f"CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN IF NEW.provider_id = '{POISONED}' THEN "
                 "RAISE EXCEPTION 'storage fault'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql; "
                 "CREATE TRIGGER poison BEFORE INSERT ON message FOR EACH ROW EXECUTE FUNCTION poison();",
                 "DROP TRIGGER IF EXISTS poison ON message; DROP FUNCTION IF EXISTS poison();"),
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update=dict(meta_app_secret=SECRET, meta_verify_token="verify",
                               messenger_page_token="token", meta_graph_base="http://127.0.0.1:9/v21.0"))


async def test_a_storage_fault_on_one_item_costs_only_that_item_until_the_retry(client, db_url: str) -> None:
    store = "sqlite" if db_url.startswith("sqlite") else "postgres"
    create, drop = _FAULT[store]
    failed = metrics.WEBHOOK_ITEMS_FAILED.labels("messenger")
    before = failed._value.get()
    db = connections.get("default")
    await db.execute_script(create)
    try:
        answer = await client.post("/webhooks/messenger", data=BATCH, headers=sign_headers(SECRET, BATCH))
        assert answer.status == 500
        assert (await answer.json()) == {"error": "1 of 4 items could not be stored; retry"}
        stored = await Message.filter(direction="incoming").order_by("id").values_list("provider_id", flat=True)
        assert stored == ["m_batch0001", "m_batch0003"]
        assert failed._value.get() == before + 1
    finally:
        await db.execute_script(drop)

    retry = await client.post("/webhooks/messenger", data=BATCH, headers=sign_headers(SECRET, BATCH))
    assert retry.status == 200
    stored = await Message.filter(direction="incoming").order_by("provider_id").values_list("provider_id", "text")
    assert stored == [("m_batch0001", "first"), ("m_batch0002", "second, another customer"), ("m_batch0003", "third")]
