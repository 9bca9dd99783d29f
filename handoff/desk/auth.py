"""Agent API tokens: shown once at creation, stored only as a SHA-256 hash. (The desk's
session cookie is `handoff.web.auth`; `handoff.desk.api` accepts either.)

A token's agent is remembered for `TOKEN_TTL` seconds after it was read (cachetools' TTLCache):
a desk sends many requests, and one read per request was a statement on every one of them
(32 agents taking over at once queued 32 reads ahead of the winner's transaction). A token whose
agent is deactivated in the database stops working within that time.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from cachetools import TTLCache

from handoff.models import Agent

TOKEN_PREFIX = "hnd_"
TOKEN_TTL = 5.0  # seconds

_clock = time.monotonic  # the cache's (tests move it on)
_agents: TTLCache[str, Agent] = TTLCache(maxsize=4096, ttl=TOKEN_TTL, timer=lambda: _clock())


def hash_token(token: str) -> str:
    """The stored form of a token (tokens are random, so a plain SHA-256 is enough)."""
    return hashlib.sha256(token.encode()).hexdigest()


async def create_agent(name: str, email: str) -> tuple[Agent, str]:
    """A new agent and its API token (the only time the token is visible)."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    agent = await Agent.create(name=name.strip(), email=email.strip().lower(), token_hash=hash_token(token))
    return agent, token


async def agent_for_token(token: str) -> Agent | None:
    """The active agent holding this token, if any (as read up to `TOKEN_TTL` seconds ago)."""
    if not token:
        return None
    token_hash = hash_token(token)
    agent = _agents.get(token_hash)
    if agent is None:
        agent = await Agent.get_or_none(token_hash=token_hash, is_active=True)
        if agent is not None:
            _agents[token_hash] = agent
    return agent
