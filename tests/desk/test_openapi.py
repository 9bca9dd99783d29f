"""The OpenAPI document is the served contract: every route documented, every request body the
model that validates it, and real answers of the API valid against their documented schemas."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from handoff.config import Settings
from handoff.desk.openapi import RESPONSES
from handoff.models import Conversation
from handoff.validation import (CannedResponseBody, CannedResponsePatch, ComposeBody, ConfirmBody, LabelBody,
                                ReplyBody, TransferBody, TypingBody)
from tests.conftest import settle
from tests.desk.test_uploads import upload


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    return settings.model_copy(update=dict(media_dir=str(tmp_path / "media")))


async def _document(client: Any) -> dict[str, Any]:
    response = await client.get("/api/v1/openapi.json")
    assert response.status == 200
    return await response.json()


def _served(client: Any) -> set[tuple[str, str]]:
    return {(route.resource.canonical, route.method.lower()) for route in client.app.router.routes()
            if route.resource is not None and route.resource.canonical.startswith("/api/v1/")
            and route.method not in ("HEAD", "OPTIONS")}


async def test_every_served_route_is_documented_and_nothing_else(client):
    document = await _document(client)
    documented = {(path, method) for path, operations in document["paths"].items() for method in operations}
    assert _served(client) - documented == {("/api/v1/openapi.json", "get")}
    assert documented <= _served(client)


async def test_request_bodies_are_the_validating_models_schemas(client):
    paths = (await _document(client))["paths"]
    bodies = {path: ops["post"]["requestBody"]["content"]["application/json"]["schema"]
              for path, ops in paths.items() if "application/json" in ops.get("post", {}).get("requestBody", {}).get("content", {})}
    assert bodies == {
        "/api/v1/tickets/{id}/messages": ReplyBody.model_json_schema(),
        "/api/v1/tickets/{id}/transfer": TransferBody.model_json_schema(),
        "/api/v1/conversations/{id}/typing": TypingBody.model_json_schema(),
        "/api/v1/tickets/{id}/allow-ai": ConfirmBody.model_json_schema(),
        "/api/v1/tickets/{id}/close": ConfirmBody.model_json_schema(),
        "/api/v1/labels": LabelBody.model_json_schema(),
        "/api/v1/tickets/{id}/compose": ComposeBody.model_json_schema(),
        "/api/v1/canned_responses": CannedResponseBody.model_json_schema(),
    }
    patch = paths["/api/v1/canned_responses/{id}"]["patch"]["requestBody"]["content"]["application/json"]["schema"]
    assert patch == CannedResponsePatch.model_json_schema()
    assert bodies["/api/v1/tickets/{id}/transfer"]["required"] == ["agent_id"]


def _check(document: dict[str, Any], path: str, method: str, status: int, body: str) -> None:
    """`body` (a real answer) validated, strictly, against the schema the document gives for it."""
    schema = document["paths"][path][method]["responses"][str(status)]["content"]["application/json"]["schema"]
    name = schema["$ref"].rsplit("/", 1)[1]
    assert document["components"]["schemas"][name]["title"] == name
    RESPONSES[name].model_validate_json(body, strict=True)


async def test_real_answers_match_their_documented_schemas(client, rt, say, make_agent):
    document = await _document(client)
    _, auth = await make_agent()
    other, _ = await make_agent("Other")
    await say("my parcel is late", conversation="doc")
    await settle(rt)
    conversation = await Conversation.get(external_key="doc")
    cid = conversation.id

    async def call(method: str, path: str, status: int, template: str | None = None, **kwargs: Any) -> Any:
        response = await getattr(client, method)(path, headers=auth, **kwargs)
        text = await response.text()
        assert response.status == status, text
        _check(document, template or path, method, status, text)
        return await response.json()

    ticket = await call("post", f"/api/v1/conversations/{cid}/takeover", 201, "/api/v1/conversations/{id}/takeover")
    tid = ticket["id"]
    await call("post", f"/api/v1/conversations/{cid}/takeover", 409, "/api/v1/conversations/{id}/takeover")
    file = await upload(client, auth)
    _check(document, "/api/v1/uploads", "post", 201, json.dumps(file))
    await call("post", f"/api/v1/tickets/{tid}/messages", 201, "/api/v1/tickets/{id}/messages",
               json={"text": "Here is the label", "attachments": [file["id"]]})
    await call("post", f"/api/v1/tickets/{tid}/messages", 201, "/api/v1/tickets/{id}/messages",
               json={"text": "checking with the carrier", "internal": True})
    await call("post", f"/api/v1/tickets/{tid}/messages", 400, "/api/v1/tickets/{id}/messages", json={"text": 5})
    await call("post", f"/api/v1/conversations/{cid}/typing", 200, "/api/v1/conversations/{id}/typing", json={})
    await call("post", "/api/v1/labels", 201, json={"name": "refund", "color": "#FF0000"})
    await call("post", "/api/v1/labels", 409, json={"name": "Refund"})
    await call("post", "/api/v1/labels", 400, json={"name": "a,b"})
    await call("get", "/api/v1/labels", 200)
    await call("put", f"/api/v1/conversations/{cid}/labels", 200, "/api/v1/conversations/{id}/labels",
               json={"labels": ["REFUND"]})
    unknown = await call("put", f"/api/v1/conversations/{cid}/labels", 400, "/api/v1/conversations/{id}/labels",
                         json={"labels": ["refund", "vip"]})
    assert unknown["unknown"] == ["vip"]
    await call("put", f"/api/v1/conversations/{cid}/labels", 400, "/api/v1/conversations/{id}/labels", json={})
    await settle(rt)
    await call("get", "/api/v1/conversations", 200)
    rows = await call("get", "/api/v1/conversations?label=refund&agent_type=human&responded_by=me", 200,
                      "/api/v1/conversations")
    assert [r["id"] for r in rows["conversations"]] == [cid] and rows["conversations"][0]["labels"][0]["name"] == "refund"
    await call("get", "/api/v1/tickets?label=refund", 200, "/api/v1/tickets")
    await call("get", "/api/v1/conversations?q=doc&limit=1", 200, "/api/v1/conversations")
    await call("get", f"/api/v1/conversations/{cid}", 200, "/api/v1/conversations/{id}")
    await call("get", "/api/v1/conversations/999999", 404, "/api/v1/conversations/{id}")
    await call("get", "/api/v1/tickets", 200)
    await call("get", f"/api/v1/tickets/{tid}", 200, "/api/v1/tickets/{id}")
    await call("get", "/api/v1/agents", 200)
    await call("post", f"/api/v1/tickets/{tid}/transfer", 200, "/api/v1/tickets/{id}/transfer",
               json={"agent_id": other.id, "note": "yours"})
    await call("post", f"/api/v1/tickets/{tid}/messages", 403, "/api/v1/tickets/{id}/messages", json={"text": "hi"})
    conflict = await call("post", f"/api/v1/tickets/{tid}/close", 409, "/api/v1/tickets/{id}/close")
    assert conflict["confirm_required"] is True and conflict["assignee"]["id"] == other.id
    await call("get", "/api/v1/unread", 200)
    await call("post", f"/api/v1/tickets/{tid}/read", 200, "/api/v1/tickets/{id}/read")
    await call("post", f"/api/v1/tickets/{tid}/close", 200, "/api/v1/tickets/{id}/close", json={"confirm": True})
    await call("post", f"/api/v1/tickets/{tid}/claim", 409, "/api/v1/tickets/{id}/claim")
    detail = await call("get", f"/api/v1/tickets/{tid}", 200, "/api/v1/tickets/{id}")
    assert detail["conversation"]["events"] and len(detail["conversation"]["messages"]) >= 4
    assert (await client.get("/api/v1/agents")).status == 401


def test_a_field_the_document_does_not_name_fails_validation():
    ticket = {"id": 1, "conversation_id": 2, "kind": "live_chat", "channel": "api", "status": "open",
              "assignee": None, "subject": "s", "summary": "", "language": None, "reason": None,
              "created_at": "2026-01-01T00:00:00+00:00", "closed_at": None}
    RESPONSES["Ticket"].model_validate(ticket, strict=True)
    with pytest.raises(ValidationError):
        RESPONSES["Ticket"].model_validate({**ticket, "secret": 1}, strict=True)
    with pytest.raises(ValidationError):
        RESPONSES["Ticket"].model_validate({**ticket, "status": "pending"}, strict=True)
