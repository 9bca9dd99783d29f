"""Agents send files: POST /api/v1/uploads, then a reply naming the upload ids.

The app runs with the api channel (no attachments: the customer gets links) and WhatsApp
pointed at the local fake Twilio API (the customer gets the file as MediaUrl, fetched from
HANDOFF_PUBLIC_URL/media/...). Every test runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData

from handoff.channels.whatsapp import WhatsAppChannel
from handoff.config import Settings
from handoff.models import Conversation, Message, Ticket
from tests.conftest import settle
from tests.fakes.twilio_api import FakeTwilio

AC = "AC" + "0" * 32
TOKEN = "test-auth-token"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
WHATSAPP_TEXT = (Path(__file__).parents[2] / "webhooks" / "whatsapp" / "message__text.txt").read_bytes()


@pytest.fixture
async def twilio() -> Any:
    async with FakeTwilio(AC, TOKEN) as server:
        yield server


@pytest.fixture
def settings(settings: Settings, twilio: FakeTwilio, tmp_path: Path) -> Settings:
    """The conftest settings plus WhatsApp (fake Twilio) and a private media folder."""
    return settings.model_copy(update=dict(twilio_account_sid=AC, twilio_auth_token=TOKEN,
                               twilio_whatsapp_number="+14155238886", twilio_api_base=twilio.url,
                               media_dir=str(tmp_path / "media")))


def form(content: bytes = PNG, filename: str = "photo.png", content_type: str = "image/png",
         field: str = "file") -> FormData:
    data = FormData()
    data.add_field(field, content, filename=filename, content_type=content_type)
    return data


async def upload(client: Any, auth: dict[str, str], **kwargs: Any) -> dict[str, Any]:
    response = await client.post("/api/v1/uploads", data=form(**kwargs), headers=auth)
    assert response.status == 201, await response.text()
    return await response.json()


async def take_over(client: Any, rt: Any, auth: dict[str, str], channel: str) -> tuple[Conversation, dict[str, Any]]:
    await settle(rt)
    conversation = await Conversation.get(channel=channel)
    response = await client.post(f"/api/v1/conversations/{conversation.id}/takeover", headers=auth)
    assert response.status == 201, await response.text()
    await settle(rt)
    return conversation, await response.json()


async def test_uploads_need_an_agent_and_one_file_within_the_limit(client: Any, rt: Any, make_agent: Any) -> None:
    _, auth = await make_agent()
    assert (await client.post("/api/v1/uploads", data=form())).status == 401
    not_multipart = await client.post("/api/v1/uploads", json={"file": "x"}, headers=auth)
    assert not_multipart.status == 400 and "multipart" in (await not_multipart.json())["error"]
    wrong_field = await client.post("/api/v1/uploads", data=form(field="other"), headers=auth)
    assert wrong_field.status == 400
    rt.media.max_bytes = 1024
    too_big = await client.post("/api/v1/uploads", data=form(b"0" * 5000), headers=auth)
    assert too_big.status == 413 and "1024" in (await too_big.json())["error"]
    assert not rt.media.root.exists() or list(rt.media.root.iterdir()) == []

    uploaded = await upload(client, auth)
    assert (uploaded["filename"], uploaded["content_type"], uploaded["size"]) == ("photo.png", "image/png", len(PNG))
    assert uploaded["url"] == f"{rt.settings.public_url}/media/{uploaded['id']}/photo.png"


async def test_a_file_reaches_the_whatsapp_customer(client: Any, rt: Any, make_agent: Any, twilio: FakeTwilio,
                                                    settings: Settings) -> None:
    _, auth = await make_agent()
    url = settings.public_url + "/webhooks/whatsapp"
    signer = WhatsAppChannel.from_settings(settings)
    assert signer is not None
    response = await client.post("/webhooks/whatsapp", data=WHATSAPP_TEXT, headers=signer.sign(WHATSAPP_TEXT, url))
    assert response.status == 200
    _, ticket = await take_over(client, rt, auth, "whatsapp")
    uploaded = await upload(client, auth)

    response = await client.post(f"/api/v1/tickets/{ticket['id']}/messages", json={"attachments": [uploaded["id"]]},
                                 headers=auth)
    assert response.status == 201, await response.text()
    message = await response.json()
    assert message["text"] == ""
    assert message["attachments"] == [{"url": uploaded["url"], "filename": "photo.png", "content_type": "image/png",
                                       "size": len(PNG)}]
    await settle(rt)
    [sent] = [r for r in twilio.sent if r.form.get("MediaUrl")]
    assert sent.form["MediaUrl"] == [uploaded["url"]]
    assert uploaded["url"].startswith(settings.public_url + "/media/")
    # What Twilio fetches at that URL is the file the agent uploaded.
    fetched = await client.get(uploaded["url"][len(settings.public_url):])
    assert fetched.status == 200 and fetched.content_type == "image/png" and await fetched.read() == PNG
    assert (await Message.get(id=message["id"])).delivery_status == "sent"


async def test_a_channel_without_files_gets_links(client: Any, rt: Any, make_agent: Any, say: Any,
                                                  callback: Any) -> None:
    _, auth = await make_agent()
    await say("please send the invoice", conversation="inv")
    _, ticket = await take_over(client, rt, auth, "api")
    uploaded = await upload(client, auth, content=b"%PDF-1.4", filename="invoice.pdf",
                            content_type="application/pdf")
    response = await client.post(f"/api/v1/tickets/{ticket['id']}/messages",
                                 json={"text": "Here it is.", "attachments": [uploaded["id"]]}, headers=auth)
    assert response.status == 201, await response.text()
    await settle(rt)
    [sent] = [m for m in callback.for_conversation("inv") if m["kind"] == "agent"]
    assert sent["text"] == f"Here it is.\n\ninvoice.pdf: {uploaded['url']}"
    assert sent["attachments"] == [{"url": uploaded["url"], "filename": "invoice.pdf",
                                    "content_type": "application/pdf", "size": len(b"%PDF-1.4")}]


async def test_bad_attachments_are_400_and_change_nothing(client: Any, rt: Any, make_agent: Any, say: Any) -> None:
    _, auth = await make_agent("Ana")
    _, other_auth = await make_agent("Ben")
    await say("hello", conversation="bad")
    conversation, ticket = await take_over(client, rt, auth, "api")
    mine = await upload(client, auth)
    theirs = await upload(client, other_auth)

    async def visitor_file() -> str:
        async def content() -> Any:
            yield b"visitor"
        stored = await rt.media.save(content(), filename="v.txt", content_type="text/plain", owner={"visitor_id": "v1"})
        return stored.id

    messages_before = await Message.filter(conversation_id=conversation.id).count()
    cases = [
        ({"text": "x", "attachments": mine["id"]}, "list"),
        ({"text": "x", "attachments": [1]}, "list"),
        ({"text": "x", "attachments": ["nope"]}, "unknown attachment"),
        ({"text": "x", "attachments": [mine["id"], theirs["id"]]}, "unknown attachment"),
        ({"text": "x", "attachments": [await visitor_file()]}, "unknown attachment"),
        ({"text": "x", "attachments": [mine["id"]] * 11}, "at most 10"),
        ({"text": "", "attachments": []}, "empty"),
        ({"text": "for us", "internal": True, "attachments": [mine["id"]]}, "notes"),
    ]
    for body, error in cases:
        response = await client.post(f"/api/v1/tickets/{ticket['id']}/messages", json=body, headers=auth)
        assert response.status == 400, body
        assert error in (await response.json())["error"], body
    assert await Message.filter(conversation_id=conversation.id).count() == messages_before
    assert (await Ticket.get(id=ticket["id"])).status == "on_you"


async def test_openapi_documents_uploads(client: Any) -> None:
    document = await (await client.get("/api/v1/openapi.json")).json()
    upload_op = document["paths"]["/api/v1/uploads"]["post"]
    assert "multipart/form-data" in upload_op["requestBody"]["content"] and "413" in upload_op["responses"]
    reply = document["paths"]["/api/v1/tickets/{id}/messages"]["post"]["requestBody"]["content"]["application/json"]
    assert {"items": {"type": "string"}, "maxItems": 10, "type": "array"} in reply["schema"]["properties"]["attachments"]["anyOf"]


async def test_uploads_sent_with_a_reply_are_kept_and_abandoned_ones_swept(client: Any, rt: Any, make_agent: Any,
                                                                          say: Any) -> None:
    import os
    import time

    _, auth = await make_agent()
    await say("what's the return address?", conversation="keep")
    _, ticket = await take_over(client, rt, auth, "api")
    sent, abandoned = await upload(client, auth), await upload(client, auth)
    refused = await client.post(f"/api/v1/tickets/{ticket['id']}/messages", headers=auth,
                                json={"text": "two files", "attachments": [abandoned["id"], "not-an-upload"]})
    assert refused.status == 400  # and the valid id in it stays unattached
    response = await client.post(f"/api/v1/tickets/{ticket['id']}/messages", headers=auth,
                                 json={"text": "label attached", "attachments": [sent["id"]]})
    assert response.status == 201
    await settle(rt)
    long_ago = time.time() - 2 * 24 * 3600
    for item in (sent, abandoned):
        os.utime(rt.media.root / item["id"], (long_ago, long_ago))
    assert rt.media.sweep() == 1
    assert (await client.get(sent["url"][len(rt.settings.public_url):])).status == 200
    assert (await client.get(abandoned["url"][len(rt.settings.public_url):])).status == 404
