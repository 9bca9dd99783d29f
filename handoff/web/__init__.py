"""The two browser faces served by the app: the demo page at `/` and the agent desk at `/desk`.

Plain JavaScript and CSS from `static/`, no build step. The desk is a static shell that
talks to the REST API (DESIGN.md §6) and its WebSocket with the session cookie set here.
`routes(settings)` is called by the app.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web
from tortoise.exceptions import IntegrityError

from handoff.channels.widget.limits import WidgetLimits
from handoff.config import Settings
from handoff.validation import AccountBody, LoginBody, read_model
from handoff.web import auth

STATIC = Path(__file__).resolve().parent / "static"

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https:; "
    "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def routes(settings: Settings, limits: WidgetLimits) -> list[web.AbstractRouteDef]:
    """The web pages, static files and desk sign-in routes, under `settings`; failed sign-ins are
    counted in `limits` (shared through Redis when configured, per process while it is down)."""

    def page(name: str) -> Any:
        async def handler(request: web.Request) -> web.StreamResponse:
            return _html(STATIC / name)

        return handler

    async def login(request: web.Request) -> web.StreamResponse:
        if not auth.request_origin_ok(request, settings):
            return _error(403, "cross-site request refused")
        body = await read_model(request, LoginBody, settings.max_body_bytes)
        remote = request.remote or "?"
        if not await limits.check(auth.SIGNIN_FAILURES, remote):
            return _error(429, "too many failed sign-ins, wait a minute")
        if body.token:
            agent = await auth.agent_from_token(body.token)
        else:
            if body.email is None or body.password is None:
                return _error(400, "email and password are required")
            agent = await auth.authenticate(body.email, body.password)
        if agent is None:
            await limits.allow(auth.SIGNIN_FAILURES, remote)
            return _error(401, "wrong email, password or token")
        response = web.json_response({"agent": _agent_json(agent)})
        auth.set_session_cookie(response, settings, agent)
        return response

    async def logout(request: web.Request) -> web.StreamResponse:
        if not auth.request_origin_ok(request, settings):
            return _error(403, "cross-site request refused")
        response = web.json_response({"ok": True})
        auth.clear_session_cookie(response, settings)
        return response

    async def me(request: web.Request) -> web.StreamResponse:
        agent = await auth.agent_from_cookie(settings, request.cookies.get(auth.COOKIE))
        if agent is None:
            return _error(401, "not signed in")
        return web.json_response({"agent": _agent_json(agent)})

    async def account(request: web.Request) -> web.StreamResponse:
        agent = await auth.agent_from_session(request)
        if agent is None:
            return _error(401, "not signed in")
        body = await read_model(request, AccountBody, settings.max_body_bytes)
        fields: list[str] = []
        if body.password is not None:
            agent.password_hash = auth.hash_password(body.password)
            fields.append("password_hash")
        for name, limit in (("name", 200), ("email", 320)):
            value = getattr(body, name)
            if value and value.strip():
                setattr(agent, name, value.strip()[:limit].lower() if name == "email" else value.strip()[:limit])
                fields.append(name)
        if fields:
            try:
                await agent.save(update_fields=fields)
            except IntegrityError:  # the unique index on the email; anything else is a 500
                return _error(409, "that email is already used by another agent")
        response = web.json_response({"agent": _agent_json(agent)})
        auth.set_session_cookie(response, settings, agent)  # the fingerprint changed with the password
        return response

    async def signin_page(request: web.Request) -> web.StreamResponse:
        # A GET never spends the link (mail scanners and previews fetch links); the button POSTs.
        return _html(STATIC / "signin.html")

    async def signin(request: web.Request) -> web.StreamResponse:
        if not auth.request_origin_ok(request, settings):
            return _error(403, "cross-site request refused")
        agent = await auth.consume_signin(request.match_info["token"])
        if agent is None:
            return _error(410, "this sign-in link was already used or has expired")
        response = web.Response(status=303, headers={"Location": "/desk#account"})
        auth.set_session_cookie(response, settings, agent)
        return response

    return [
        web.get("/", page("index.html")),
        web.get("/desk", page("desk.html")),
        web.post("/desk/login", login),
        web.post("/desk/logout", logout),
        web.get("/desk/me", me),
        web.post("/desk/account", account),
        web.get("/desk/signin/{token}", signin_page),
        web.post("/desk/signin/{token}", signin),
        web.static("/static", STATIC, append_version=False),
    ]


def _agent_json(agent: Any) -> dict[str, Any]:
    return {"id": agent.id, "name": agent.name, "email": agent.email, "has_password": bool(agent.password_hash)}


def _html(path: Path) -> web.StreamResponse:
    response = web.FileResponse(path)
    response.content_type = "text/html"
    response.headers["Content-Security-Policy"] = _CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "no-cache"
    return response


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)
