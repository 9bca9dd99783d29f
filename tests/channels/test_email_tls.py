"""The email channel's TLS paths against real servers: a Dovecot that only speaks implicit
TLS (993-style), an aiosmtpd that requires STARTTLS (587) and one speaking implicit TLS (465),
all with a certificate from a throw-away CA. Trusted through HANDOFF_EMAIL_CA_FILE, mail flows
and credentials travel only encrypted; without it, the channel refuses the server."""

from __future__ import annotations

import logging

import pytest

from handoff.channels.base import ChannelConfigError, DeliveryError
from handoff.channels.email import EmailChannel
from handoff.config import Settings
from handoff.schema import Address, InboundMessage
from tests.channels.test_email import FULL, all_seen, crlf, fixture, imap_channel, outbound, smtp_channel
from tests.fakes.dovecot import Dovecot, dovecot_tls, dovecot_tls_server, wait_for  # noqa: F401
from tests.fakes.smtp_sink import USER, SmtpSink, smtp_sink, smtp_tls_sink  # noqa: F401
from tests.fakes.tls import TestCA, test_ca  # noqa: F401

ANN = Address("email", "ann@example.com", "<k@x>", {"subject": "Hi", "message_id": "<m1@x>"})


def test_ca_file_comes_from_the_environment(test_ca: TestCA) -> None:  # noqa: F811
    env = {"IMAP_HOST": "127.0.0.1", "IMAP_USER": "support", "IMAP_PASSWORD": "pw", "SMTP_HOST": "127.0.0.1",
           "HANDOFF_EMAIL_FROM": "support@acme.test", "HANDOFF_EMAIL_CA_FILE": str(test_ca.ca_file)}
    channel = EmailChannel.from_settings(Settings.from_env(env))
    assert channel is not None
    assert channel.imap.ca_file == channel.smtp.ca_file == str(test_ca.ca_file)
    assert channel.imap.tls and channel.smtp.tls == "starttls"  # TLS unless told otherwise
    with pytest.raises(ChannelConfigError, match="HANDOFF_EMAIL_CA_FILE"):
        EmailChannel.from_settings(Settings(**FULL, email_ca_file=str(test_ca.ca_file) + ".missing"))


# -- SMTP -----------------------------------------------------------------------------------

def tls_channel(sink: SmtpSink, ca_file: str = "") -> EmailChannel:
    return smtp_channel(sink, smtp_tls=sink.mode, email_ca_file=ca_file)


async def test_smtp_sends_over_tls_and_logs_in_only_encrypted(
    smtp_tls_sink: SmtpSink, test_ca: TestCA,  # noqa: F811
) -> None:
    sink = smtp_tls_sink
    channel = tls_channel(sink, ca_file=str(test_ca.ca_file))
    provider_id = await channel.send(ANN, outbound("Over TLS"))
    [got] = await sink.wait_for(1)
    assert got.message["Message-ID"] == provider_id and got.rcpt_tos == ["ann@example.com"]
    assert sink.logins == [USER] and sink.logins_over_tls == [True]


async def test_smtp_refuses_an_untrusted_certificate(smtp_tls_sink: SmtpSink) -> None:  # noqa: F811
    sink = smtp_tls_sink
    channel = tls_channel(sink)  # no CA: the system store does not know the test CA
    with pytest.raises(DeliveryError) as failure:
        await channel.send(ANN, outbound())
    assert failure.value.retryable and failure.value.code == "tls"
    assert "certificate not trusted" in str(failure.value) and "HANDOFF_EMAIL_CA_FILE" in str(failure.value)
    assert sink.messages == [] and sink.logins == []


async def test_smtp_starttls_is_required_not_optional(smtp_sink: SmtpSink, test_ca: TestCA) -> None:  # noqa: F811
    """A server (or a man in the middle) that does not offer STARTTLS gets nothing in clear text."""
    channel = smtp_channel(smtp_sink, smtp_tls="starttls", email_ca_file=str(test_ca.ca_file))
    with pytest.raises(DeliveryError, match="STARTTLS") as failure:
        await channel.send(ANN, outbound())
    assert failure.value.retryable
    assert smtp_sink.messages == [] and smtp_sink.logins == []


# -- IMAP -----------------------------------------------------------------------------------

async def test_imap_over_tls_delivers_and_marks_seen(dovecot_tls: Dovecot, test_ca: TestCA) -> None:  # noqa: F811
    await dovecot_tls.append(crlf(fixture("question__plain.eml")))
    delivered: list[str] = []

    async def deliver(item: InboundMessage) -> None:
        delivered.append(item.provider_id)

    channel = imap_channel(dovecot_tls, ca_file=str(test_ca.ca_file))
    await channel.start(deliver)
    try:
        await wait_for(lambda: delivered == ["<CAJx9f0Q1-plain@mail.example.com>"])
        await wait_for(lambda: all_seen(dovecot_tls, 1))
    finally:
        await channel.close()


async def test_imap_refuses_an_untrusted_certificate(
    dovecot_tls: Dovecot, caplog: pytest.LogCaptureFixture,  # noqa: F811
) -> None:
    await dovecot_tls.append(crlf(fixture("question__plain.eml")))
    delivered: list[str] = []

    async def deliver(item: InboundMessage) -> None:
        delivered.append(item.provider_id)

    def refusals() -> int:
        return sum("untrusted TLS certificate" in r.getMessage() for r in caplog.records)

    channel = imap_channel(dovecot_tls)  # no CA
    caplog.set_level(logging.WARNING, logger="handoff.channels.email.imap")
    await channel.start(deliver)
    try:
        await wait_for(lambda: refusals() >= 2)  # refused, and refused again on reconnect
        assert not channel.loop.connected.is_set() and channel.loop.cycles == 0
    finally:
        await channel.close()
    assert delivered == []
    assert not await all_seen(dovecot_tls, 1)
    assert "HANDOFF_EMAIL_CA_FILE" in caplog.text
