"""Outbound email: one OutboundMessage -> one RFC 5322 reply sent with aiosmtplib.

Each reply carries a Message-ID we generate (returned to the core as the provider id, so a
customer's answer to it threads back), In-Reply-To/References from the conversation's
thread (RFC 5322 §3.6.4), "Re: <original subject>" (every reply/forward prefix of any language
removed first, `subjects`), a text/plain and an escaped text/html alternative, and the files the
message carries. It is addressed as a "reply all" to the thread's latest message: To the
customer who wrote it (`thread["to"]`, else the conversation's contact), Cc the other
participants (`thread["cc"]`), never our own address. Bot replies and notices are marked
`Auto-Submitted: auto-replied` (RFC 3834 §5) so other responders do not answer them.
Every header value is stripped of CR/LF: no header injection from names or subjects.

TLS is `starttls` (port 587; a server that does not offer STARTTLS is refused, nothing goes out
in clear text), `tls` (implicit, port 465) or `none`; certificates are verified against the
system CAs plus `ca_file`, and credentials are sent only once TLS is up.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import re
import secrets
from dataclasses import dataclass, field
from email.headerregistry import Address as MailAddress
from email.message import EmailMessage
from email.utils import formataddr, formatdate, parseaddr

import aiosmtplib

from handoff.channels.base import DeliveryError, file_links
from handoff.channels.email.subjects import reply_subject
from handoff.channels.email.tls import client_context, untrusted
from handoff.schema import Address, OutboundMessage

TLS_MODES = ("starttls", "tls", "none")
_MAX_REFERENCES = 20


@dataclass(frozen=True)
class SmtpConfig:
    """Where and how to send: server, credentials, TLS mode and our From address."""

    host: str
    port: int
    user: str
    password: str
    tls: str
    from_address: str
    from_name: str = ""
    timeout: float = 30.0
    ca_file: str = ""  # PEM CA(s) trusted besides the system ones
    # keys our Message-IDs: installations sharing a domain (staging, production) never collide
    id_secret: str = field(default_factory=lambda: secrets.token_hex(16))

    @classmethod
    def parse_from(cls, value: str) -> tuple[str, str]:
        """(display name, address) of a HANDOFF_EMAIL_FROM value like "Acme Support <help@acme.test>"."""
        name, addr = parseaddr(value)
        return clean(name), clean(addr)


def clean(value: object) -> str:
    """A header-safe value: CR, LF and other control characters become spaces."""
    return re.sub(r"[\x00-\x1f\x7f]+", " ", str(value or "")).strip()


def recipients(config: SmtpConfig, address: Address) -> tuple[str, list[str]]:
    """(To, Cc) of a reply: the thread's latest customer, and its other participants (ours left out)."""
    to = clean(address.thread.get("to") or address.contact_id).lower()
    own = {config.from_address.lower(), to}
    cc = [c for c in (clean(x).lower() for x in address.thread.get("cc") or []) if c and "@" in c and c not in own]
    return to, list(dict.fromkeys(cc))


def references(thread: dict) -> tuple[str | None, list[str]]:
    """(In-Reply-To, References) for a reply to the thread's latest customer message:
    its References followed by its Message-ID (RFC 5322 §3.6.4)."""
    message_id = thread.get("message_id")
    parent = thread.get("references")
    if parent is None:
        parent = list(reversed(thread.get("reply_to") or []))
    chain = [clean(i) for i in parent]
    if message_id:
        chain.append(clean(message_id))
    chain = [i for i in dict.fromkeys(chain) if i]
    if len(chain) > _MAX_REFERENCES:  # keep the root and the newest ones
        chain = chain[:1] + chain[-(_MAX_REFERENCES - 1):]
    return (clean(message_id) or None), chain


def _html_body(text: str) -> str:
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    body = "\n".join("<p>" + html.escape(p).replace("\n", "<br>\n") + "</p>" for p in paragraphs)
    return f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head><body>\n{body}\n</body></html>\n'


def _sender_name(config: SmtpConfig, message: OutboundMessage) -> str:
    if message.kind == "agent" and message.author_name:
        agent = clean(message.author_name)
        return f"{agent} ({config.from_name})" if config.from_name else agent
    return config.from_name


def message_id(config: SmtpConfig, message: OutboundMessage) -> str:
    """Our Message-ID for an outbound message: the same on every retry of that message, so
    a retry after a lost SMTP answer is a duplicate the recipient's mailbox can collapse."""
    domain = config.from_address.rpartition("@")[2] or "localhost"
    digest = hmac.new(config.id_secret.encode(), f"{message.conversation_id}:{message.id}".encode(), hashlib.sha256)
    return f"<handoff.{message.conversation_id}.{message.id}.{digest.hexdigest()[:20]}@{domain}>"


def build_message(config: SmtpConfig, address: Address, message: OutboundMessage) -> EmailMessage:
    """The complete reply, Message-ID included."""
    msg = EmailMessage()
    msg["Message-ID"] = message_id(config, message)
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["From"] = formataddr((_sender_name(config, message), config.from_address))
    to, cc = recipients(config, address)
    msg["To"] = str(MailAddress(addr_spec=to))
    if cc:
        msg["Cc"] = ", ".join(str(MailAddress(addr_spec=c)) for c in cc)
    msg["Subject"] = reply_subject(clean(address.thread.get("subject", "")))
    in_reply_to, chain = references(address.thread)
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if chain:
        msg["References"] = " ".join(chain)
    if message.kind != "agent":
        msg["Auto-Submitted"] = "auto-replied"
        msg["X-Auto-Response-Suppress"] = "All"  # Exchange: no out-of-office replies to the bot

    text = message.text
    links = file_links(a for a in message.attachments if a.data is None)
    if links:  # files we only have a link to travel as text
        text += "\n\n" + links
    msg.set_content(text)
    msg.add_alternative(_html_body(text), subtype="html")
    for attachment in message.attachments:
        if attachment.data is None:
            continue
        maintype, _, subtype = attachment.content_type.partition("/")
        msg.add_attachment(
            attachment.data,
            maintype=maintype or "application",
            subtype=subtype or "octet-stream",
            filename=clean(attachment.filename) or "attachment",
        )
    return msg


def _error_for(exc: Exception) -> DeliveryError:
    bad_cert = untrusted(exc)
    if bad_cert is not None:
        return DeliveryError(f"SMTP server certificate not trusted: {bad_cert.verify_message} (a private CA goes "
                             "in HANDOFF_EMAIL_CA_FILE)", retryable=True, code="tls")
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused) and exc.recipients:
        code = exc.recipients[0].code
        return DeliveryError(f"recipient refused: {exc.recipients[0].message}", retryable=400 <= code < 500, code=str(code))
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return DeliveryError(f"SMTP {exc.code}: {exc.message}", retryable=not 500 <= exc.code < 600, code=str(exc.code))
    return DeliveryError(f"SMTP connection failed: {exc!r}", retryable=True)


async def send_message(config: SmtpConfig, msg: EmailMessage) -> None:
    """Hand the message to the SMTP server; DeliveryError says whether a retry can help."""
    try:
        await aiosmtplib.send(
            msg,
            sender=config.from_address,
            hostname=config.host,
            port=config.port,
            username=config.user or None,
            password=config.password or None,
            use_tls=config.tls == "tls",
            start_tls=config.tls == "starttls",  # True: no STARTTLS offered -> SMTPException, nothing sent
            tls_context=client_context(config.ca_file) if config.tls != "none" else None,
            timeout=config.timeout,
        )
    except (aiosmtplib.SMTPException, OSError) as exc:
        raise _error_for(exc) from exc
