"""Business hours: the setting's format (checked at start), opening times across days, weekends
and clock changes, and what a customer who asks for a person is told outside them or with nobody
online, in their language, with a fixed clock."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from zoneinfo import ZoneInfo

import pytest

from handoff import presence
from handoff.config import Settings
from handoff.hours import parse
from handoff.models import Conversation, Message, Ticket
from handoff.notices import LANGUAGES, opening_time, render
from handoff.runtime import Runtime
from handoff.sweeper import answer_unanswered
from tests.conftest import settle

MADRID = ZoneInfo("Europe/Madrid")
HOURS = "Mon-Fri 09:00-17:00 Europe/Madrid"


def _at(*args: int) -> datetime:
    return datetime(*args, tzinfo=MADRID)


@pytest.mark.parametrize(("text", "fault"), [
    ("Mon-Fri 9:00-17:00 Europe/Madrid", "is not 'Days HH:MM-HH:MM'"),
    ("Mon-Fri 09:00-17:00 Mars/Olympus", "unknown time zone 'Mars/Olympus'"),
    ("Mon-Fri 17:00-09:00 UTC", "the end must be after the start"),
    ("Mon-Fry 09:00-17:00 UTC", "unknown day 'Fry'"),
    ("Mon-Fri 09:00-25:00 UTC", "is not a time of day"),
    ("Europe/Madrid", "expected days, hours and a time zone"),
])
def test_a_bad_setting_stops_the_start_with_what_is_wrong(text: str, fault: str) -> None:
    with pytest.raises(ValueError) as error:
        Settings.from_env({"HANDOFF_BUSINESS_HOURS": text})
    assert str(error.value).startswith("HANDOFF_BUSINESS_HOURS: ")
    assert fault in str(error.value)


def test_empty_is_always_open() -> None:
    assert parse("") is None
    assert Settings.from_env({}).business_hours == ""


@pytest.mark.parametrize(("now", "is_open", "opening"), [
    (_at(2026, 12, 7, 10, 0), True, _at(2026, 12, 8, 9, 0)),    # Monday, open: the next opening is Tuesday's
    (_at(2026, 12, 7, 8, 59), False, _at(2026, 12, 7, 9, 0)),   # before opening the same day
    (_at(2026, 12, 7, 17, 0), False, _at(2026, 12, 8, 9, 0)),   # the end is not open
    (_at(2026, 12, 4, 18, 30), False, _at(2026, 12, 7, 9, 0)),  # Friday evening: Monday
    (_at(2026, 12, 5, 12, 0), False, _at(2026, 12, 7, 9, 0)),   # Saturday
    (_at(2027, 3, 27, 12, 0), False, _at(2027, 3, 29, 9, 0)),   # over the spring clock change: 09:00 CEST
])
def test_open_and_next_opening(now: datetime, is_open: bool, opening: datetime) -> None:
    hours = parse(HOURS)
    assert hours is not None
    assert hours.is_open(now.astimezone(timezone.utc)) is is_open
    found = hours.next_opening(now.astimezone(timezone.utc))
    assert found == opening and found.utcoffset() == opening.utcoffset()


def test_several_spans_and_a_range_over_the_weekend() -> None:
    hours = parse("Mon-Fri 09:00-13:00, Mon-Thu 15:00-18:00, Sat-Sun 10:00-12:00 America/Bogota")
    assert hours is not None
    bogota = ZoneInfo("America/Bogota")
    assert hours.is_open(datetime(2026, 12, 7, 16, 0, tzinfo=bogota))       # Monday afternoon
    assert not hours.is_open(datetime(2026, 12, 4, 16, 0, tzinfo=bogota))   # Friday afternoon
    assert hours.next_opening(datetime(2026, 12, 4, 14, 0, tzinfo=bogota)) == datetime(2026, 12, 5, 10, 0, tzinfo=bogota)
    assert hours.next_opening(datetime(2026, 12, 7, 13, 30, tzinfo=bogota)) == datetime(2026, 12, 7, 15, 0, tzinfo=bogota)


def test_the_opening_is_written_in_each_language() -> None:
    monday = _at(2026, 12, 7, 9, 0)
    assert opening_time(monday, "en") == "Mon, December 7 09:00 (Central European Standard Time)"
    assert opening_time(monday, "es") == "lun, 7 de diciembre 9:00 (hora estándar de Europa central)"
    assert opening_time(monday, "de").startswith("Mo., 7. Dezember 09:00")
    assert opening_time(monday, "ja").startswith("12月7日月曜日 9:00")
    assert len({opening_time(monday, language) for language in LANGUAGES}) == len(LANGUAGES)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"business_hours": HOURS})


def _fix_clock(rt: Runtime, at: datetime) -> None:
    rt.now = lambda: at.astimezone(timezone.utc)


async def _ask_for_a_person(rt: Runtime, say, key: str, text: str) -> tuple[Conversation, list[Message]]:
    await say(text, conversation=key)
    await settle(rt)
    conversation = await Conversation.get(external_key=key)
    notices = await Message.filter(conversation_id=conversation.id, notice__not_isnull=True,
                                   direction="outgoing").order_by("id")
    return conversation, notices


async def test_outside_hours_the_customer_is_told_when_the_team_is_back_in_their_language(client, rt, say, callback):
    _fix_clock(rt, _at(2026, 12, 5, 11, 0))  # a Saturday
    conversation, notices = await _ask_for_a_person(rt, say, "weekend", "Hola, quiero hablar con una persona")
    assert conversation.language == "es"
    when = opening_time(_at(2026, 12, 7, 9, 0), "es")
    assert [(m.notice, m.notice_params) for m in notices] == [("waiting", {}), ("away", {"when": when})]
    away = render("away", "es", when=when)
    assert "7 de diciembre" in away and away in [c["text"] for c in callback.received if c.get("status") == "away"]
    ticket = await Ticket.get(conversation_id=conversation.id)
    assert (ticket.status, ticket.assignee_id) == ("open", None)  # the ticket still waits


async def test_in_hours_with_nobody_online_the_customer_is_told_so(client, rt, say):
    _fix_clock(rt, _at(2026, 12, 7, 11, 0))  # Monday, open
    _, notices = await _ask_for_a_person(rt, say, "nobody", "I want to talk to a person")
    assert [m.notice for m in notices] == ["waiting", "unavailable"]


async def test_in_hours_with_an_agent_online_only_the_wait_is_announced(client, rt, say, make_agent):
    _fix_clock(rt, _at(2026, 12, 7, 11, 0))
    ana, _ = await make_agent("Ana")
    await presence.connect(rt.hub, ana)
    conversation, notices = await _ask_for_a_person(rt, say, "staffed", "I want to talk to a person")
    assert [m.notice for m in notices] == ["waiting"]
    assert (await Ticket.get(conversation_id=conversation.id)).assignee_id == ana.id


async def _bot_replies(conversation: Conversation) -> list[Message]:
    return await Message.filter(conversation_id=conversation.id, author_kind="bot").order_by("id")


async def test_while_the_team_is_away_the_bot_keeps_helping_on_the_waiting_ticket(client, rt, say, callback):
    _fix_clock(rt, _at(2026, 12, 5, 11, 0))  # a Saturday
    conversation, _ = await _ask_for_a_person(rt, say, "meanwhile", "I want to talk to a person")
    assert "Meanwhile, our AI assistant can keep helping you here." in render("away", "en", when="x")
    assert await answer_unanswered(rt, grace=0) == 0  # the notices answered the request for a person

    await say("what are your opening hours?", conversation="meanwhile")
    await settle(rt)
    ticket = await Ticket.get(conversation_id=conversation.id)
    replies = await _bot_replies(conversation)
    assert [(m.text, m.ticket_id) for m in replies] == [("echo: what are your opening hours?", ticket.id)]
    assert "echo: what are your opening hours?" in [c["text"] for c in callback.for_conversation("meanwhile")]
    assert (ticket.status, ticket.assignee_id) == ("open", None)  # still waiting for the team

    # Asking for a person again opens nothing new: the customer is told where they stand.
    await say("a person please", conversation="meanwhile")
    await settle(rt)
    assert await Ticket.filter(conversation_id=conversation.id).count() == 1
    notices = await Message.filter(conversation_id=conversation.id, notice__not_isnull=True).order_by("-id")
    assert (notices[0].notice, notices[0].ticket_id) == ("away", ticket.id)
    assert len(await _bot_replies(conversation)) == 1


async def test_the_bot_stops_helping_once_an_agent_takes_the_ticket_and_its_reply_in_flight_is_dropped(
        client, rt, say, bot, callback, make_agent):
    _fix_clock(rt, _at(2026, 12, 7, 11, 0))  # Monday, open, nobody online
    conversation, _ = await _ask_for_a_person(rt, say, "taken", "I want to talk to a person")
    ticket = await Ticket.get(conversation_id=conversation.id)
    _, headers = await make_agent("Ana")

    bot.gate = asyncio.Event()
    bot.started.clear()
    await say("still there?", conversation="taken")
    await asyncio.wait_for(bot.started.wait(), 5)  # the bot is writing its answer...
    claimed = await client.post(f"/api/v1/tickets/{ticket.id}/claim", headers=headers)
    assert claimed.status == 200, await claimed.text()
    bot.gate.set()  # ...and finishes it after Ana took the ticket
    await settle(rt)
    assert await _bot_replies(conversation) == []
    assert "echo: still there?" not in [c["text"] for c in callback.for_conversation("taken")]

    await say("hello?", conversation="taken")
    await settle(rt)
    assert await _bot_replies(conversation) == []  # Ana answers from now on
    assert (await Conversation.get(id=conversation.id)).bot_while_waiting is False


async def test_a_bot_reply_written_but_not_yet_sent_when_an_agent_is_assigned_is_never_sent(
        client, rt, say, callback, make_agent):
    _fix_clock(rt, _at(2026, 12, 5, 11, 0))  # a Saturday
    conversation, _ = await _ask_for_a_person(rt, say, "queued-reply", "I want to talk to a person")
    ticket = await Ticket.get(conversation_id=conversation.id)
    _, headers = await make_agent("Ana")
    gate = callback.hold("queued-reply")
    await say("first?", conversation="queued-reply")
    await callback.wait_until_held()  # the bot's first answer is on its way
    await say("second?", conversation="queued-reply")
    second = None
    while second is None:  # written, and queued behind the first (order per conversation)
        await asyncio.sleep(0.02)
        second = await Message.get_or_none(conversation_id=conversation.id, text="echo: second?")
    claimed = await client.post(f"/api/v1/tickets/{ticket.id}/claim", headers=headers)
    assert claimed.status == 200, await claimed.text()
    gate.set()
    await settle(rt)
    sent = [c["text"] for c in callback.for_conversation("queued-reply")]
    assert "echo: first?" in sent and "echo: second?" not in sent
    assert (await Message.get(id=second.id)).delivery_status == "cancelled"


async def test_with_an_agent_online_the_bot_does_not_answer_a_waiting_ticket(client, rt, say, make_agent):
    _fix_clock(rt, _at(2026, 12, 7, 11, 0))
    rt.settings = rt.settings.model_copy(update={"auto_assign": False})  # online, but nobody took it yet
    ana, _ = await make_agent("Ana")
    await presence.connect(rt.hub, ana)
    conversation, _ = await _ask_for_a_person(rt, say, "queued", "I want to talk to a person")
    await say("anyone?", conversation="queued")
    await settle(rt)
    assert (await Ticket.get(conversation_id=conversation.id)).assignee_id is None
    assert await _bot_replies(conversation) == []
