"""The widget's HTTP endpoints: its static files, visitor sessions and uploads.

- `GET /widget.js`, `GET /widget.css` (and the same under `/static/`): the embeddable script
  and its style, from `static/` beside this module, cached 5 minutes, readable by any page;
- `POST /widget/session` `{"token"?, "user_id"?, "user_hash"?, "name"?, "email"?}` →
  `{"token", "visitor_id", "verified"}`: resumes the session of `token` when it is for the
  same user, else makes a new one (session.py); 403 foreign origin or failed identity
  verification, 429 too many new sessions from one IP, 400/413 a bad or too large body;
- `POST /widget/upload` (multipart field `file`, `Authorization: Bearer <session token>`) →
  201 the stored file's JSON (handoff/media.py, served at `/media/{id}/{name}`); 401 unknown
  session, 429 too many uploads, 413 too large;
- `POST /widget/contact` `{"name"?, "email"?}` (`Authorization: Bearer <session token>`) → 204:
  the pre-chat form's answers fill in the visitor's Contact (contact.py); 401 unknown session,
  429 too many, 400 a bad body (an email that is not an address names the field);
- `OPTIONS` on each: the CORS preflight.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp import web

from handoff.channels.widget.contact import save_contact_details
from handoff.channels.widget.limits import CONTACTS, SESSIONS, UPLOADS, WidgetLimits
from handoff.channels.widget.session import OriginPolicy, SessionStore, VisitorSession, error, verify_identity
from handoff.config import Settings
from handoff.media import MediaStore, UploadError
from handoff.validation import WidgetContactBody, WidgetSessionBody, read_model

STATIC = Path(__file__).resolve().parent / "static"
ASSETS = {"widget.js": "application/javascript", "widget.css": "text/css"}


class WidgetHttp:
    """The handlers of the widget's HTTP routes."""

    def __init__(self, settings: Settings, origins: OriginPolicy, sessions: SessionStore, limits: WidgetLimits,
                 media: MediaStore) -> None:
        self.settings = settings
        self.origins = origins
        self.sessions = sessions
        self.limits = limits
        self.media = media

    def routes(self) -> list[web.RouteDef]:
        """The static files, session and upload routes with their preflights."""
        assets = [web.get(prefix + name, _asset_handler(name)) for name in ASSETS for prefix in ("/", "/static/")]
        return [
            *assets,
            web.post("/widget/session", self.create_session),
            web.options("/widget/session", self.preflight),
            web.post("/widget/upload", self.upload),
            web.options("/widget/upload", self.preflight),
            web.post("/widget/contact", self.contact),
            web.options("/widget/contact", self.preflight),
        ]

    async def preflight(self, request: web.Request) -> web.StreamResponse:
        """`OPTIONS`: the CORS preflight of the session and upload endpoints."""
        return self.origins.preflight(request)

    async def create_session(self, request: web.Request) -> web.StreamResponse:
        """`POST /widget/session` (see the module's docstring)."""
        if not self.origins.allows_request(request):
            return error(403, "origin not allowed")
        if not await self.limits.allow(SESSIONS, request.remote or "?"):
            return self.origins.cors(request, error(429, "too many sessions, slow down"))
        try:
            body = await read_model(request, WidgetSessionBody, self.settings.max_body_bytes, empty=True)
        except web.HTTPException as exc:  # 400 bad body, 413 too large: answered with CORS headers too
            answer = web.Response(status=exc.status, text=exc.text, content_type="application/json")
            return self.origins.cors(request, answer)
        user_id = None if body.user_id is None else str(body.user_id)
        if user_id is not None and not verify_identity(self.settings.widget_identity_secret, user_id,
                                                       body.user_hash or ""):
            return self.origins.cors(request, error(403, "identity verification failed"))
        name = _short(body.name, 200)
        email = _short(body.email, 320) if user_id is not None else None
        previous = await self.sessions.get(body.token)
        if previous is not None and previous.user_id == user_id:
            token, session = body.token, previous  # type: ignore[assignment]
        else:
            token, session = await self.sessions.create(user_id=user_id, name=name, email=email)
        answer = web.json_response({"token": token, "visitor_id": session.visitor_id, "verified": session.verified})
        return self.origins.cors(request, answer)

    async def upload(self, request: web.Request) -> web.StreamResponse:
        """`POST /widget/upload` (see the module's docstring)."""
        if not self.origins.allows_request(request):
            return error(403, "origin not allowed")
        session = await self._session(request)
        if session is None:
            return self.origins.cors(request, error(401, "unknown or expired session"))
        if not await self.limits.allow(UPLOADS, session.visitor_id):
            return self.origins.cors(request, error(429, "too many uploads, slow down"))
        try:
            stored = await self.media.save_upload(request, {"visitor_id": session.visitor_id})
        except UploadError as exc:
            return self.origins.cors(request, exc.response())
        return self.origins.cors(request, web.json_response(self.media.upload_json(stored), status=201))

    async def contact(self, request: web.Request) -> web.StreamResponse:
        """`POST /widget/contact` (see the module's docstring)."""
        if not self.origins.allows_request(request):
            return error(403, "origin not allowed")
        session = await self._session(request)
        if session is None:
            return self.origins.cors(request, error(401, "unknown or expired session"))
        if not await self.limits.allow(CONTACTS, session.visitor_id):
            return self.origins.cors(request, error(429, "too many changes, slow down"))
        try:
            body = await read_model(request, WidgetContactBody, self.settings.max_body_bytes)
        except web.HTTPException as exc:
            answer = web.Response(status=exc.status, text=exc.text, content_type="application/json")
            return self.origins.cors(request, answer)
        await save_contact_details("widget", session.visitor_id, _short(body.name, 200), _short(body.email, 320))
        return self.origins.cors(request, web.Response(status=204))

    async def _session(self, request: web.Request) -> VisitorSession | None:
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else request.query.get("token")
        return await self.sessions.get(token)


def _asset_handler(name: str) -> Any:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.FileResponse(STATIC / name)
        response.content_type = ASSETS[name]
        response.headers["Cache-Control"] = "public, max-age=300"
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response

    return handler


def _short(value: Any, limit: int) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:limit]
