"""Email as customers really write it, through the whole app over a real Dovecot and SMTP sink:
files kept in the media store (and too large ones marked), web-form mail answered at its
Reply-To, several people in one thread answered as "reply all", automated mail stored but never
answered, no loop with a responder that ignores every header, forwards kept, Japanese quoted
history and reply prefixes of other languages removed."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from handoff.config import Settings
from handoff.models import Message
from tests.channels.test_email import all_seen, crlf, customer_email, fixture, plain, sent
from tests.fakes.dovecot import Dovecot, dovecot, dovecot_server, wait_for  # noqa: F401
from tests.fakes.smtp_sink import PASSWORD, USER, SmtpSink, smtp_sink  # noqa: F401

OURS = "support@acme.test"
CAP = 3
MAX_FILE = 64  # bytes: the fixture's 70-byte PNG is too large, its 27-byte PDF is kept


@pytest.fixture
def settings(settings: Settings, dovecot: Dovecot, smtp_sink: SmtpSink, tmp_path: Path) -> Settings:  # noqa: F811
    return settings.model_copy(update=dict(
        imap_host=dovecot.host, imap_port=dovecot.port, imap_user=dovecot.user,
        imap_password=dovecot.password, imap_tls=False,
        smtp_host=smtp_sink.host, smtp_port=smtp_sink.port, smtp_user=USER, smtp_password=PASSWORD,
        smtp_tls="none", email_from=f"Acme Support <{OURS}>", media_dir=str(tmp_path / "media"),
        email_max_attachment_bytes=MAX_FILE, email_bot_replies_per_hour=CAP,
    ))


async def detail(client: Any, auth: dict[str, str], conversation_id: int) -> dict:
    response = await client.get(f"/api/v1/conversations/{conversation_id}", headers=auth)
    assert response.status == 200
    return await response.json()


async def stored(provider_id: str) -> Message:
    async def exists() -> bool:
        return await Message.filter(channel="email", provider_id=provider_id).exists()

    await wait_for(exists, timeout=15)
    return await Message.get(channel="email", provider_id=provider_id)


async def test_files_are_kept_in_the_media_store_and_served(client: Any, make_agent: Any, dovecot: Dovecot) -> None:  # noqa: F811
    _, auth = await make_agent("Ana")
    await dovecot.append(crlf(fixture("question__inline_image.eml")))
    message = await stored("<6C1D2E3F-4A5B-4C6D-8E9F-0A1B2C3D4E5F@icloud.example>")
    shown = next(m for m in (await detail(client, auth, message.conversation_id))["messages"] if m["id"] == message.id)
    image, pdf = shown["attachments"]
    # the inline cid: image is over the limit: listed, marked, without a URL
    assert image == {"url": None, "filename": "IMG_0412.png", "content_type": "image/png", "size": 70,
                     "note": "not kept: too large"}
    assert pdf["filename"] == "delivery-note.pdf" and pdf["content_type"] == "application/pdf" and pdf["size"] == 27
    assert pdf["url"].startswith("http://testserver/media/") and "note" not in pdf
    response = await client.get(pdf["url"].removeprefix("http://testserver"))  # the desk's link
    assert response.status == 200 and await response.read() == b"%PDF-1.4 delivery note 4410"


async def test_web_form_mail_is_the_reply_to_customers(client: Any, dovecot: Dovecot, smtp_sink: SmtpSink) -> None:  # noqa: F811
    first = crlf(fixture("question__web_form.eml"))
    second = (first.replace(b"Ines Duarte <ines.duarte@example.net>", b"Karl Vogel <karl.vogel@example.org>")
              .replace(b"form-8812-1742290000", b"form-8813-1742290100").replace(b"order 8812", b"order 8813"))
    await dovecot.append(first)
    await dovecot.append(second)
    to_ines = await sent(smtp_sink, "My order 8812 has not")
    to_karl = await sent(smtp_sink, "My order 8813 has not")
    assert to_ines["To"] == "ines.duarte@example.net" and to_karl["To"] == "karl.vogel@example.org"
    assert all("noreply" not in r for m in smtp_sink.messages for r in m.rcpt_tos)
    senders = {(await stored(m)).sender["id"] for m in ("<form-8812-1742290000@forms.shop.example>",
                                                         "<form-8813-1742290100@forms.shop.example>")}
    assert senders == {"ines.duarte@example.net", "karl.vogel@example.org"}


async def test_several_people_in_one_thread_get_reply_all(
    client: Any, make_agent: Any, dovecot: Dovecot, smtp_sink: SmtpSink,  # noqa: F811
) -> None:
    _, auth = await make_agent("Ana")
    question = customer_email("<q1.jane@mail.example.com>", "Where is my parcel?", "Parcel").replace(
        b"To: Acme Support <support@acme.test>", b"To: Acme Support <support@acme.test>\r\nCc: Bob Stone <bob@example.com>")
    await dovecot.append(question)
    answer = await sent(smtp_sink, "echo: Where is my parcel?")
    assert answer["To"] == "jane.doe@example.com" and answer["Cc"] == "bob@example.com"
    # Bob answers all: From Bob, To us, Cc Jane
    reply = customer_email("<r1.bob@example.com>", "I am Jane's colleague: it goes to dock 4.", "Re: Parcel", answer)
    reply = reply.replace(b"From: Jane Doe <jane.doe@example.com>", b"From: Bob Stone <bob@example.com>").replace(
        b"To: Acme Support <support@acme.test>", b"To: Acme Support <support@acme.test>\r\nCc: jane.doe@example.com, support@acme.test")
    await dovecot.append(reply)
    second = await sent(smtp_sink, "echo: I am Jane's colleague")
    assert second["To"] == "bob@example.com" and second["Cc"] == "jane.doe@example.com"
    assert all(OURS not in m.rcpt_tos for m in smtp_sink.messages)
    jane, bob = await stored("<q1.jane@mail.example.com>"), await stored("<r1.bob@example.com>")
    assert jane.conversation_id == bob.conversation_id
    incoming = [m for m in (await detail(client, auth, jane.conversation_id))["messages"] if m["direction"] == "incoming"]
    assert [(m["sender"]["id"], m["sender"]["name"]) for m in incoming] == [
        ("jane.doe@example.com", "Jane Doe"), ("bob@example.com", "Bob Stone")]


async def test_automated_mail_is_stored_and_shown_never_answered(
    client: Any, make_agent: Any, dovecot: Dovecot, smtp_sink: SmtpSink,  # noqa: F811
) -> None:
    _, auth = await make_agent("Ana")
    await dovecot.append(customer_email("<q1.jane@mail.example.com>", "Is my order shipped?", "Order"))
    answer = await sent(smtp_sink, "echo: Is my order shipped?")
    assert answer["Auto-Submitted"] == "auto-replied"  # RFC 3834: well-behaved responders stay quiet
    # an out-of-office answer to our reply, a noreply notice and a newsletter
    out_of_office = customer_email("<ooo.jane@mail.example.com>", "I am away until Monday.", "Automatic reply: Order",
                                   answer).replace(b"MIME-Version", b"Auto-Submitted: auto-replied\r\nMIME-Version")
    for raw in (out_of_office, crlf(fixture("auto_reply__noreply_sender.eml")), crlf(fixture("bulk__newsletter.eml"))):
        await dovecot.append(raw)
    await wait_for(lambda: all_seen(dovecot, 4), timeout=15)
    ooo = await stored("<ooo.jane@mail.example.com>")
    await stored("<nl-2025-03@gadgets.example>")
    await asyncio.sleep(1.0)  # a bot turn or a sweep would answer by now
    assert len(smtp_sink.messages) == 1
    shown = next(m for m in (await detail(client, auth, ooo.conversation_id))["messages"] if m["id"] == ooo.id)
    assert shown["sender"] == {"id": "jane.doe@example.com", "name": "Jane Doe", "automated": True}
    assert shown["text"] == "I am away until Monday."


async def test_a_responder_that_ignores_every_header_cannot_loop(
    client: Any, make_agent: Any, dovecot: Dovecot, smtp_sink: SmtpSink,  # noqa: F811
) -> None:
    """A responder at an ordinary address, with no automation header, answers every email it gets
    in a new thread (as the issue's parcel service did): after CAP bot replies the bot stops,
    and the cap is on the timeline."""
    _, auth = await make_agent("Ana")
    responder = "orders@parcelco.example"
    answered = 0

    async def respond() -> None:
        nonlocal answered
        while True:
            mine = [m for m in smtp_sink.messages if responder in m.rcpt_tos]
            for number in range(answered, len(mine)):
                raw = customer_email(f"<auto{number}@parcelco.example>", f"Thanks for your mail {number}, we will reply.",
                                     f"Re: {mine[number].message['Subject']}")
                await dovecot.append(raw.replace(b"Jane Doe <jane.doe@example.com>", f"ParcelCo <{responder}>".encode()))
            answered = len(mine)
            await asyncio.sleep(0.05)

    responding = asyncio.create_task(respond())
    try:
        first = customer_email("<start@parcelco.example>", "Where is parcel 77?", "Parcel 77")
        await dovecot.append(first.replace(b"Jane Doe <jane.doe@example.com>", f"ParcelCo <{responder}>".encode()))
        await stored(f"<auto{CAP - 1}@parcelco.example>")
        await wait_for(lambda: all_seen(dovecot, CAP + 1), timeout=15)
        await asyncio.sleep(1.5)  # a further bot reply would be out by now
    finally:
        responding.cancel()
    assert len(smtp_sink.messages) == CAP and answered == CAP
    capped = await stored(f"<auto{CAP - 1}@parcelco.example>")
    events = [e for e in (await detail(client, auth, capped.conversation_id))["events"] if e["kind"] == "bot_replies_capped"]
    assert [e["data"] for e in events] == [{"limit": CAP, "window": "1h", "address": responder}]


async def test_forwarded_content_is_kept(client: Any, dovecot: Dovecot, smtp_sink: SmtpSink) -> None:  # noqa: F811
    await dovecot.append(crlf(fixture("forward__gmail_en.eml")))
    message = await stored("<CAKf0rW4rd-1@mail.gmail.com>")
    assert message.text.startswith("The amount below is wrong")
    assert "Total: 2 x 24.00 EUR = 48.00 EUR" in message.text  # the forwarded confirmation
    answer = await sent(smtp_sink, "echo: The amount below is wrong")
    assert answer["Subject"] == "Re: Your order confirmation #9931"


async def test_japanese_outlook_reply_loses_its_quote_and_keeps_its_circled_digits(
    client: Any, dovecot: Dovecot, smtp_sink: SmtpSink,  # noqa: F811
) -> None:
    await dovecot.append(crlf(fixture("reply__outlook_ja.eml")))
    message = await stored("<TYAPR01MB5555JA@TYAPR01MB5555.jpnprd01.prod.outlook.com>")
    assert message.text == "お世話になっております。\n①の商品は届きましたが、②の商品がまだ届いていません。"
    assert message.sender == {"id": "hanako.sato@example.jp", "name": "佐藤 花子"}
    answer = await sent(smtp_sink, "echo: お世話になっております。")
    assert answer["Subject"] == "Re: 注文 7788 について①"
    assert "差出人" not in plain(answer)
