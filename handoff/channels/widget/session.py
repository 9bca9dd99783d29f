"""Widget visitor sessions, identity verification, and the Origin allow-list with its CORS headers.

A visitor session is an unguessable bearer token (`secrets.token_urlsafe(32)`, 256 bits)
bound to one visitor id, which is the widget conversation key. Only the token's SHA-256 is
stored (in `KeyValue`, scope "widget_session"), so a database leak does not leak sessions.

Identity verification follows the usual help-desk widget scheme: the site's backend
computes `user_hash = hex(HMAC-SHA256(site secret, user_id))` and passes both to the
widget; a verified user's visitor id is derived from the user id, so their conversation
follows them across devices, while an anonymous visitor gets a random id.

Every widget endpoint answers only pages whose Origin is on `HANDOFF_WIDGET_ORIGINS`, the
server's public URL, or the server's own origin (`OriginPolicy`), and echoes that origin in
`Access-Control-Allow-Origin` (Fetch standard, CORS protocol).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from handoff.models import KeyValue

SESSION_SCOPE = "widget_session"
SESSION_TTL = 90 * 24 * 3600.0


def identity_hash(secret: str, user_id: str) -> str:
    """The hex HMAC-SHA256 of `user_id` under the site secret (what the site's backend computes)."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


def verify_identity(secret: str, user_id: str, user_hash: str) -> bool:
    """True when `user_hash` is the HMAC of `user_id` under `secret` (constant-time compare)."""
    if not secret or not user_id or not isinstance(user_hash, str):
        return False
    return hmac.compare_digest(identity_hash(secret, user_id), user_hash.strip().lower())


def token_digest(token: str) -> str:
    """The stored form of a session token."""
    return hashlib.sha256(token.encode()).hexdigest()


def origin_of(url: str) -> str:
    """`scheme://host[:port]` of a URL, lower-cased, default ports dropped; "" for a URL that has
    no usable origin (no scheme or host, a port that is not a number from 0 to 65535, a broken
    IPv6 literal), which every caller treats as not allowed."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # ValueError for `:abc` or `:99999`
    except ValueError:
        return ""
    if not parts.scheme or not parts.hostname:
        return ""
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, default) else f"{host}:{port}"
    return f"{parts.scheme.lower()}://{netloc}"


class OriginPolicy:
    """Which page origins may use the widget: the allow-list, the public URL, and same-origin."""

    def __init__(self, allowed: str, public_url: str) -> None:
        items = [item.strip() for item in allowed.split(",") if item.strip()]
        self.any = "*" in items
        self.allowed = {origin_of(item) for item in items if item != "*"} - {""}
        if public_url:
            self.allowed.add(origin_of(public_url))

    def allows(self, origin: str | None, own_origin: str = "") -> bool:
        """True when a browser page at `origin` may talk to the widget endpoints (fails closed)."""
        if not origin or origin == "null":
            return False
        normalized = origin_of(origin)
        if not normalized:
            return False
        if self.any:
            return True
        return normalized in self.allowed or (bool(own_origin) and normalized == origin_of(own_origin))

    def allows_request(self, request: web.Request) -> bool:
        """True when the request's Origin header may use the widget (its own origin counts)."""
        return self.allows(request.headers.get("Origin"), f"{request.scheme}://{request.host}")

    def cors(self, request: web.Request, response: web.StreamResponse) -> web.StreamResponse:
        """`response` with `Access-Control-Allow-Origin` echoing an allowed Origin (none otherwise)."""
        origin = request.headers.get("Origin")
        if origin and self.allows_request(request):
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        return response

    def preflight(self, request: web.Request) -> web.StreamResponse:
        """The answer to a CORS preflight (`OPTIONS`): 204 with the allowed methods and headers,
        cached by the browser for 10 minutes; 403 `{"error"}` for an origin not allowed."""
        if not self.allows_request(request):
            return error(403, "origin not allowed")
        response = web.Response(status=204)
        response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
        response.headers["Access-Control-Max-Age"] = "600"
        return self.cors(request, response)


def error(status: int, message: str) -> web.Response:
    """The JSON error answer every widget endpoint gives: `{"error": message}` with `status`."""
    return web.json_response({"error": message}, status=status)


@dataclass(frozen=True)
class VisitorSession:
    """A visitor's session: its visitor id (= conversation key) and what the site told us about them."""

    visitor_id: str
    user_id: str | None = None
    name: str | None = None
    email: str | None = None
    created_at: float = 0.0

    @property
    def verified(self) -> bool:
        """True when the site vouched for this visitor's user id."""
        return self.user_id is not None

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "visitor_id": self.visitor_id,
            "user_id": self.user_id,
            "name": self.name,
            "email": self.email,
            "created_at": self.created_at,
        }


class SessionStore:
    """Creates and looks up visitor sessions (durable in the database, cached in memory)."""

    def __init__(self, ttl: float = SESSION_TTL) -> None:
        self.ttl = ttl
        self._cache: dict[str, VisitorSession] = {}

    async def create(
        self, *, user_id: str | None = None, name: str | None = None, email: str | None = None
    ) -> tuple[str, VisitorSession]:
        """A new session token and its session; a verified user's visitor id derives from the user id."""
        token = secrets.token_urlsafe(32)
        if user_id is not None:
            visitor_id = "u_" + hashlib.sha256(user_id.encode()).hexdigest()[:32]
        else:
            visitor_id = "v_" + secrets.token_urlsafe(16)
        session = VisitorSession(visitor_id, user_id, name, email, time.time())
        digest = token_digest(token)
        await KeyValue.create(scope=SESSION_SCOPE, key=digest, value=session.to_json())
        self._cache[digest] = session
        return token, session

    async def get(self, token: str | None) -> VisitorSession | None:
        """The live session for a token, or None (unknown, malformed or expired)."""
        if not token or not isinstance(token, str) or len(token) < 40 or len(token) > 128:
            return None
        digest = token_digest(token)
        session = self._cache.get(digest)
        if session is None:
            row = await KeyValue.get_or_none(scope=SESSION_SCOPE, key=digest)
            if row is None:
                return None
            value = row.value or {}
            session = VisitorSession(
                visitor_id=str(value.get("visitor_id")),
                user_id=value.get("user_id"),
                name=value.get("name"),
                email=value.get("email"),
                created_at=float(value.get("created_at") or 0.0),
            )
            self._cache[digest] = session
        if time.time() - session.created_at > self.ttl:
            self._cache.pop(digest, None)
            await KeyValue.filter(scope=SESSION_SCOPE, key=digest).delete()
            return None
        return session
