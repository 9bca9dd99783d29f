"""`POST /api/v1/tickets/{id}/compose`: AI compose in the desk's composer (`handoff.bot.compose`).

`{"mode": "draft"|"polish"|"translate", "text"?}` → 200 `{"text"}`: a draft reply from the
conversation, the agent's text polished, or translated into the customer's language. Nothing is
sent or stored: the agent reviews the text and sends it as any reply.

Who may: any agent, on an open ticket (the rule of internal notes, `handoff.desk.rules`): asking
for a draft reads the conversation and changes nothing. Answers: 400 a bad body, or no `text` to
polish or translate; 404 no such ticket; 409 no model configured (OPENAI_API_KEY), a closed
ticket, or a translation while the customer's language is not known yet; 502 the model failed
(an error, a refusal, an empty answer); 504 it did not answer within HANDOFF_COMPOSE_TIMEOUT.
"""

from __future__ import annotations

from aiohttp import web

from handoff.bot.compose import ComposeUnavailable, Mode, load_request
from handoff.desk.api import AGENT, _body, _id
from handoff.errors import DeskError, InvalidInput, InvalidState, NotFound
from handoff.models import Conversation, Ticket
from handoff.runtime import RUNTIME
from handoff.states import TicketStatus
from handoff.validation import ComposeBody

routes = web.RouteTableDef()
NOT_CONFIGURED = "AI compose is not available: no model is configured (set OPENAI_API_KEY)"


class ModelFailed(DeskError):
    """The model answered with an error, a refusal or nothing usable."""

    status = 502


class ModelTimedOut(DeskError):
    """The model did not answer in time."""

    status = 504


@routes.post("/api/v1/tickets/{id}/compose")
async def compose(request: web.Request) -> web.Response:
    """A draft, a polished text or a translation for the agent to review; sends nothing."""
    ticket = await Ticket.get_or_none(id=_id(request))
    if ticket is None:
        raise NotFound("ticket not found")
    data: ComposeBody = await _body(request, ComposeBody)
    composer = request.app[RUNTIME].composer
    if composer is None:
        raise InvalidState(NOT_CONFIGURED)
    if ticket.status == TicketStatus.CLOSED:
        raise InvalidState("the ticket is closed")
    mode = Mode(data.mode)
    text = (data.text or "").strip()
    if mode != Mode.DRAFT and not text:
        raise InvalidInput(f"text is required to {mode.value}")
    conversation = await Conversation.get(id=ticket.conversation_id)  # type: ignore[attr-defined]
    if mode == Mode.TRANSLATE and not conversation.language:
        raise InvalidState("the customer's language is not known yet: nothing to translate into")
    compose_request = await load_request(conversation, request[AGENT], mode, text or None)
    try:
        result = await composer.compose(compose_request)
    except ComposeUnavailable as exc:
        if exc.timed_out:
            raise ModelTimedOut("the AI model did not answer in time; try again") from None
        raise ModelFailed(f"the AI model could not help: {exc.reason}") from None
    return web.json_response({"text": result})
