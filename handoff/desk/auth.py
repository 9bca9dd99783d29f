"""Agent API tokens: shown once at creation, stored only as a SHA-256 hash. (The desk's
session cookie is `handoff.web.auth`; `handoff.desk.api` accepts either.)"""

from __future__ import annotations

import hashlib
import secrets

from handoff.models import Agent

TOKEN_PREFIX = "hnd_"


def hash_token(token: str) -> str:
    """The stored form of a token (tokens are random, so a plain SHA-256 is enough)."""
    return hashlib.sha256(token.encode()).hexdigest()


async def create_agent(name: str, email: str) -> tuple[Agent, str]:
    """A new agent and its API token (the only time the token is visible)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    agent = await Agent.create(name=name.strip(), email=email.strip().lower(), token_hash=hash_token(token))
    return agent, token


async def agent_for_token(token: str) -> Agent | None:
    """The active agent holding this token, if any."""
    if not token:
        return None
    return await Agent.get_or_none(token_hash=hash_token(token), is_active=True)
