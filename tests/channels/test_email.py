"""The email channel: every .eml fixture's normalized parse, SMTP replies against a real
aiosmtpd server, the IMAP loop against a real Dovecot (delivered once, seen only after
commit, redelivered exactly once after a crash, IDLE and polling, reconnect), and the full
cycle through the app over both: bot answer, takeover, agent reply, handback."""

from __future__ import annotations

import asyncio
import email
import re
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from email import policy
from pathlib import Path
from typing import Any

import pytest
from aioimaplib import IMAP4

from handoff import gateway, metrics
from handoff.channels.base import ChannelConfigError, DeliveryError, InvalidSignature
from handoff.channels.email import EmailChannel
from handoff.channels.email.imap import ImapConfig
from handoff.channels.email.parse import parse_email
from handoff.channels.email.smtp import reply_subject
from handoff.channels.email.text import latest_reply
from handoff.config import Settings
from handoff.models import Message
from handoff.schema import Address, Attachment, InboundMessage, OutboundMessage
from tests.conftest import settle
from tests.fakes.dovecot import Dovecot, dovecot, dovecot_server, wait_for  # noqa: F401
from tests.fakes.smtp_sink import PASSWORD, USER, SmtpSink, smtp_sink  # noqa: F401

FIXTURES = Path(__file__).resolve().parents[2] / "webhooks" / "email"
OURS = "support@acme.test"

# file -> the normalized InboundMessage fields (None: dropped, no message at all)
EXPECTED: dict[str, dict | None] = {
    "question__plain.eml": dict(
        contact_id="jane.doe@example.com", contact_name="Jane Doe",
        provider_id="<CAJx9f0Q1-plain@mail.example.com>", conversation_key="<CAJx9f0Q1-plain@mail.example.com>",
        reply_to=[], subject="Can't log in to my account",
        text="Hello,\n\nI can't log in to my account since yesterday. The page says\n"
        "\"invalid password\" but I'm sure it is right.\n\nCould you help?",
    ),
    "question__html_only.eml": dict(
        contact_id="tom@example.org", contact_name="Tom Baker",
        provider_id="<20250304083000.5f2a@example.org>", conversation_key="<20250304083000.5f2a@example.org>",
        reply_to=[], subject="Invoice question",
        text="Hi there,\n\nMy invoice #A-1042 shows the wrong amount – I was charged twice:\n\n"
        "- 12 March: 49 €\n- 13 March: 49 €\n\nSee my receipt (https://example.org/receipt/1042).\n\nTom",
    ),
    "question__attachment.eml": dict(
        contact_id="sam.lee@example.net", contact_name="Sam Lee",
        provider_id="<0100018e5b2c-attach-42@email.example.net>",
        conversation_key="<0100018e5b2c-attach-42@email.example.net>",
        reply_to=[], subject="Broken screen photo and receipt",
        text="My phone arrived with a cracked screen. Photo and receipt attached.",
        attachments=[("image/png", "screen.png"), ("application/pdf", "receipt.pdf")],
    ),
    "question__iso_8859_1.eml": dict(
        contact_id="francois@exemple.ca", contact_name="François Lévesque",
        provider_id="<1741966271.8859@exemple.ca>", conversation_key="<1741966271.8859@exemple.ca>",
        reply_to=[], subject="Problème de connexion",
        text="Bonjour, je n'arrive plus à me connecter à mon compte depuis la mise à jour.\n"
        "Merci d'avance,\nFrançois",
    ),
    "question__shift_jis.eml": dict(
        contact_id="taro.yamada@example.jp", contact_name="山田 太郎",
        provider_id="<20250314100000.A1B2C3@example.jp>", conversation_key="<20250314100000.A1B2C3@example.jp>",
        reply_to=[], subject="注文の配送について",
        text="お世話になっております。\n注文番号 7788 の商品がまだ届いていません。\n確認をお願いできますか。\n\n山田 太郎",
    ),
    "reply__gmail_en.eml": dict(
        contact_id="jane.doe@example.com", contact_name="Jane Doe",
        provider_id="<CAJx9f0Q2-gmail@mail.gmail.com>", conversation_key="<CAJx9f0Q1-plain@mail.example.com>",
        reply_to=["<174099751234.4242.1111@acme.test>", "<CAJx9f0Q1-plain@mail.example.com>"],
        subject="Re: Can't log in to my account",
        text="Thanks, that worked! One more question: can I change my username?",
    ),
    "reply__outlook_en.eml": dict(
        contact_id="peter.novak@contoso.example", contact_name="Peter Novak",
        provider_id="<AM0PR07MB6211C0FFEE@AM0PR07MB6211.eurprd07.prod.outlook.com>",
        conversation_key="<AM0PR07MB6211A1@AM0PR07MB6211.eurprd07.prod.outlook.com>",
        reply_to=["<174118000011.77.2222@acme.test>", "<AM0PR07MB6211A1@AM0PR07MB6211.eurprd07.prod.outlook.com>"],
        subject="RE: Order 5531 not delivered",
        text='The tracking page still shows "label created". Can you check with the carrier?',
    ),
    "reply__apple_mail_en.eml": dict(
        contact_id="li.wei@icloud.example", contact_name="Li Wei",
        provider_id="<8F3C2A1B-77D4-4E0B-9B61-3C1E5AF0D001@icloud.example>",
        conversation_key="<4A1D0C9E-0B2F-4F1B-8E4E-2B7F2D2C9A11@icloud.example>",
        reply_to=["<174120000022.88.3333@acme.test>", "<4A1D0C9E-0B2F-4F1B-8E4E-2B7F2D2C9A11@icloud.example>"],
        subject="Re: Refund status",
        text="Great, and how long does the refund take to reach my card?",
    ),
    "reply__gmail_es.eml": dict(
        contact_id="maria.garcia@example.es", contact_name="María García",
        provider_id="<CAFp9Xq0Hola-2@mail.gmail.com>", conversation_key="<CAFp9Xq0Hola-1@mail.gmail.com>",
        reply_to=["<174134000033.99.4444@acme.test>", "<CAFp9Xq0Hola-1@mail.gmail.com>"],
        subject="Re: Cambio de dirección de envío",
        text="Perfecto, gracias. ¿Y puedo cambiar también el número de teléfono?",
    ),
    "reply__outlook_es.eml": dict(
        contact_id="carlos.ruiz@empresa.example", contact_name="Carlos Ruiz",
        provider_id="<DB9PR01MB7777BEEF@DB9PR01MB7777.eurprd01.prod.outlook.com>",
        conversation_key="<DB9PR01MB7777AAAA@DB9PR01MB7777.eurprd01.prod.outlook.com>",
        reply_to=["<174135000044.11.5555@acme.test>", "<DB9PR01MB7777AAAA@DB9PR01MB7777.eurprd01.prod.outlook.com>"],
        subject="RE: Factura duplicada",
        text="Hola, sigo viendo dos cargos en mi tarjeta. ¿Cuándo se devolverá el segundo?",
    ),
    "reply__apple_mail_de.eml": dict(
        contact_id="jonas.becker@web.example", contact_name="Jonas Becker",
        provider_id="<5B2E9F0A-1C3D-4E5F-8A9B-0C1D2E3F4A5B@web.example>",
        conversation_key="<0E1F2A3B-4C5D-4E6F-9A0B-1C2D3E4F5A6B@web.example>",
        reply_to=["<174140000055.22.6666@acme.test>", "<0E1F2A3B-4C5D-4E6F-9A0B-1C2D3E4F5A6B@web.example>"],
        subject="AW: Lieferung beschädigt",
        text="Danke! Muss ich das kaputte Gerät zurückschicken oder darf ich es entsorgen?",
    ),
    "reply__outlook_de.eml": dict(
        contact_id="s.wolf@firma.example", contact_name="Sabine Wolf",
        provider_id="<FR2P281MB1234D00D@FR2P281MB1234.DEUP281.PROD.OUTLOOK.COM>",
        conversation_key="<FR2P281MB1234CAFE@FR2P281MB1234.DEUP281.PROD.OUTLOOK.COM>",
        reply_to=["<174159000066.33.7777@acme.test>", "<FR2P281MB1234CAFE@FR2P281MB1234.DEUP281.PROD.OUTLOOK.COM>"],
        subject="AW: Zugang gesperrt",
        text="Guten Morgen,\n\nder Link zum Zurücksetzen ist leider abgelaufen. Können Sie mir einen neuen schicken?",
    ),
    "reply__gmail_fr.eml": dict(
        contact_id="amelie.martin@exemple.fr", contact_name="Amélie Martin",
        provider_id="<CAGz7Lm0Bonjour-2@mail.gmail.com>", conversation_key="<CAGz7Lm0Bonjour-1@mail.gmail.com>",
        reply_to=["<174170000077.44.8888@acme.test>", "<CAGz7Lm0Bonjour-1@mail.gmail.com>"],
        subject="Re: Abonnement annulé ?",
        text="Merci ! Est-ce que je serai remboursée pour le mois en cours ?",
    ),
    "reply__outlook_fr.eml": dict(
        contact_id="luc.bernard@societe.example", contact_name="Luc Bernard",
        provider_id="<PR1P264MB2222F00D@PR1P264MB2222.FRAP264.PROD.OUTLOOK.COM>",
        conversation_key="<PR1P264MB2222AAAA@PR1P264MB2222.FRAP264.PROD.OUTLOOK.COM>",
        reply_to=["<174176000088.55.9999@acme.test>", "<PR1P264MB2222AAAA@PR1P264MB2222.FRAP264.PROD.OUTLOOK.COM>"],
        subject="RE: Mot de passe oublié",
        text="Bonjour,\n\nJe n'ai toujours pas reçu l'e-mail de réinitialisation.",
    ),
    # one broken part each: the rest of the email is kept
    "question__broken_attachment.eml": dict(
        contact_id="rosa.marquez@example.org", contact_name="Rosa Marquez",
        provider_id="<7731.rosa.20250314091200@mail.example.org>",
        conversation_key="<7731.rosa.20250314091200@mail.example.org>",
        reply_to=[], subject="Order 7731: invoice and photo of the dent",
        text="Hello, the kettle from order 7731 arrived dented. I attach the invoice and a photo.",
        attachments=[("image/png", "dent.png")],  # the undecodable invoice and the boundary-less part are left out
    ),
    "question__mislabeled_charset.eml": dict(
        contact_id="joao.pereira@example.pt", contact_name="João Pereira",
        provider_id="<5120.joao@example.pt>", conversation_key="<5120.joao@example.pt>",
        reply_to=[], subject="Encomenda 5120",
        text="Olá, a encomenda 5120 não chegou. Já passaram três semanas. Obrigado, João",
        attachments=[("image/png", "recibo.png")],
    ),
    "question__unknown_charset.eml": dict(
        contact_id="lena.vogt@example.de", contact_name="Lena Vogt",
        provider_id="<20250317075500.lv@example.de>", conversation_key="<20250317075500.lv@example.de>",
        reply_to=[], subject="Paket beschädigt",
        text="Guten Tag, mein Paket kam beschädigt an. Grüße, Lena",
    ),
    "question__bad_quoted_printable.eml": dict(
        contact_id="camille.roux@exemple.fr", contact_name="Camille Roux",
        provider_id="<9902.camille@exemple.fr>", conversation_key="<9902.camille@exemple.fr>",
        reply_to=[], subject="Remboursement commande 9902",
        text="Bonjour, je n'ai pas reçu le remboursement de 49 € =ZZ pour la commande 9902. Merci \ufffd",
        attachments=[("text/csv", "releve.csv")],
    ),
    # automated mail is stored (threaded when it names our message), never answered
    "auto_reply__out_of_office.eml": dict(
        contact_id="peter.novak@contoso.example", contact_name="Peter Novak", automated=True,
        provider_id="<AM0PR07MB6211OOF1@AM0PR07MB6211.eurprd07.prod.outlook.com>",
        conversation_key="<174118000011.77.2222@acme.test>", reply_to=["<174118000011.77.2222@acme.test>"],
        text="I am out of the office until 10 March with limited access to email.\n"
        "For urgent matters please contact purchasing@contoso.example.",
    ),
    "bounce__dsn.eml": dict(  # joins the conversation of the message that bounced (its returned headers)
        contact_id="mailer-daemon@mx.acme.test", contact_name=None, automated=True,
        provider_id="<20250313200002.4Z8A1b2C3dz9sWr@mx.acme.test>",
        conversation_key="<174189600000.66.1010@acme.test>", reply_to=["<174189600000.66.1010@acme.test>"],
        text="This is the mail system at host mx.acme.test.\n\nI'm sorry to have to inform you that your message could not\n"
        "be delivered to one or more recipients.\n\n<nobody@example.invalid>: host mx.example.invalid[192.0.2.1] said: "
        "550 5.1.1\n<nobody@example.invalid>: Recipient address rejected: User unknown",
        attachments=[("text/rfc822-headers", "part-2.txt")],
    ),
    "auto_reply__noreply_sender.eml": dict(  # no automation header: the sender's name says it
        contact_id="noreply@parcelco.example", contact_name="ParcelCo Notifications", automated=True,
        provider_id="<pc-7781@parcelco.example>", conversation_key="<174158000666.18.5656@acme.test>",
        reply_to=["<174158000666.18.5656@acme.test>"],
        text="Thank you for your message. This mailbox is not monitored.",
    ),
    "bulk__newsletter.eml": dict(
        contact_id="news@gadgets.example", contact_name="Gadget News", automated=True,
        provider_id="<nl-2025-03@gadgets.example>", conversation_key="<nl-2025-03@gadgets.example>", reply_to=[],
        text="Our spring deals are here.",
    ),
    # 1. files: inline cid: image (inside multipart/related inside multipart/alternative) and a PDF
    "question__inline_image.eml": dict(
        contact_id="nora.field@icloud.example", contact_name="Nora Field",
        provider_id="<6C1D2E3F-4A5B-4C6D-8E9F-0A1B2C3D4E5F@icloud.example>",
        conversation_key="<6C1D2E3F-4A5B-4C6D-8E9F-0A1B2C3D4E5F@icloud.example>", reply_to=[],
        subject="Scratch on the lid",
        text="Hello, the lid of my kettle came scratched, see the photo below.\n\n[image: photo]\n\n"
        "And the delivery note is attached.\nNora",
        attachments=[("image/png", "IMG_0412.png"), ("application/pdf", "delivery-note.pdf")],
    ),
    # 2. web form: the one Reply-To address is the customer, not the noreply From
    "question__web_form.eml": dict(
        contact_id="ines.duarte@example.net", contact_name="Ines Duarte",
        provider_id="<form-8812-1742290000@forms.shop.example>",
        conversation_key="<form-8812-1742290000@forms.shop.example>", reply_to=[],
        subject="Contact form: Where is order 8812?",
        text="Name: Ines Duarte\nEmail: ines.duarte@example.net\nOrder: 8812\n\nMessage:\n"
        "My order 8812 has not arrived yet. Can you tell me where it is?",
    ),
    # 3. a colleague in Cc answers: she is the sender; the reply goes to her, Cc him, never to us
    "reply__cc_colleague.eml": dict(
        contact_id="priya.raman@contoso.example", contact_name="Priya Raman",
        provider_id="<AM0PR07MB6211C0LLEA@AM0PR07MB6211.eurprd07.prod.outlook.com>",
        conversation_key="<AM0PR07MB6211A1@AM0PR07MB6211.eurprd07.prod.outlook.com>",
        reply_to=["<174118000011.77.2222@acme.test>", "<AM0PR07MB6211A1@AM0PR07MB6211.eurprd07.prod.outlook.com>"],
        subject="RE: Order 5531 not delivered", cc=["peter.novak@contoso.example"],
        text="Hi, I handle the deliveries for Peter's team. The parcel should go to our warehouse at dock 4 instead."
        "\n\nPriya",
    ),
    # 4. forwards: the forwarded content is the customer's content
    "forward__gmail_en.eml": dict(
        contact_id="omar.haddad@example.com", contact_name="Omar Haddad",
        provider_id="<CAKf0rW4rd-1@mail.gmail.com>", conversation_key="<CAKf0rW4rd-1@mail.gmail.com>", reply_to=[],
        subject="Fwd: Your order confirmation #9931",
        text="The amount below is wrong, I was charged twice.\n\n---------- Forwarded message ---------\n"
        "From: Acme Shop <orders@shop.example>\nDate: Mon, Mar 17, 2025 at 6:40 PM\n"
        "Subject: Your order confirmation #9931\nTo: <omar.haddad@example.com>\n\n\n"
        "Thank you for your order #9931.\nTotal: 2 x 24.00 EUR = 48.00 EUR",
    ),
    "forward__apple_mail_de.eml": dict(
        contact_id="jonas.becker@web.example", contact_name="Jonas Becker",
        provider_id="<9A8B7C6D-5E4F-4A3B-2C1D-0E9F8A7B6C5D@web.example>",
        conversation_key="<9A8B7C6D-5E4F-4A3B-2C1D-0E9F8A7B6C5D@web.example>", reply_to=[],
        subject="WG: Versandbestätigung 7720",
        text="Siehe unten, die Sendung ist nie angekommen.\n\nAnfang der weitergeleiteten Nachricht:\n\n"
        "Von: Paketdienst <info@paket.example>\nBetreff: Versandbestätigung 7720\n"
        "Datum: 12. März 2025 um 08:00:00 MEZ\nAn: jonas.becker@web.example\n\nIhre Sendung 7720 wurde zugestellt.",
    ),
    "forward__outlook_fr.eml": dict(  # no marker: Outlook's header block, and "TR:" says forward
        contact_id="luc.bernard@societe.example", contact_name="Luc Bernard",
        provider_id="<PR1P264MB2222F0RW@PR1P264MB2222.FRAP264.PROD.OUTLOOK.COM>",
        conversation_key="<PR1P264MB2222F0RW@PR1P264MB2222.FRAP264.PROD.OUTLOOK.COM>", reply_to=[],
        subject="TR: Facture 3310",
        text="Bonjour, voici la facture dont je parlais.\n\n________________________________\n"
        "De : Comptabilité <compta@fournisseur.example>\nEnvoyé : mardi 18 mars 2025 17:00\n"
        "À : Luc Bernard <luc.bernard@societe.example>\nObjet : Facture 3310\n\n"
        "Veuillez trouver la facture 3310 d'un montant de 120 €.",
    ),
    # 5. quoted history in other languages (and 8. ISO-2022-JP with NEC ① ②)
    "reply__outlook_ja.eml": dict(
        contact_id="hanako.sato@example.jp", contact_name="佐藤 花子",
        provider_id="<TYAPR01MB5555JA@TYAPR01MB5555.jpnprd01.prod.outlook.com>",
        conversation_key="<TYAPR01MB5555AA@TYAPR01MB5555.jpnprd01.prod.outlook.com>",
        reply_to=["<174158000099.12.3434@acme.test>", "<TYAPR01MB5555AA@TYAPR01MB5555.jpnprd01.prod.outlook.com>"],
        subject="RE: 注文 7788 について①",
        text="お世話になっております。\n①の商品は届きましたが、②の商品がまだ届いていません。",
    ),
    "reply__outlook_zh.eml": dict(
        contact_id="wang.wei@example.cn", contact_name="王伟",
        provider_id="<HK0PR01MB7777ZH@HK0PR01MB7777.apcprd01.prod.outlook.com>",
        conversation_key="<HK0PR01MB7777AA@HK0PR01MB7777.apcprd01.prod.outlook.com>",
        reply_to=["<174158000111.13.5656@acme.test>", "<HK0PR01MB7777AA@HK0PR01MB7777.apcprd01.prod.outlook.com>"],
        subject="回复: 回复： 退款", text="您好，我的退款还没有到账。",
    ),
    "reply__gmail_ko.eml": dict(
        contact_id="minji.kim@example.kr", contact_name="김민지", provider_id="<CAKo9Rea-2@mail.gmail.com>",
        conversation_key="<CAKo9Rea-1@mail.gmail.com>",
        reply_to=["<174158000222.14.7878@acme.test>", "<CAKo9Rea-1@mail.gmail.com>"],
        subject="회신: Re: 주문 확인", text="주문한 상품의 색상을 바꿀 수 있나요?",
    ),
    "reply__gmail_pt.eml": dict(
        contact_id="joao.pereira@example.pt", contact_name="João Pereira", provider_id="<CAPt0Rea-2@mail.gmail.com>",
        conversation_key="<CAPt0Rea-1@mail.gmail.com>",
        reply_to=["<174158000333.15.9090@acme.test>", "<CAPt0Rea-1@mail.gmail.com>"],
        subject="RES: Re: Reembolso", text="Ainda não recebi o reembolso.",
    ),
    "reply__gmail_id.eml": dict(
        contact_id="budi.santoso@example.id", contact_name="Budi Santoso", provider_id="<CAId0Rea-2@mail.gmail.com>",
        conversation_key="<CAId0Rea-1@mail.gmail.com>",
        reply_to=["<174158000444.16.1212@acme.test>", "<CAId0Rea-1@mail.gmail.com>"],
        subject="Balas: Re: Pesanan 6610", text="Apakah pesanan saya sudah dikirim?",
    ),
    "reply__own_address_attribution.eml": dict(  # Turkish: no rule of ours knows it; our address ends it
        contact_id="ayse.demir@example.com.tr", contact_name="Ayse Demir",
        provider_id="<CATr0Rea-2@mail.example.com.tr>", conversation_key="<CATr0Rea-1@mail.example.com.tr>",
        reply_to=["<174158000555.17.3434@acme.test>", "<CATr0Rea-1@mail.example.com.tr>"],
        subject="YNT: Re: Kargo", text="Kargom hâlâ gelmedi, lütfen kontrol eder misiniz?",
    ),
    # 8. charsets written as the label's Windows superset
    "question__iso_2022_jp.eml": dict(
        contact_id="ichiro.takahashi@example.jp", contact_name="髙橋 一郎",
        provider_id="<20250318090000.JIS1@example.jp>", conversation_key="<20250318090000.JIS1@example.jp>",
        reply_to=[], subject="注文①と②", text="①の商品と②の商品を注文しました。\n髙橋",
    ),
    "question__latin1_as_windows_1252.eml": dict(
        contact_id="chloe.moreau@exemple.fr", contact_name="Chloé Moreau",
        provider_id="<cp1252-1@exemple.fr>", conversation_key="<cp1252-1@exemple.fr>", reply_to=[],
        subject="“Livraison” €", text="J’ai payé 49 € pour la «livraison express» – rien reçu…",
    ),
    "question__gb2312.eml": dict(
        contact_id="li.na@example.cn", contact_name="李娜", provider_id="<gb-1@example.cn>",
        conversation_key="<gb-1@example.cn>", reply_to=[], subject="订单", text="我的订单里的熔岩灯（镕）坏了。",
    ),
    "question__euc_kr.eml": dict(
        contact_id="jisung.park@example.kr", contact_name="박지성", provider_id="<euckr-1@example.kr>",
        conversation_key="<euckr-1@example.kr>", reply_to=[], subject="배송 문의", text="똠방각하 상품이 아직 안 왔어요.",
    ),
}
BROKEN_PARTS = ["question__broken_attachment.eml", "question__mislabeled_charset.eml",
                "question__unknown_charset.eml", "question__bad_quoted_printable.eml"]


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(p.name for p in FIXTURES.glob("*.eml")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_parses_to_normalized_message(name: str) -> None:
    items = parse_email(fixture(name), own_addresses=frozenset({OURS}))
    expected = EXPECTED[name]
    [msg] = items
    assert isinstance(msg, InboundMessage) and msg.channel == "email"
    assert msg.contact_id == expected["contact_id"] == msg.contact_email
    assert msg.contact_name == expected["contact_name"]
    assert msg.provider_id == expected["provider_id"]
    assert msg.conversation_key == expected["conversation_key"]
    assert msg.thread["reply_to"] == expected["reply_to"]
    assert msg.automated is expected.get("automated", False)
    if msg.automated:  # it never readdresses or rethreads the conversation it joins
        assert msg.thread == {"reply_to": expected["reply_to"]}
    else:
        assert msg.thread["message_id"] == msg.provider_id
        assert msg.thread["references"] == expected["reply_to"][::-1]  # In-Reply-To is the last reference
        assert msg.thread["subject"] == expected["subject"]
        assert msg.thread["to"] == msg.contact_id and msg.thread["cc"] == expected.get("cc", [])
    assert msg.text == expected["text"]
    assert [(a.content_type, a.filename) for a in msg.attachments] == expected.get("attachments", [])
    assert all(a.size == len(a.data) > 0 for a in msg.attachments)
    assert msg.sent_at is not None
    assert msg.raw["text"].strip() and msg.raw["headers"]["message-id"]


def test_broken_parts_are_left_out_and_counted_and_the_good_ones_kept_whole() -> None:
    skipped = metrics.WEBHOOK_ITEMS_SKIPPED.labels("email", "unreadable_part")
    before = skipped._value.get()
    [msg] = parse_email(fixture("question__broken_attachment.eml"))
    assert skipped._value.get() == before + 2  # the invoice's base64 and the multipart without a boundary
    [png] = msg.attachments
    assert png.data is not None and png.data.startswith(b"\x89PNG\r\n\x1a\n") and png.size == 69
    [msg] = parse_email(fixture("question__bad_quoted_printable.eml"))
    [csv] = msg.attachments
    assert csv.data == b"date;montant\n2025-03-01;49,00\n"  # its unknown charset does not matter to the bytes


def test_a_part_in_an_unknown_charset_is_read_in_the_one_its_bytes_are_in() -> None:
    [msg] = parse_email(fixture("question__unknown_charset.eml"))
    assert msg.raw["html"] == "<p>Guten Tag, mein Paket kam beschädigt an. Grüße, Lena</p>"
    assert "\ufffd" not in msg.raw["text"]


def test_quoted_history_is_kept_in_raw() -> None:
    [msg] = parse_email(fixture("reply__gmail_en.eml"))
    assert "you can reset your password" in msg.raw["text"]
    assert "you can reset your password" in msg.raw["html"]


def test_kept_html_is_sanitized() -> None:
    [msg] = parse_email(fixture("question__html_only.eml"))
    html = msg.raw["html"]
    assert "<b>#A-1042</b>" in html
    for bad in ("<script", "alert(", "onerror", "<style"):
        assert bad not in html


HUMAN = b"From: Ann <ann@example.com>\r\nTo: support@acme.test\r\nSubject: Hi\r\nMessage-ID: <h1@example.com>\r\n"


@pytest.mark.parametrize(
    "headers",
    [
        b"Auto-Submitted: auto-generated\r\n",
        b"Precedence: bulk\r\n",
        b"Precedence: junk\r\n",
        b"Precedence: auto_reply\r\n",
        b"X-Autoreply: yes\r\n",
        b"Return-Path: <>\r\n",
        b"Content-Type: multipart/report; report-type=disposition-notification; boundary=x\r\n",
        b"X-Autorespond: yes\r\n",
        b"X-Auto-Response-Suppress: All\r\n",
        b"List-Id: <support.lists.example.com>\r\n",
        b"List-Unsubscribe: <mailto:unsub@example.com>\r\n",
    ],
)
def test_automated_mail_is_marked(headers: bytes) -> None:
    [msg] = parse_email(HUMAN + headers + b"\r\nI am away.\r\n")
    assert msg.automated and msg.thread == {"reply_to": []}


@pytest.mark.parametrize("sender", [b"MAILER-DAEMON@mx.example.com", b"postmaster@example.com", b"no-reply@shop.example",
                                    b"noreply+bounce-7@shop.example", b"DoNotReply@bank.example",
                                    b"do_not_reply@bank.example"])
def test_mail_from_machines_is_marked(sender: bytes) -> None:
    raw = b"From: " + sender + b"\r\nSubject: failure\r\nMessage-ID: <x@y>\r\n\r\nundeliverable\r\n"
    assert parse_email(raw)[0].automated


def test_auto_submitted_no_and_own_address() -> None:
    [msg] = parse_email(HUMAN + b"Auto-Submitted: no\r\n\r\nHello\r\n")
    assert not msg.automated
    [person] = parse_email(HUMAN.replace(b"ann@", b"nora.noreply@") + b"\r\nHello\r\n")
    assert not person.automated  # "noreply" must start the local part
    looped = HUMAN.replace(b"ann@example.com", b"Support@Acme.test")
    assert parse_email(looped + b"\r\nHello\r\n", own_addresses=frozenset({OURS})) == []


def test_missing_message_id_gets_a_stable_one() -> None:
    raw = b"From: ann@example.com\r\nSubject: Hi\r\n\r\nHello\r\n"
    first, second = parse_email(raw)[0], parse_email(raw)[0]
    assert first.provider_id == second.provider_id and first.provider_id.endswith("@handoff.invalid>")
    assert first.conversation_key == first.provider_id


def test_empty_body_falls_back_to_the_subject() -> None:
    raw = b"From: ann@example.com\r\nSubject: Fwd: Refund for order 42\r\nMessage-ID: <e@x>\r\n\r\n\r\n"
    assert parse_email(raw)[0].text == "Refund for order 42"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("Hello,\n\nThanks, but I still can't log in.\nJane", "Hello,\n\nThanks, but I still can't log in.\nJane"),
        ("It fails.\n\n-- \nJane Doe\nACME Corp", "It fails."),
        ("Steps:\n- open the app\n- tap login", "Steps:\n- open the app\n- tap login"),
        ("Yes please.\n\nOn Tue, Jan 7, 2025, Bot <b@x.test> wrote:\n> Shall I?", "Yes please."),
        ("> only a quote", "> only a quote"),
    ],
)
def test_latest_reply(body: str, expected: str) -> None:
    assert latest_reply(body) == expected


@pytest.mark.parametrize(("subject", "expected"), [
    ("AW: Re: Fwd: Zugang", "Re: Zugang"),
    ("SV: [Ticket] Hi", "Re: [Ticket] Hi"),
    ("", "Re: your message"),
    ("Re: Automated Response: Re: Order 5", "Re: Order 5"),
    ("RE[2]: FW： Order", "Re: Order"),
    ("Re [3]: WG: Antw: Odp: YNT: ΑΠ: Rechnung", "Re: Rechnung"),
    ("RV: R: I: RIF: RES: ENC: Pedido", "Re: Pedido"),
    ("TR: Réf : Doorst: Facture", "Re: Facture"),
    ("回复：转发: 答复: 订单", "Re: 订单"),
    ("転送: 返信： 注文", "Re: 注文"),
    ("회신: 전달: 주문", "Re: 주문"),
    ("Balas: Trs: Pesanan", "Re: Pesanan"),
    ("Automatic reply: RE: Invoice", "Re: Invoice"),
    ("Rebates: 10% off", "Re: Rebates: 10% off"),  # a word that merely starts like a prefix stays
    ("Information: new address", "Re: Information: new address"),
])
def test_reply_subject(subject: str, expected: str) -> None:
    assert reply_subject(subject) == expected
    assert reply_subject(reply_subject(subject)) == expected  # never grows round after round


def test_text_and_names_never_carry_replacement_or_c1_characters() -> None:
    """Every fixture whose bytes a superset of its declared charset decodes reads without U+FFFD
    or C1 controls, in its text, its sender's name and its subject."""
    damaged = {"question__bad_quoted_printable.eml"}  # an invalid escape: U+FFFD marks the damage
    for name in sorted(set(EXPECTED) - damaged):
        [msg] = parse_email(fixture(name), own_addresses=frozenset({OURS}))
        for value in (msg.text, msg.contact_name or "", msg.raw["headers"].get("subject", "")):
            assert not re.search(r"[\ufffd\x80-\x9f]", value), (name, value)


# -- settings -----------------------------------------------------------------------------

FULL = dict(
    imap_host="127.0.0.1", imap_user="support", imap_password="pw",
    smtp_host="127.0.0.1", email_from="Acme Support <support@acme.test>",
)


def test_from_settings() -> None:
    assert EmailChannel.from_settings(Settings()) is None
    channel = EmailChannel.from_settings(Settings(**FULL))
    assert channel is not None and channel.smtp.from_name == "Acme Support"
    assert channel.smtp.from_address == OURS and channel.smtp.tls == "starttls"
    with pytest.raises(ChannelConfigError, match="IMAP_PASSWORD, HANDOFF_EMAIL_FROM"):
        EmailChannel.from_settings(Settings(**{**FULL, "imap_password": "", "email_from": ""}))
    with pytest.raises(ChannelConfigError, match="SMTP_PASSWORD"):
        EmailChannel.from_settings(Settings(**FULL, smtp_user="mailer"))
    with pytest.raises(ChannelConfigError, match="SMTP_TLS"):
        EmailChannel.from_settings(Settings(**FULL, smtp_tls="ssl3"))


def test_mailbox_polling_and_quarantine_come_from_the_environment() -> None:
    env = {"IMAP_HOST": "127.0.0.1", "IMAP_USER": "support", "IMAP_PASSWORD": "pw", "SMTP_HOST": "127.0.0.1",
           "HANDOFF_EMAIL_FROM": "support@acme.test", "IMAP_MAILBOX": "Support", "IMAP_POLL_INTERVAL": "7.5",
           "IMAP_QUARANTINE": "Support/failed"}
    channel = EmailChannel.from_settings(Settings.from_env(env))
    assert channel is not None
    assert (channel.imap.mailbox, channel.imap.poll_interval, channel.imap.quarantine) == (
        "Support", 7.5, "Support/failed")


async def test_webhooks_are_refused() -> None:
    channel = EmailChannel.from_settings(Settings(**FULL))
    with pytest.raises(InvalidSignature):
        await channel.verify(None, b"")  # type: ignore[arg-type]


# -- SMTP ---------------------------------------------------------------------------------

def smtp_channel(sink: SmtpSink, **overrides) -> EmailChannel:
    settings = Settings(**{**FULL, "smtp_port": sink.port, "smtp_tls": "none",
                           "smtp_user": USER, "smtp_password": PASSWORD, **overrides})
    channel = EmailChannel.from_settings(settings)
    assert channel is not None
    return channel


def outbound(text: str = "Hello Jane,\n\nTry <b>this</b> & that.", kind: str = "bot", **kw) -> OutboundMessage:
    return OutboundMessage(id=7, kind=kind, text=text, conversation_id=1, **kw)  # type: ignore[arg-type]


def body(msg, subtype: str) -> str:
    return msg.get_body((subtype,)).get_content().replace("\r\n", "\n").strip()


async def test_send_threads_the_reply(smtp_sink: SmtpSink) -> None:  # noqa: F811
    channel = smtp_channel(smtp_sink)
    [inbound] = parse_email(fixture("reply__gmail_en.eml"))
    # the conversation keeps the thread without reply_to (the gateway's matching list)
    thread = {k: v for k, v in inbound.thread.items() if k != "reply_to"}
    address = Address("email", inbound.contact_id, inbound.key, thread)
    provider_id = await channel.send(address, outbound())
    assert await channel.send(address, outbound()) == provider_id  # a retry keeps its Message-ID
    got, _ = await smtp_sink.wait_for(2)
    msg = got.message
    assert smtp_sink.logins == [USER, USER]
    assert got.mail_from == OURS and got.rcpt_tos == ["jane.doe@example.com"]
    assert msg["Message-ID"] == provider_id and provider_id.endswith("@acme.test>")
    assert msg["In-Reply-To"] == "<CAJx9f0Q2-gmail@mail.gmail.com>"
    assert msg["References"].split() == [
        "<CAJx9f0Q1-plain@mail.example.com>", "<174099751234.4242.1111@acme.test>", "<CAJx9f0Q2-gmail@mail.gmail.com>",
    ]
    assert msg["Subject"] == "Re: Can't log in to my account"
    assert msg["From"] == "Acme Support <support@acme.test>"
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg.get_content_type() == "multipart/alternative"
    assert body(msg, "plain") == "Hello Jane,\n\nTry <b>this</b> & that."
    html = body(msg, "html")
    assert "Try &lt;b&gt;this&lt;/b&gt; &amp; that." in html and "<b>" not in html

    # the customer's answer to our reply comes back into the same thread
    answer = (
        f"From: Jane Doe <jane.doe@example.com>\r\nTo: {OURS}\r\nSubject: {msg['Subject']}\r\n"
        f"Message-ID: <CAJx9f0Q3@mail.gmail.com>\r\nIn-Reply-To: {provider_id}\r\n"
        f"References: {msg['References']} {provider_id}\r\n\r\nGot it, thanks\r\n"
    ).encode()
    [again] = parse_email(answer)
    assert again.thread["reply_to"][0] == provider_id
    assert again.key == inbound.key


async def test_agent_reply_headers_cannot_be_injected(smtp_sink: SmtpSink) -> None:  # noqa: F811
    channel = smtp_channel(smtp_sink)
    address = Address("email", "ann@example.com", "<k@x>", {
        "subject": "Hi\r\nBcc: victim@example.com", "message_id": "<m1@x>\r\nX-Evil: 1", "reply_to": ["<r0@x>"],
    })
    files = (Attachment("text/plain", filename="note\r\n.txt", data=b"hello file"),
             Attachment("image/jpeg", url="https://cdn.example/p.jpg", filename="p.jpg"))
    await channel.send(address, outbound("Here you go", kind="agent", author_name="Alice\r\nBcc: x@evil.test",
                                         attachments=files))
    [got] = await smtp_sink.wait_for(1)
    msg, head = got.message, got.data.split(b"\r\n\r\n", 1)[0]
    assert got.rcpt_tos == ["ann@example.com"]
    assert b"\r\nBcc:" not in head and b"\r\nX-Evil:" not in head
    assert msg["Subject"] == "Re: Hi Bcc: victim@example.com"
    assert msg["From"].addresses[0].display_name == "Alice Bcc: x@evil.test (Acme Support)"
    assert msg["From"].addresses[0].addr_spec == OURS
    assert msg["Auto-Submitted"] is None  # a person wrote it
    assert msg.get_content_type() == "multipart/mixed"
    [attached] = list(msg.iter_attachments())
    assert attached.get_filename() == "note .txt" and attached.get_content() == "hello file"
    assert body(msg, "plain") == "Here you go\n\np.jpg: https://cdn.example/p.jpg"


async def test_files_from_our_media_store_travel_inside_the_email(smtp_sink: SmtpSink, tmp_path: Path) -> None:  # noqa: F811
    channel = smtp_channel(smtp_sink, media_dir=str(tmp_path), public_url="https://help.example.com")
    assert channel.media is not None

    async def content() -> AsyncIterator[bytes]:
        yield b"%PDF-1.4 invoice"

    stored = await channel.media.save(content(), filename="invoice.pdf", content_type="application/pdf",
                                      owner={"agent_id": 1})
    files = (channel.media.attach(stored), Attachment("image/jpeg", url="https://cdn.example/p.jpg", filename="p.jpg"))
    address = Address("email", "ann@example.com", "<k@x>", {"subject": "Invoice", "message_id": "<m1@x>"})
    await channel.send(address, outbound("Your invoice is attached.", kind="agent", attachments=files))
    [got] = await smtp_sink.wait_for(1)
    [attached] = list(got.message.iter_attachments())
    assert attached.get_filename() == "invoice.pdf" and attached.get_content_type() == "application/pdf"
    assert attached.get_content() == b"%PDF-1.4 invoice"
    assert body(got.message, "plain") == "Your invoice is attached.\n\np.jpg: https://cdn.example/p.jpg"


@pytest.mark.parametrize(("reply", "retryable"), [("550 5.1.1 no such user", False), ("450 4.2.1 try later", True)])
async def test_refused_recipient(smtp_sink: SmtpSink, reply: str, retryable: bool) -> None:  # noqa: F811
    smtp_sink.refuse["gone@example.com"] = reply
    channel = smtp_channel(smtp_sink)
    with pytest.raises(DeliveryError) as failure:
        await channel.send(Address("email", "gone@example.com", "<k@x>", {}), outbound())
    assert failure.value.retryable is retryable and failure.value.code == reply[:3]


async def test_unreachable_server_is_retryable(smtp_sink: SmtpSink) -> None:  # noqa: F811
    channel = smtp_channel(smtp_sink)
    await smtp_sink.stop()
    with pytest.raises(DeliveryError) as failure:
        await channel.send(Address("email", "ann@example.com", "<k@x>", {}), outbound())
    assert failure.value.retryable


# -- IMAP against a real Dovecot ----------------------------------------------------------

def imap_channel(server: Dovecot, ca_file: str = "", **imap) -> EmailChannel:
    channel = EmailChannel.from_settings(Settings(**{
        **FULL, "imap_host": server.host, "imap_port": server.port, "imap_user": server.user,
        "imap_password": server.password, "imap_tls": server.tls is not None, "email_ca_file": ca_file,
    }))
    assert channel is not None
    channel.imap = ImapConfig(**{**channel.imap.__dict__, "backoff_min": 0.05, "backoff_max": 0.2,
                                 "poll_interval": 0.2, **imap})
    channel.lease_ttl = None  # no database here: every reader reads (the lease is tested with one)
    return channel


async def all_seen(server: Dovecot, count: int) -> bool:
    flags = await server.flags()
    return len(flags) == count and all("\\Seen" in f for f in flags.values())


def crlf(raw: bytes) -> bytes:
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


@pytest.mark.parametrize("use_idle", [True, False], ids=["idle", "poll"])
async def test_imap_delivers_once_and_marks_seen_after_commit(dovecot: Dovecot, use_idle: bool) -> None:  # noqa: F811
    await dovecot.append(crlf(fixture("question__plain.eml")))
    delivered: list[InboundMessage] = []
    seen_during_deliver: list[bool] = []

    async def deliver(item: InboundMessage) -> None:
        seen_during_deliver.append(dovecot.seen(await dovecot.flags(), item.provider_id))
        delivered.append(item)

    # polling looks every 0.2 s; in IDLE only the server's push can bring the new mail in time
    channel = imap_channel(dovecot, use_idle=use_idle, poll_interval=0.2 if not use_idle else 600)
    await channel.start(deliver)
    try:
        await wait_for(lambda: len(delivered) == 1)
        await wait_for(lambda: channel.loop.cycles >= 1)
        # new mail while the loop waits (in IDLE, or between polls)
        await dovecot.append(crlf(fixture("reply__gmail_en.eml")))
        await dovecot.append(crlf(fixture("auto_reply__out_of_office.eml")))
        await wait_for(lambda: len(delivered) == 3)
        await wait_for(lambda: all_seen(dovecot, 3))
        await asyncio.sleep(0.3)  # a further cycle would deliver duplicates now
        flags = await dovecot.flags()
    finally:
        await channel.close()
    assert [(m.provider_id, m.automated) for m in delivered] == [
        ("<CAJx9f0Q1-plain@mail.example.com>", False), ("<CAJx9f0Q2-gmail@mail.gmail.com>", False),
        ("<AM0PR07MB6211OOF1@AM0PR07MB6211.eurprd07.prod.outlook.com>", True),  # stored, not answered
    ]
    assert seen_during_deliver == [False, False, False]
    assert all("\\Seen" in f for f in flags.values()) and len(flags) == 3  # the auto-reply too


@pytest.mark.parametrize("before", ["uid_search", "idle_start"])
async def test_mail_that_lands_between_a_cycle_s_commands_is_fetched_at_once(
    dovecot: Dovecot, monkeypatch: pytest.MonkeyPatch, before: str,  # noqa: F811
) -> None:
    """Mail lands just before the loop's first SEARCH, or just before it enters IDLE. Before
    SEARCH: Dovecot searches the mailbox as of the NOOP's sync, so the result misses it, and
    announces it (`* 1 EXISTS`) within SEARCH's answer, never again in IDLE. Before IDLE: Dovecot
    announces it once IDLE starts. Either way it is delivered long before `idle_refresh` and
    `poll_interval` pass. The mailbox first loses a message, so sequence numbers are not UIDs."""
    async with dovecot.connect() as client:
        await client.append(crlf(fixture("question__plain.eml")), mailbox="INBOX", flags=r"(\Seen \Deleted)")
        assert (await client.expunge()).result == "OK"
    command, landed = getattr(IMAP4, before), asyncio.Event()

    async def after_new_mail(client: IMAP4, *args: Any, **kwargs: Any) -> Any:
        if not landed.is_set():
            await dovecot.append(crlf(fixture("question__html_only.eml")))
            landed.set()
        return await command(client, *args, **kwargs)

    monkeypatch.setattr(IMAP4, before, after_new_mail)
    delivered: list[str] = []

    async def deliver(item: InboundMessage) -> None:
        delivered.append(item.provider_id)

    channel = imap_channel(dovecot, idle_refresh=600, poll_interval=600)
    await channel.start(deliver)
    try:
        await wait_for(lambda: delivered == ["<20250304083000.5f2a@example.org>"], timeout=15)
        await wait_for(lambda: all_seen(dovecot, 1))
    finally:
        await channel.close()


async def test_idle_lasts_at_most_the_poll_interval(dovecot: Dovecot) -> None:  # noqa: F811
    """With nothing announced, the loop still leaves IDLE and looks at the mailbox every
    `poll_interval` seconds: a safety net should an announcement ever be lost."""
    channel = imap_channel(dovecot, idle_refresh=600, poll_interval=0.3)
    await channel.start(lambda item: asyncio.sleep(0))
    try:
        await wait_for(lambda: channel.loop.cycles >= 4, timeout=15)
    finally:
        await channel.close()


async def test_crash_before_commit_redelivers_exactly_once(dovecot: Dovecot) -> None:  # noqa: F811
    await dovecot.append(crlf(fixture("question__attachment.eml")))
    attempts = 0

    async def crashing(item: InboundMessage) -> None:
        nonlocal attempts
        attempts += 1
        raise RuntimeError("killed between fetch and commit")

    first = imap_channel(dovecot)
    await first.start(crashing)
    await wait_for(lambda: attempts >= 1)
    await first.close()
    assert not dovecot.seen(await dovecot.flags(), "<0100018e5b2c-attach-42@email.example.net>")

    committed: list[str] = []

    async def deliver(item: InboundMessage) -> None:
        committed.append(item.provider_id)

    second = imap_channel(dovecot)
    await second.start(deliver)
    try:
        await wait_for(lambda: all_seen(dovecot, 1))
        await asyncio.sleep(0.3)
    finally:
        await second.close()
    assert committed == ["<0100018e5b2c-attach-42@email.example.net>"]
    assert dovecot.seen(await dovecot.flags(), committed[0])


async def test_reconnects_after_the_server_drops(dovecot: Dovecot) -> None:  # noqa: F811
    delivered: list[str] = []

    async def deliver(item: InboundMessage) -> None:
        delivered.append(item.provider_id)

    channel = imap_channel(dovecot)
    await channel.start(deliver)
    try:
        await asyncio.wait_for(channel.loop.connected.wait(), 10)
        dovecot.stop(graceful=False)
        await wait_for(lambda: not channel.loop.connected.is_set())
        dovecot.start()
        await dovecot.append(crlf(fixture("question__html_only.eml")))
        await wait_for(lambda: delivered == ["<20250304083000.5f2a@example.org>"], timeout=15)
    finally:
        await channel.close()


async def test_unparseable_and_failing_mail_is_quarantined_not_lost(dovecot: Dovecot) -> None:  # noqa: F811
    """A message the channel cannot parse goes to the quarantine folder at once; one whose commit
    keeps failing goes there after `max_failures` tries; the rest of the mailbox keeps flowing."""
    broken, failing, fine = ("<0100018e5b2c-attach-42@email.example.net>", "<20250304083000.5f2a@example.org>",
                             "<CAJx9f0Q1-plain@mail.example.com>")
    await dovecot.append(crlf(fixture("question__attachment.eml")))
    await dovecot.append(crlf(fixture("question__html_only.eml")))
    await dovecot.append(crlf(fixture("question__plain.eml")))
    delivered: list[str] = []
    tries: list[str] = []

    async def deliver(item: InboundMessage) -> None:
        tries.append(item.provider_id)
        if item.provider_id == failing:
            raise RuntimeError("the database refuses this one")
        delivered.append(item.provider_id)

    channel = imap_channel(dovecot, max_failures=3)
    parse = channel.parse

    def parse_or_break(body: bytes, content_type: str = "message/rfc822") -> list:
        if broken.encode() in body:
            raise ValueError("a parser bug")
        return parse(body, content_type)

    channel.parse = parse_or_break  # type: ignore[method-assign]
    await channel.start(deliver)
    try:
        await wait_for(lambda: _inbox_holds(dovecot, {fine}), timeout=15)
    finally:
        await channel.close()
    assert delivered == [fine]
    assert tries.count(failing) == 3
    quarantined = await dovecot.flags("handoff-quarantine")
    assert set(quarantined) == {broken, failing}
    assert not any("\\Seen" in flags for flags in quarantined.values())  # left for a person to read
    assert dovecot.seen(await dovecot.flags(), fine)


async def _inbox_holds(server: Dovecot, message_ids: set[str]) -> bool:
    flags = await server.flags()
    return {mid for mid, f in flags.items() if "\\Deleted" not in f} == message_ids


def test_fixture_roundtrip_through_email_package() -> None:
    """The fixtures are valid RFC 5322: the stdlib reads every one without defects that matter."""
    for path in FIXTURES.glob("*.eml"):
        msg = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        assert msg["From"] and msg["Message-ID"], path.name


# -- the full cycle through the app, over real IMAP and SMTP -------------------------------

CUSTOMER = "jane.doe@example.com"
ROOT = "<q1.jane@mail.example.com>"


@pytest.fixture
def settings(settings: Settings, dovecot: Dovecot, smtp_sink: SmtpSink, tmp_path: Path) -> Settings:  # noqa: F811
    """The core's test settings with the email channel pointed at the local servers."""
    return settings.model_copy(update=dict(
        media_dir=str(tmp_path / "media"),
        imap_host=dovecot.host, imap_port=dovecot.port, imap_user=dovecot.user,
        imap_password=dovecot.password, imap_tls=False,
        smtp_host=smtp_sink.host, smtp_port=smtp_sink.port, smtp_user=USER, smtp_password=PASSWORD,
        smtp_tls="none", email_from="Acme Support <support@acme.test>",
    ))


def customer_email(message_id: str, text: str, subject: str, parent: Any = None) -> bytes:
    """A plain-text email from the customer, replying to `parent` (a received message) if given."""
    headers = [
        f"From: Jane Doe <{CUSTOMER}>", "To: Acme Support <support@acme.test>",
        f"Subject: {subject}", f"Message-ID: {message_id}", "Date: Mon, 3 Mar 2025 10:00:00 +0000",
        "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
    ]
    body = text
    if parent is not None:
        headers.append(f"In-Reply-To: {parent['Message-ID']}")
        headers.append(f"References: {parent['References']} {parent['Message-ID']}")
        quoted = "\n".join("> " + line for line in parent.get_body(("plain",)).get_content().splitlines())
        body += f"\n\nOn Mon, 3 Mar 2025 at 10:01, Acme Support <support@acme.test> wrote:\n{quoted}\n"
    return ("\r\n".join(headers) + "\r\n\r\n" + body.replace("\n", "\r\n")).encode()


def plain(msg: Any) -> str:
    return msg.get_body(("plain",)).get_content().replace("\r\n", "\n")


async def sent(sink: SmtpSink, text: str) -> Any:
    """The email our SMTP client delivered whose text contains `text`, once it arrived."""
    found: list[Any] = []

    def arrived() -> bool:
        found[:] = [r.message for r in sink.messages if text in plain(r.message)]
        return bool(found)

    try:
        await wait_for(arrived, timeout=15)
    except AssertionError:
        raise AssertionError(f"no email contains {text!r}: {[plain(r.message) for r in sink.messages]}") from None
    assert len(found) == 1, f"{len(found)} emails contain {text!r}"
    return found[0]


async def conversations(client: Any, headers: dict[str, str]) -> list[dict]:
    response = await client.get("/api/v1/conversations", headers=headers)
    assert response.status == 200
    return [c for c in (await response.json())["conversations"] if c["channel"] == "email"]


async def test_outside_business_hours_asking_for_a_person_gets_one_email_saying_when_the_team_is_back(
    client: Any, rt: Any, dovecot: Dovecot, smtp_sink: SmtpSink,  # noqa: F811
) -> None:
    rt.settings = rt.settings.model_copy(update={"business_hours": "Mon-Fri 09:00-17:00 Europe/Madrid"})
    rt.now = lambda: datetime(2026, 12, 5, 10, 0, tzinfo=timezone.utc)  # a Saturday
    await dovecot.append(customer_email(ROOT, "I want to talk to a person", "Refund"))
    away = await sent(smtp_sink, "Our team is away right now and will reply to this email when they are back")
    assert "Meanwhile, our AI assistant can keep answering your emails." in plain(away)
    assert away["In-Reply-To"] == ROOT
    await settle(rt)
    assert [plain(r.message) for r in smtp_sink.messages if "support team will reply" in plain(r.message)] == []
    assert len(smtp_sink.messages) == 1  # the away reply is the only email


async def test_email_question_takeover_reply_and_handback(
    client: Any, make_agent: Any, dovecot: Dovecot, smtp_sink: SmtpSink,  # noqa: F811
) -> None:
    agent, auth = await make_agent("Ana")

    # 1. an emailed question is answered by the bot, in the thread
    await dovecot.append(customer_email(ROOT, "How do I reset my password?", "Password reset"))
    bot_answer = await sent(smtp_sink, "echo: How do I reset my password?")
    assert smtp_sink.messages[0].rcpt_tos == [CUSTOMER]
    assert bot_answer["In-Reply-To"] == ROOT and bot_answer["References"] == ROOT
    assert bot_answer["Subject"] == "Re: Password reset"
    assert bot_answer["Auto-Submitted"] == "auto-replied"
    [conv] = await conversations(client, auth)
    assert conv["state"] == "bot" and conv["contact"]["external_id"] == CUSTOMER

    # 2. the customer answers the bot's email: same conversation, quoted history stripped
    await dovecot.append(customer_email("<q2.jane@mail.example.com>", "It did not work.", "Re: Password reset", bot_answer))
    second = await sent(smtp_sink, "echo: It did not work.")
    assert second["In-Reply-To"] == "<q2.jane@mail.example.com>"
    assert second["References"].split() == [ROOT, bot_answer["Message-ID"], "<q2.jane@mail.example.com>"]
    assert [c["id"] for c in await conversations(client, auth)] == [conv["id"]]

    # 3. an agent takes over; the customer is told by email, in the thread, in email wording
    response = await client.post(f"/api/v1/conversations/{conv['id']}/takeover", headers=auth)
    assert response.status == 201
    ticket = await response.json()
    waiting = await sent(smtp_sink, "A member of our support team will reply to this email.")
    assert waiting["In-Reply-To"] == "<q2.jane@mail.example.com>"

    # 4. the agent replies from the desk: the email shows the agent's name and stays in the thread
    response = await client.post(f"/api/v1/tickets/{ticket['id']}/messages", headers=auth,
                                 json={"text": "I have reset it for you.\nTry again?"})
    assert response.status in (200, 201)
    human = await sent(smtp_sink, "I have reset it for you.")
    assert human["From"].addresses[0].display_name == "Ana (Acme Support)"
    assert human["From"].addresses[0].addr_spec == "support@acme.test"
    assert human["In-Reply-To"] == "<q2.jane@mail.example.com>"
    assert human["References"].split()[0] == ROOT
    assert human["Auto-Submitted"] is None

    # 5. the customer answers the agent: it reaches the agent, not the bot
    await dovecot.append(customer_email("<q3.jane@mail.example.com>", "Works now, thanks!", "Re: Password reset", human))
    await wait_for(lambda: _has_text(client, auth, conv["id"], "Works now, thanks!"), timeout=15)
    detail = await (await client.get(f"/api/v1/conversations/{conv['id']}", headers=auth)).json()
    assert detail["state"] == "human"
    assert not [r for r in smtp_sink.messages if "echo: Works now" in plain(r.message)]  # the bot stays out

    # 6. handback: no email of its own (chat notices are not emailed); the bot answers the next email
    response = await client.post(f"/api/v1/tickets/{ticket['id']}/allow-ai", headers=auth)
    assert response.status == 200
    await dovecot.append(customer_email("<q4.jane@mail.example.com>", "One more thing", "Re: Password reset", human))
    last = await sent(smtp_sink, "echo: One more thing")
    assert last["In-Reply-To"] == "<q4.jane@mail.example.com>"
    assert last["References"].split()[0] == ROOT
    assert [c["id"] for c in await conversations(client, auth)] == [conv["id"]]
    # the chat notices (agent joined, AI resumed) stay on the timeline, marked skipped, never emailed
    emailed = [plain(r.message) for r in smtp_sink.messages]
    assert not [t for t in emailed if "chatting with" in t or "AI assistant" in t]
    detail = await (await client.get(f"/api/v1/conversations/{conv['id']}", headers=auth)).json()
    notices = {m["notice"]: m["delivery_status"] for m in detail["messages"]
               if m.get("notice") and m["direction"] == "outgoing"}
    assert notices == {"waiting": "sent", "agent_joined": "skipped", "ai_resumed": "skipped"}

    # every email was marked seen once committed; nothing was stored twice
    flags = await dovecot.flags()
    assert len(flags) == 4 and all("\\Seen" in f for f in flags.values())
    detail = await (await client.get(f"/api/v1/conversations/{conv['id']}", headers=auth)).json()
    incoming = [m["text"] for m in detail["messages"] if m["direction"] == "incoming"]
    assert incoming == ["How do I reset my password?", "It did not work.", "Works now, thanks!", "One more thing"]


async def test_a_batch_with_broken_emails_is_stored_whole_over_imap(
    client: Any, dovecot: Dovecot, smtp_sink: SmtpSink,  # noqa: F811
) -> None:
    """Five emails in the mailbox at once, four with a broken part: each is stored with its text
    and the files that could be read, marked seen, and none is quarantined."""
    quarantined = metrics.EMAIL_QUARANTINED._value.get()
    names = ["question__plain.eml", *BROKEN_PARTS]
    for name in names:
        await dovecot.append(crlf(fixture(name)))
    await wait_for(lambda: all_seen(dovecot, len(names)), timeout=20)
    stored = {m.provider_id: m for m in await Message.filter(channel="email", author_kind="customer")}
    assert len(stored) == len(names)
    for name in names:
        expected = EXPECTED[name]
        assert expected is not None
        message = stored[expected["provider_id"]]
        assert message.text == expected["text"], name
        assert [(a["content_type"], a["filename"]) for a in message.attachments] == expected.get("attachments", []), name
    assert metrics.EMAIL_QUARANTINED._value.get() == quarantined


async def _has_text(client: Any, auth: dict[str, str], conversation_id: int, text: str) -> bool:
    detail = await (await client.get(f"/api/v1/conversations/{conversation_id}", headers=auth)).json()
    return any(m["text"] == text for m in detail["messages"])


async def test_crash_after_commit_before_seen_stores_once(
    client: Any, make_agent: Any, dovecot: Dovecot, smtp_sink: SmtpSink, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    """The process dies after the gateway committed but before \\Seen: the message is fetched
    again, the unique (channel, Message-ID) index makes it a duplicate, the bot answers once."""
    receive, calls = gateway.receive, []

    async def crash_after_commit(rt: Any, item: Any) -> Any:
        receipt = await receive(rt, item)
        calls.append(receipt.duplicate)
        if len(calls) == 1:
            raise RuntimeError("killed after commit, before \\\\Seen")
        return receipt

    monkeypatch.setattr(gateway, "receive", crash_after_commit)
    await dovecot.append(customer_email(ROOT, "Is anyone there?", "Hello"))
    await wait_for(lambda: all_seen(dovecot, 1), timeout=15)
    assert calls == [False, True]
    assert await Message.filter(channel="email", provider_id=ROOT).count() == 1
    await sent(smtp_sink, "echo: Is anyone there?")
    await asyncio.sleep(0.5)
    assert len([r for r in smtp_sink.messages if "echo:" in plain(r.message)]) == 1
