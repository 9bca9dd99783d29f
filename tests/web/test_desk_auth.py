"""Desk sign-in: argon2 passwords, signed session cookies, CSRF origin checks, one-time links."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tortoise import connections

from handoff import db
from handoff.config import Settings
from handoff.models import Agent, KeyValue
from handoff.web import auth


@pytest.fixture
async def orm(tmp_path: Path):
    """A fresh migrated SQLite database with the ORM connected."""
    url = f"sqlite://{tmp_path / 'auth.db'}"
    await db.migrate(url)
    await db.connect(url)
    yield url
    await db.disconnect()


async def _agent(email: str = "ann@example.com", password: str | None = "correct horse battery") -> Agent:
    return await Agent.create(
        name="Ann",
        email=email,
        token_hash=auth.hash_token("tok-" + email),
        password_hash=auth.hash_password(password) if password else None,
    )


def test_passwords_are_argon2_and_verified() -> None:
    stored = auth.hash_password("s3cret-pass")
    assert stored.startswith("$argon2id$")
    assert auth.check_password(stored, "s3cret-pass")
    assert not auth.check_password(stored, "s3cret-pasS")
    assert not auth.check_password(None, "anything")
    assert not auth.check_password("not-a-hash", "anything")


def test_signing_key_comes_from_secret_or_process() -> None:
    a = auth.signing_key(Settings(secret_key="one"))
    assert a == auth.signing_key(Settings(secret_key="one"))
    assert a != auth.signing_key(Settings(secret_key="two"))
    assert len(auth.signing_key(Settings())) == 32


async def test_cookie_round_trip_and_forgeries(orm: str) -> None:
    settings = Settings(secret_key="k")
    agent = await _agent()
    value = auth.session_value(settings, agent)
    assert (await auth.agent_from_cookie(settings, value)).id == agent.id
    agent_id, expires, fingerprint, mac = value.split(".")
    other = await _agent("bob@example.com")
    forged = f"{other.id}.{expires}.{fingerprint}.{mac}"
    assert await auth.agent_from_cookie(settings, forged) is None
    assert await auth.agent_from_cookie(Settings(secret_key="other"), value) is None
    assert await auth.agent_from_cookie(settings, value, now=time.time() + auth.SESSION_TTL + 5) is None
    assert await auth.agent_from_cookie(settings, "garbage") is None
    assert await auth.agent_from_cookie(settings, None) is None


async def test_password_change_or_deactivation_ends_sessions(orm: str) -> None:
    settings = Settings(secret_key="k")
    agent = await _agent()
    value = auth.session_value(settings, agent)
    agent.password_hash = auth.hash_password("a brand new password")
    await agent.save()
    assert await auth.agent_from_cookie(settings, value) is None
    fresh = auth.session_value(settings, agent)
    agent.is_active = False
    await agent.save()
    assert await auth.agent_from_cookie(settings, fresh) is None


async def test_authenticate_by_password_and_token(orm: str) -> None:
    agent = await _agent()
    assert (await auth.authenticate("ann@example.com", "correct horse battery")).id == agent.id
    assert (await auth.authenticate(" ANN@example.com ", "correct horse battery")).id == agent.id
    assert await auth.authenticate("ann@example.com", "wrong") is None
    assert await auth.authenticate("nobody@example.com", "correct horse battery") is None
    assert (await auth.agent_from_token("tok-ann@example.com")).id == agent.id
    assert await auth.agent_from_token("tok-nobody") is None
    nopass = await _agent("np@example.com", password=None)
    assert await auth.authenticate(nopass.email, "") is None


async def test_signin_links_are_single_use_and_expire(orm: str) -> None:
    settings = Settings(public_url="https://desk.example.com")
    agent = await _agent()
    url = await auth.signin_link(settings, agent)
    assert url.startswith("https://desk.example.com/desk/signin/")
    token = url.rsplit("/", 1)[1]
    assert len(token) >= 43
    stored = await KeyValue.filter(scope=auth.SIGNIN_SCOPE).values_list("key", flat=True)
    assert token not in stored  # only a hash is kept
    assert (await auth.consume_signin(token)).id == agent.id
    assert await auth.consume_signin(token) is None
    expired = (await auth.signin_link(settings, agent, ttl=-1)).rsplit("/", 1)[1]
    assert await auth.consume_signin(expired) is None


async def test_first_agent_link_only_on_an_empty_desk(orm: str) -> None:
    settings = Settings(public_url="http://localhost:8080")
    url = await auth.first_agent_link(settings)
    assert url and url.startswith("http://localhost:8080/desk/signin/")
    agents = await Agent.all()
    assert len(agents) == 1 and agents[0].password_hash is None  # no fixed demo password anywhere
    assert await auth.first_agent_link(settings) is None
    assert (await auth.consume_signin(url.rsplit("/", 1)[1])).id == agents[0].id


# -- through the app: sign-in, CSRF, the API with the cookie, typing ------------------------

from typing import Any  # noqa: E402


def _origin(client: Any) -> dict[str, str]:
    return {"Origin": f"http://{client.host}:{client.port}"}


async def _password_agent(name: str = "Ann") -> Agent:
    from handoff.desk.auth import create_agent

    agent, _ = await create_agent(name, f"{name.lower()}@example.com")
    agent.password_hash = auth.hash_password("correct horse battery")
    await agent.save(update_fields=["password_hash"])
    return agent


async def test_login_sets_a_strict_httponly_cookie_that_the_api_accepts(client: Any) -> None:
    await _password_agent()
    resp = await client.post("/desk/login", json={"email": "ann@example.com", "password": "nope"}, headers=_origin(client))
    assert resp.status == 401
    assert (await client.get("/api/v1/tickets")).status == 401
    resp = await client.post(
        "/desk/login", json={"email": "ann@example.com", "password": "correct horse battery"}, headers=_origin(client)
    )
    assert resp.status == 200
    cookie = resp.headers["Set-Cookie"]
    assert auth.COOKIE in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert (await client.get("/desk/me")).status == 200
    assert (await client.get("/api/v1/tickets")).status == 200  # same-origin cookie auth on the API


async def test_cookie_requests_that_change_state_need_our_origin(client: Any) -> None:
    await _password_agent()
    resp = await client.post(
        "/desk/login", json={"email": "ann@example.com", "password": "correct horse battery"}, headers=_origin(client)
    )
    assert resp.status == 200
    evil = {"Origin": "https://evil.example"}
    assert (await client.post("/api/v1/conversations/1/takeover", headers=evil)).status == 403
    assert (await client.post("/api/v1/conversations/1/takeover")).status == 403  # no Origin, no Referer
    assert (await client.post("/api/v1/conversations/999/takeover", headers=_origin(client))).status == 404
    assert (await client.post("/desk/account", json={"name": "X"}, headers=evil)).status == 403
    resp = await client.get("/api/v1/stream", headers={**evil, "Upgrade": "websocket", "Connection": "Upgrade",
                                                       "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "x" * 22 + "=="})
    assert resp.status == 403  # no cross-site WebSocket hijacking
    login_elsewhere = await client.post("/desk/login", json={"token": "x"}, headers=evil)
    assert login_elsewhere.status == 403


async def test_api_token_signs_in_and_logout_clears(client: Any) -> None:
    from handoff.desk.auth import create_agent

    _agent_row, token = await create_agent("Tom", "tom@example.com")
    resp = await client.post("/desk/login", json={"token": token}, headers=_origin(client))
    assert resp.status == 200 and (await resp.json())["agent"]["name"] == "Tom"
    assert (await client.get("/desk/me")).status == 200
    assert (await client.post("/desk/logout", headers=_origin(client))).status == 200
    assert (await client.get("/desk/me")).status == 401


async def test_one_time_link_page_and_password_setup(client: Any) -> None:
    from handoff.runtime import RUNTIME

    settings = client.app[RUNTIME].settings
    url = await auth.first_agent_link(settings)
    path = url.split("testserver", 1)[1]
    page = await client.get(path)
    assert page.status == 200 and "<form method=\"post\"" in await page.text()
    assert (await client.get("/desk/me")).status == 401  # a GET never spends the link
    resp = await client.post(path, headers=_origin(client), allow_redirects=False)
    assert resp.status == 303 and resp.headers["Location"].startswith("/desk")
    assert (await client.post(path, headers=_origin(client), allow_redirects=False)).status == 410
    me = await (await client.get("/desk/me")).json()
    assert me["agent"]["has_password"] is False
    resp = await client.post("/desk/account", json={"email": "lead@example.com", "password": "short"},
                             headers=_origin(client))
    assert resp.status == 400
    resp = await client.post("/desk/account", json={"email": "lead@example.com", "password": "a long new password"},
                             headers=_origin(client))
    assert resp.status == 200 and (await resp.json())["agent"]["has_password"]
    assert await auth.authenticate("lead@example.com", "a long new password") is not None


async def test_pages_are_served_with_a_strict_csp(client: Any) -> None:
    for path in ("/", "/desk"):
        resp = await client.get(path)
        assert resp.status == 200
        assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    index = await (await client.get("/")).text()
    assert index.count("<script") == 1 and 'src="/widget.js"' in index
    assert (await client.get("/widget.js")).status == 200
    assert (await client.get("/static/desk/main.js")).status == 200


async def _signed_in_as_ann(client: Any) -> None:
    await _password_agent("Ann")
    resp = await client.post(
        "/desk/login", json={"email": "ann@example.com", "password": "correct horse battery"}, headers=_origin(client)
    )
    assert resp.status == 200


@contextlib.asynccontextmanager
async def _agent_updates_fail(database_url: str) -> AsyncIterator[None]:
    """While open, the database refuses to update agents with an error that is not a constraint
    violation: SQLite is made read-only, PostgreSQL raises from a trigger."""
    conn = connections.get("default")
    if database_url.startswith("sqlite"):
        await conn.execute_script("PRAGMA query_only = ON")
        undo = "PRAGMA query_only = OFF"
    else:
        await conn.execute_script(
            "CREATE FUNCTION refuse_agent_update() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'no space left on device'; END $$; "
            "CREATE TRIGGER refuse_agent_update BEFORE UPDATE ON agent "
            "FOR EACH ROW EXECUTE FUNCTION refuse_agent_update();")
        undo = "DROP TRIGGER refuse_agent_update ON agent; DROP FUNCTION refuse_agent_update();"
    try:
        yield
    finally:
        await conn.execute_script(undo)


async def test_an_email_another_agent_holds_is_a_409(client: Any) -> None:
    await _password_agent("Bob")
    await _signed_in_as_ann(client)
    resp = await client.post("/desk/account", json={"email": "bob@example.com"}, headers=_origin(client))
    assert resp.status == 409
    assert await resp.json() == {"error": "that email is already used by another agent"}
    assert await Agent.filter(email="ann@example.com").count() == 1


async def test_a_database_failure_on_account_update_is_a_500_not_a_conflict(client: Any, settings: Settings) -> None:
    await _signed_in_as_ann(client)
    async with _agent_updates_fail(settings.database_url):
        resp = await client.post("/desk/account", json={"name": "Annie"}, headers=_origin(client))
    assert resp.status == 500
    assert await resp.json() == {"error": "internal server error"}
    assert (await Agent.get(email="ann@example.com")).name == "Ann"
