"""The Slack poster: durable, ordered, about one post per second per channel, 429 Retry-After honoured."""

from __future__ import annotations

import asyncio
import time

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from handoff import db
from handoff.desk.slack import threads
from handoff.desk.slack.poster import Poster
from handoff.lease import Lease
from tests.fakes.slack_api import FakeSlack


@pytest.fixture
async def database(tmp_path):
    url = f"sqlite://{tmp_path / 'slack.db'}"
    await db.migrate(url)
    await db.connect(url)
    yield url
    await db.disconnect()


@pytest.fixture
async def fake(aiohttp_server):
    fake = FakeSlack()
    server = await aiohttp_server(fake.app)
    fake.base = str(server.make_url("/api/"))
    return fake


def poster_for(fake: FakeSlack, interval: float, lease: Lease | None = None) -> tuple[Poster, AsyncWebClient]:
    client = AsyncWebClient(token=fake.token, base_url=fake.base)
    poster: Poster

    async def handler(job: dict) -> None:
        await poster.pace(job["channel"])
        await client.chat_postMessage(channel=job["channel"], text=job["text"])

    poster = Poster(handler, interval=interval, lease=lease)
    return poster, client


async def test_posts_are_paced_per_channel(database, fake) -> None:
    poster, client = poster_for(fake, interval=0.2)
    for n in range(5):
        await poster.enqueue({"channel": "C0SUPPORT", "text": f"m{n}"})
    assert await poster.run_once() == 5
    calls = fake.of("chat.postMessage")
    assert [c.args["text"] for c in calls] == ["m0", "m1", "m2", "m3", "m4"]
    gaps = [b.at - a.at for a, b in zip(calls, calls[1:])]
    assert min(gaps) >= 0.18, gaps
    assert await poster.pending() == []


async def test_default_pace_is_one_message_per_second(database, fake) -> None:
    poster, _ = poster_for(fake, interval=None)  # type: ignore[arg-type]
    assert poster.interval == 1.0
    started = time.monotonic()
    for n in range(3):
        await poster.enqueue({"channel": "C0SUPPORT", "text": f"m{n}"})
    await poster.run_once()
    assert time.monotonic() - started >= 1.9


async def test_rate_limited_post_waits_retry_after_and_is_sent_once(database, fake) -> None:
    poster, _ = poster_for(fake, interval=0.0)
    fake.rate_limit("chat.postMessage", times=1, retry_after=1)
    await poster.enqueue({"channel": "C0SUPPORT", "text": "first"})
    await poster.enqueue({"channel": "C0SUPPORT", "text": "second"})
    started = time.monotonic()
    while await poster.pending():
        await poster.run_once()
    calls = fake.of("chat.postMessage")
    assert [c.args["text"] for c in calls] == ["first", "first", "second"]
    assert calls[1].at - calls[0].at >= 0.95
    assert time.monotonic() - started >= 0.95
    assert poster.rate_limited == 1
    assert len(fake.messages) == 2


async def test_jobs_survive_a_restart(database, fake) -> None:
    poster, _ = poster_for(fake, interval=0.0)
    await poster.enqueue({"channel": "C0SUPPORT", "text": "kept"})
    await poster.enqueue({"channel": "C0SUPPORT", "text": "kept too"})
    # Process "crashes" before sending: a new poster finds the jobs in the database.
    revived, _ = poster_for(fake, interval=0.0)
    revived.start()
    await revived.drain(timeout=5)
    await revived.close()
    assert [c.args["text"] for c in fake.of("chat.postMessage")] == ["kept", "kept too"]


async def test_keyed_jobs_are_enqueued_once(database, fake) -> None:
    poster, _ = poster_for(fake, interval=0.0)
    assert await poster.enqueue({"channel": "C0SUPPORT", "text": "x"}, key="msg:7")
    assert not await poster.enqueue({"channel": "C0SUPPORT", "text": "x"}, key="msg:7")
    await poster.run_once()
    assert len(fake.of("chat.postMessage")) == 1


async def test_failing_job_is_dropped_after_its_attempts(database, fake, monkeypatch) -> None:
    import handoff.desk.slack.poster as poster_module

    monkeypatch.setattr(poster_module, "MAX_ATTEMPTS", 2)
    poster, _ = poster_for(fake, interval=0.0)
    await poster.enqueue({"channel": "C0NOPE", "text": "lost"})
    await poster.enqueue({"channel": "C0SUPPORT", "text": "fine"})
    for _ in range(3):
        await poster.run_once()
    assert [c.args["text"] for c in fake.of("chat.postMessage")] == ["lost", "lost", "fine"]
    assert await poster.pending() == []


async def test_thread_map_both_ways(database) -> None:
    thread = threads.SlackThread(team="T1", channel="C1", ts="1.2", ticket_id=5, conversation_id=9)
    await threads.remember(thread)
    await threads.remember(thread)
    assert await threads.by_thread("T1", "C1", "1.2") == thread
    assert await threads.by_ticket(5) == thread
    assert await threads.by_thread("T2", "C1", "1.2") is None
    assert await threads.by_thread("T1", "C1", "1.3") is None
    assert await threads.by_ticket(6) is None


async def test_two_instances_post_each_message_once(database, fake) -> None:
    """Both instances' posters see the same stored jobs; the lease lets one send, the other waits."""
    first, _ = poster_for(fake, interval=0.0, lease=Lease("slack-poster"))
    second, _ = poster_for(fake, interval=0.0, lease=Lease("slack-poster"))
    for n in range(6):
        await first.enqueue({"channel": "C0SUPPORT", "text": f"m{n}"})
    done = await asyncio.gather(first.run_once(), second.run_once())
    assert sorted(done) == [0, 6]
    assert [c.args["text"] for c in fake.of("chat.postMessage")] == [f"m{n}" for n in range(6)]
    holder = first if done[0] else second
    other = second if holder is first else first
    await holder.close()  # it shuts down: the other instance takes over at once
    await other.enqueue({"channel": "C0SUPPORT", "text": "after the handover"})
    assert await other.run_once() == 1
    assert fake.of("chat.postMessage")[-1].args["text"] == "after the handover"


async def test_failed_attempts_survive_a_restart(database, fake, monkeypatch) -> None:
    """The attempt count is stored with the job: a poster started after two failures drops the job
    on its third (MAX_ATTEMPTS = 3) instead of starting over."""
    import handoff.desk.slack.poster as poster_module

    monkeypatch.setattr(poster_module, "MAX_ATTEMPTS", 3)
    first, _ = poster_for(fake, interval=0.0)
    await first.enqueue({"channel": "C0NOPE", "text": "broken"})
    first.start()
    while len(fake.of("chat.postMessage")) < 2:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)  # the count is stored before the backoff sleep (0.4 s) after failure 2
    await first.close()  # the process "crashes" during that sleep
    assert await first.pending() == [{"channel": "C0NOPE", "text": "broken"}]  # the count stays internal
    restarted, _ = poster_for(fake, interval=0.0)
    await restarted.run_once()
    assert [c.args["text"] for c in fake.of("chat.postMessage")] == ["broken"] * 3
    assert await restarted.pending() == []
