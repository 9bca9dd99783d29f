"""A real SMTP server (aiosmtpd) on loopback that keeps every message it accepts.

It runs on the test's own event loop (no thread), accepts AUTH PLAIN/LOGIN without TLS for
one test account, and can be told to refuse recipients with a given SMTP reply — enough to
drive aiosmtplib through success, temporary (4xx) and permanent (5xx) failures.

Pytest fixture: `smtp_sink`.
"""

from __future__ import annotations

import asyncio
import email
from dataclasses import dataclass, field
from email import policy
from email.message import EmailMessage

import pytest
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

USER = "mailer"
PASSWORD = "smtp-test-pass"


@dataclass
class Received:
    """One accepted message: envelope and parsed content."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    message: EmailMessage = field(init=False)

    def __post_init__(self) -> None:
        self.message = email.message_from_bytes(self.data, policy=policy.default)  # type: ignore[assignment]


class SmtpSink:
    """Collects messages; `refuse[address] = "550 5.1.1 no such user"` rejects a recipient."""

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.messages: list[Received] = []
        self.refuse: dict[str, str] = {}
        self.logins: list[str] = []
        self._arrived = asyncio.Condition()
        self._server: asyncio.base_events.Server | None = None

    # aiosmtpd handler hooks
    async def handle_RCPT(self, server, session: Session, envelope: Envelope, address: str, rcpt_options) -> str:
        if address.lower() in self.refuse:
            return self.refuse[address.lower()]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session: Session, envelope: Envelope) -> str:
        data = envelope.original_content or envelope.content
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos), bytes(data)))
        async with self._arrived:
            self._arrived.notify_all()
        return "250 Message accepted"

    def _authenticate(self, server, session, envelope, mechanism, auth_data) -> AuthResult:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login.decode() == USER and auth_data.password.decode() == PASSWORD
        if ok:
            self.logins.append(USER)
        return AuthResult(success=ok, handled=False)

    async def start(self) -> None:
        """Listen on a free loopback port."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: SMTP(self, hostname="sink.test", authenticator=self._authenticate, auth_require_tls=False, auth_required=False),
            self.host, 0,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """Wait until at least `count` messages arrived."""
        async with self._arrived:
            await asyncio.wait_for(self._arrived.wait_for(lambda: len(self.messages) >= count), timeout)
        return self.messages


@pytest.fixture
async def smtp_sink():
    """A running SMTP sink for one test."""
    sink = SmtpSink()
    await sink.start()
    try:
        yield sink
    finally:
        await sink.stop()
