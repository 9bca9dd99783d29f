"""The desk REST API's label routes (issue 16, item 1), registered by app.py beside `desk.api`'s:
`GET /api/v1/labels`, `POST /api/v1/labels` (`validation.LabelBody`) and
`PUT /api/v1/conversations/{id}/labels` (`validation.ConversationLabelsBody`). Any agent may
label any conversation, as anyone may add a note. Errors are `{"error": ...}`: 400 for a bad
body (and `"unknown": [names]` for labels that do not exist), 404, 409 for a name taken.
"""

from __future__ import annotations

from aiohttp import web

from handoff.desk import labels
from handoff.desk.api import AGENT
from handoff.errors import NotFound
from handoff.runtime import RUNTIME
from handoff.validation import ConversationLabelsBody, LabelBody, id_from_text, read_model

routes = web.RouteTableDef()


@routes.get("/api/v1/labels")
async def list_labels(request: web.Request) -> web.Response:
    """Every label, by name: `{"labels": [{"id", "name", "color"}]}`."""
    return web.json_response({"labels": await labels.all_labels()})


@routes.post("/api/v1/labels")
async def create_label(request: web.Request) -> web.Response:
    """Create a label: 201 with it; 409 when the name, ignoring case, is taken."""
    data: LabelBody = await read_model(request, LabelBody, request.app[RUNTIME].settings.max_body_bytes)
    return web.json_response(await labels.create_label(data.name, data.color), status=201)


@routes.put("/api/v1/conversations/{id}/labels")
async def put_labels(request: web.Request) -> web.Response:
    """Replace a conversation's labels: `{"labels": [names]}` → `{"labels": [label, ...]}`."""
    conversation_id = id_from_text(request.match_info["id"])
    if conversation_id is None:
        raise NotFound("conversation not found")
    rt = request.app[RUNTIME]
    data: ConversationLabelsBody = await read_model(request, ConversationLabelsBody, rt.settings.max_body_bytes)
    return web.json_response({"labels": await labels.set_labels(rt, conversation_id, request[AGENT], data.labels)})
