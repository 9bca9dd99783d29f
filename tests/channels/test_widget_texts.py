"""The widget's words and the customer's own details, server side: the `texts` frame (every label
in the visitor's language, switching live), its catalog entries, and the pre-chat answers kept on
the Contact (`POST /widget/contact`), on both stores."""

from __future__ import annotations

import re
from typing import Any

import pytest

from handoff import notices
from handoff.channels.widget.contact import save_contact_details
from handoff.channels.widget.texts import texts_frame
from handoff.models import Contact, ContactIdentity, Conversation
from handoff.runtime import RUNTIME
from tests.channels.test_widget import finish, frames_until, new_session, open_ws, own_origin, say
from tests.conftest import settle

PLACEHOLDERS = re.compile(r"\{(\w+)\}")


@pytest.mark.parametrize("language", notices.LANGUAGES)
def test_every_widget_text_is_in_every_catalog(language: str) -> None:
    catalog = notices._catalog(language)
    for key, msgid in notices.WIDGET_TEXTS.items():
        entry = catalog.get(msgid)
        assert entry is not None and not entry.fuzzy, (language, key)
        if language != "en":
            assert entry.string, (language, key)
            assert set(PLACEHOLDERS.findall(entry.string)) == set(PLACEHOLDERS.findall(msgid)), (language, key)


def test_the_frame_has_every_word_the_widget_draws() -> None:
    frame = texts_frame("pt-BR")
    assert frame["language"] == "pt" and frame["max_text"] == 8000
    assert set(notices.WIDGET_TEXTS) | {"waiting", "live_chat", "ai_resumed"} == set(frame["texts"])
    assert frame["texts"]["send"] == "Enviar" and frame["texts"]["bot"] == "Assistente de IA"
    assert texts_frame("xx")["texts"]["placeholder"] == "Type a message…"  # unknown language: English
    assert texts_frame("ja")["texts"]["too_long"].count("{count}") == 1  # the widget fills the numbers in


async def test_the_browser_language_is_used_until_the_conversation_has_one(client: Any) -> None:
    session = await new_session(client)
    ws = await client.ws_connect(f"/widget/ws?token={session['token']}&lang=fr-CA", headers={"Origin": own_origin(client)})
    assert await ws.receive_json() == texts_frame("fr")
    await frames_until(ws, lambda f: f["type"] == "ready")
    await say(ws, "client-id-0201", "Guten Tag, wann kommt meine Bestellung nach Berlin? Ich warte schon lange.")
    assert (await frames_until(ws, lambda f: f["type"] == "texts"))[-1] == texts_frame("de")
    await ws.close()
    await settle(client.app[RUNTIME])  # the bot's answer is delivered: no push races the first frame
    # The conversation's language now wins over the browser's.
    ws = await client.ws_connect(f"/widget/ws?token={session['token']}&lang=fr", headers={"Origin": own_origin(client)})
    assert (await ws.receive_json()) == texts_frame("de")
    await finish(client, ws)


async def test_every_tab_switches_and_a_message_in_the_same_language_sends_nothing_again(client: Any) -> None:
    session = await new_session(client)
    one, two = await open_ws(client, session["token"]), await open_ws(client, session["token"])
    for ws in (one, two):
        await frames_until(ws, lambda f: f["type"] == "ready")
    await say(one, "client-id-0301", "Hola, ¿cuándo llega mi pedido a Madrid? Lo compré la semana pasada.")
    for ws in (one, two):
        assert (await frames_until(ws, lambda f: f["type"] == "texts"))[-1]["language"] == "es"
    await settle(client.app[RUNTIME])
    await say(one, "client-id-0302", "¿Y puedo cambiar la dirección de entrega, por favor?")
    await settle(client.app[RUNTIME])
    await one.send_json({"type": "ping"})
    frames = await frames_until(one, lambda f: f["type"] == "pong")
    assert [f for f in frames if f["type"] == "texts"] == []
    await finish(client, one, two)


async def post_contact(client: Any, token: str | None, body: Any) -> Any:
    headers = {"Origin": own_origin(client)}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return await client.post("/widget/contact", json=body, headers=headers)


async def test_prechat_answers_are_kept_on_the_contact_of_the_first_message(client: Any) -> None:
    session = await new_session(client)
    resp = await post_contact(client, session["token"], {"name": "  Ana Souza ", "email": "Ana@Example.COM"})
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == own_origin(client)
    ws = await open_ws(client, session["token"])
    await frames_until(ws, lambda f: f["type"] == "ready")
    await say(ws, "client-id-0401", "hello there")
    conversation = await Conversation.get(external_key=session["visitor_id"]).select_related("contact")
    assert (conversation.contact.name, conversation.contact.email) == ("Ana Souza", "Ana@example.com")
    assert await Contact.all().count() == 1 and await ContactIdentity.filter(channel="widget").count() == 1
    await finish(client, ws)


async def test_prechat_answers_fill_in_only_what_the_contact_lacks(client: Any) -> None:
    session = await new_session(client)
    assert (await post_contact(client, session["token"], {"email": "first@example.com"})).status == 204
    assert (await post_contact(client, session["token"], {"name": "Ana", "email": "other@example.com"})).status == 204
    contact = (await ContactIdentity.get(external_id=session["visitor_id"]).select_related("contact")).contact
    assert (contact.name, contact.email) == ("Ana", "first@example.com")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"email": "not an address"}, "email must be an email address"),
        ({"email": "ana@"}, "email must be an email address"),
        ({"name": 42}, "name must be a string"),
        ({"name": "x" * 201}, "name must be at most 200 characters"),
        ([1, 2], None),
    ],
)
async def test_bad_prechat_answers_are_a_clear_400_and_change_nothing(client: Any, body: Any, error: str | None) -> None:
    session = await new_session(client)
    resp = await post_contact(client, session["token"], body)
    assert resp.status == 400 and "error" in await resp.json()
    if error:
        assert (await resp.json())["error"] == error
    assert await Contact.all().count() == 0


async def test_prechat_needs_a_session_and_an_allowed_origin(client: Any) -> None:
    assert (await post_contact(client, None, {"name": "Ana"})).status == 401
    assert (await post_contact(client, "x" * 43, {"name": "Ana"})).status == 401
    session = await new_session(client)
    resp = await client.post("/widget/contact", json={"name": "Ana"},
                             headers={"Origin": "https://evil.example", "Authorization": f"Bearer {session['token']}"})
    assert resp.status == 403
    assert await Contact.all().count() == 0


async def test_saving_details_when_the_first_message_made_the_contact_meanwhile(client: Any) -> None:
    session = await new_session(client)
    ws = await open_ws(client, session["token"])
    await frames_until(ws, lambda f: f["type"] == "ready")
    await say(ws, "client-id-0501", "hello")
    contact = await save_contact_details("widget", session["visitor_id"], "Bruno", None)
    assert contact.name == "Bruno" and await Contact.all().count() == 1
    await finish(client, ws)
