"""Desk sign-in: argon2 password hashes, signed session cookies, CSRF checks, one-time links.

- Passwords are hashed with argon2id (argon2-cffi) into `Agent.password_hash`.
- The session cookie is `<agent id>.<expiry>.<fingerprint>.<HMAC-SHA256>`, HttpOnly,
  SameSite=Strict, Secure when the public URL is https. It is signed with a key derived
  from `HANDOFF_SECRET_KEY`, or with a random per-process key when that is unset (sessions
  then end on restart). The fingerprint covers the agent's password and token hashes, so
  changing either signs every session out.
- CSRF: every state-changing request and every WebSocket upgrade authenticated by the
  cookie must come from the desk's own origin (Origin, else Referer), on top of SameSite.
- One-time sign-in links (the first agent's, printed on first start) are single-use and
  expire; only their SHA-256 is stored (`KeyValue`, scope "desk_signin").
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from typing import Any

from aiohttp import web
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from limits import RateLimitItemPerMinute

from tortoise.exceptions import IntegrityError

from handoff.channels.widget.session import origin_of
from handoff.config import Settings
from handoff.desk.auth import hash_token
from handoff.models import Agent, KeyValue
from handoff.runtime import RUNTIME

COOKIE = "handoff_session"
SESSION_TTL = 7 * 24 * 3600
SIGNIN_SCOPE = "desk_signin"
SIGNIN_TTL = 24 * 3600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_hasher = PasswordHasher()
_process_key = secrets.token_bytes(32)
# Failed sign-ins per IP: 10 in any 5 minutes, counted in Redis (every instance) when configured.
SIGNIN_FAILURES = RateLimitItemPerMinute(10, 5, namespace="signin")
SIGNIN_LIMITS_PREFIX = "handoff:signin-limits"


def hash_password(password: str) -> str:
    """An argon2id hash of a password."""
    return _hasher.hash(password)


def check_password(password_hash: str | None, password: str) -> bool:
    """True when `password` matches the stored argon2 hash."""
    if not password_hash or not password:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def signing_key(settings: Settings) -> bytes:
    """The cookie signing key: derived from the secret key, else random for this process."""
    if settings.secret_key:
        return hmac.new(settings.secret_key.encode(), b"handoff desk session", hashlib.sha256).digest()
    return _process_key


def _fingerprint(agent: Agent) -> str:
    material = f"{agent.password_hash or ''}|{agent.token_hash}|{agent.is_active}"
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def _sign(key: bytes, payload: str) -> str:
    mac = hmac.new(key, payload.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode().rstrip("=")


def session_value(settings: Settings, agent: Agent, now: float | None = None) -> str:
    """A signed session cookie value for an agent."""
    expires = int((now or time.time()) + SESSION_TTL)
    payload = f"{agent.id}.{expires}.{_fingerprint(agent)}"
    return f"{payload}.{_sign(signing_key(settings), payload)}"


async def agent_from_cookie(settings: Settings, value: str | None, now: float | None = None) -> Agent | None:
    """The active agent a session cookie value belongs to, or None (forged, expired, stale)."""
    if not value or value.count(".") != 3:
        return None
    agent_id, expires, fingerprint, mac = value.split(".")
    payload = f"{agent_id}.{expires}.{fingerprint}"
    if not hmac.compare_digest(_sign(signing_key(settings), payload), mac):
        return None
    if not agent_id.isdigit() or not expires.isdigit() or int(expires) < (now or time.time()):
        return None
    agent = await Agent.get_or_none(id=int(agent_id), is_active=True)
    if agent is None or not hmac.compare_digest(_fingerprint(agent), fingerprint):
        return None
    return agent


def request_origin_ok(request: web.Request, settings: Settings) -> bool:
    """True when the request comes from a page of this server (Origin, else Referer); fails closed."""
    source = request.headers.get("Origin")
    if not source or source == "null":
        source = request.headers.get("Referer", "")
    origin = origin_of(source) if source else ""
    if not origin:
        return False
    own = {origin_of(f"{request.scheme}://{request.host}"), origin_of(settings.public_url)}
    return origin in own


def _settings_of(request: web.Request) -> Settings:
    return request.app[RUNTIME].settings


async def agent_from_session(request: web.Request) -> Agent | None:
    """The agent signed in by the desk cookie, or None. Raises 403 on a cross-site state change."""
    value = request.cookies.get(COOKIE)
    if not value:
        return None
    settings = _settings_of(request)
    agent = await agent_from_cookie(settings, value)
    if agent is None:
        return None
    upgrade = request.headers.get("Upgrade", "").lower() == "websocket"
    if (request.method not in SAFE_METHODS or upgrade) and not request_origin_ok(request, settings):
        raise web.HTTPForbidden(
            text='{"error": "cross-site request refused"}', content_type="application/json"
        )
    return agent


def set_session_cookie(response: web.StreamResponse, settings: Settings, agent: Agent) -> None:
    """Sign an agent in on this response."""
    response.set_cookie(
        COOKIE,
        session_value(settings, agent),
        max_age=SESSION_TTL,
        path="/",
        httponly=True,
        samesite="Strict",
        secure=settings.public_url.startswith("https://"),
    )


def clear_session_cookie(response: web.StreamResponse, settings: Settings) -> None:
    """Sign out on this response."""
    response.del_cookie(COOKIE, path="/", samesite="Strict", secure=settings.public_url.startswith("https://"))


async def authenticate(email: str, password: str) -> Agent | None:
    """The active agent with this email and password, or None."""
    agent = await Agent.get_or_none(email=email.strip().lower(), is_active=True)
    if agent is None:
        agent = await Agent.get_or_none(email=email.strip(), is_active=True)
    if agent is None:
        check_password(_DUMMY_HASH, password)  # same work whether or not the email exists
        return None
    if not check_password(agent.password_hash, password):
        return None
    if _hasher.check_needs_rehash(agent.password_hash or ""):
        agent.password_hash = hash_password(password)
        await agent.save(update_fields=["password_hash"])
    return agent


async def agent_from_token(token: str) -> Agent | None:
    """The active agent owning an API token, or None."""
    if not token or len(token) > 200:
        return None
    return await Agent.get_or_none(token_hash=hash_token(token.strip()), is_active=True)


async def signin_link(settings: Settings, agent: Agent, ttl: float = SIGNIN_TTL) -> str:
    """A single-use, expiring sign-in URL for an agent."""
    token = secrets.token_urlsafe(32)
    await KeyValue.create(
        scope=SIGNIN_SCOPE, key=hash_token(token), value={"agent_id": agent.id, "expires": time.time() + ttl}
    )
    return f"{settings.public_url.rstrip('/')}/desk/signin/{token}"


async def consume_signin(token: str) -> Agent | None:
    """The agent a sign-in link token belongs to; the token is spent (only one caller wins)."""
    if not token or len(token) > 200:
        return None
    row = await KeyValue.get_or_none(scope=SIGNIN_SCOPE, key=hash_token(token))
    if row is None:
        return None
    deleted = await KeyValue.filter(id=row.id).delete()
    value: dict[str, Any] = row.value or {}
    if deleted != 1 or float(value.get("expires", 0)) < time.time():
        return None
    return await Agent.get_or_none(id=int(value.get("agent_id", 0)), is_active=True)


async def first_agent_link(settings: Settings) -> str | None:
    """On first start (no agents at all): create the first agent and return its one-time sign-in URL.

    Needs the ORM to be connected. Returns None when an agent already exists.
    """
    if await Agent.all().count() > 0:
        return None
    try:
        agent = await Agent.create(
            name="Admin",
            email="admin@localhost",
            token_hash=hash_token(secrets.token_urlsafe(32)),
        )
    except IntegrityError:  # another instance created it first
        return None
    return await signin_link(settings, agent)


_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))
