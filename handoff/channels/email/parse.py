"""One raw RFC 5322 message -> at most one InboundMessage.

Follows RFC 5322 (headers, Message-ID/In-Reply-To/References threading, §3.6.4), RFC 2045-2047
(MIME, charsets, encoded words: the standard library's `email` package with `policy.default`),
RFC 3834 (Auto-Submitted) and RFC 3464 (delivery status notifications). Auto-replies,
bounces, read receipts and bulk mail give `[]`: they never reach the bot, so they never loop.

The InboundMessage carries:
- `contact_id`: the sender's address, lowercased; `provider_id`: the Message-ID;
- `conversation_key`: the thread root (first References id, else In-Reply-To, else the
  message's own Message-ID), identical for every message of one email thread;
- `thread`: {"reply_to": [In-Reply-To, *References newest first], "references": the
  References (oldest first), "subject", "message_id"} — the gateway matches `reply_to`
  against the provider ids it stored for this channel and keeps the rest on the
  conversation, where `smtp` finds it to thread our reply;
- `text`: what the sender just wrote (quotes and signature cut); `raw` keeps the full text,
  the nh3-sanitized HTML and the headers that matter.

One broken MIME part never costs the rest of the email: a text part whose bytes do not decode
in its declared charset (mislabeled, or a charset Python does not know) is read as UTF-8, else
in the charset charset-normalizer finds; quoted-printable and base64 are decoded as leniently
as the stdlib does (its `policy.default` records defects instead of raising); an attachment
whose base64 cannot be decoded at all, or a nested multipart without a boundary, is left out
(logged, and counted in `handoff_webhook_items_skipped_total{channel="email"}`) instead of
being stored as a corrupt file; everything else the email carries is kept.
"""

from __future__ import annotations

import email
import email.utils
import hashlib
import logging
import re
from email import errors, policy
from email.message import EmailMessage, Message

import charset_normalizer

from handoff import metrics
from handoff.channels.email.text import html_to_text, latest_reply, sanitize_html
from handoff.schema import Attachment, InboundMessage

log = logging.getLogger(__name__)

CHANNEL = "email"
_ID = re.compile(r"<[^<>\s]+>")
_MAX_ID = 250  # Message.provider_id is 255 characters
_AUTOMATED_SENDERS = {"mailer-daemon", "postmaster"}
_BULK_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
_REPLY_PREFIX = re.compile(r"^\s*(?:(?:re|fwd?|aw|sv|wg)\s*:\s*)+", re.IGNORECASE)
_KEPT_HEADERS = ("from", "to", "cc", "reply-to", "subject", "date", "message-id", "in-reply-to", "references")


def normalize_id(value: str) -> str:
    """A Message-ID in its stored form: "<left@right>", hashed when longer than a provider id."""
    value = value.strip()
    if not value.startswith("<"):
        value = f"<{value.strip('<>')}>"
    if len(value) > _MAX_ID:
        value = "<" + hashlib.sha256(value.encode()).hexdigest() + "@long-id.invalid>"
    return value


def message_ids(header: str | None) -> list[str]:
    """Every Message-ID in an In-Reply-To or References value, in order."""
    if not header:
        return []
    return [normalize_id(m) for m in _ID.findall(str(header))]


def is_automated(msg: Message) -> str | None:
    """Why this message was sent by a machine (auto-reply, bounce, bulk), or None for a person."""
    auto = str(msg.get("Auto-Submitted", "")).strip().lower()
    if auto and not auto.startswith("no"):
        return f"auto-submitted: {auto}"
    precedence = str(msg.get("Precedence", "")).strip().lower()
    if precedence in _BULK_PRECEDENCE:
        return f"precedence: {precedence}"
    for header in ("X-Autoreply", "X-Autorespond", "X-Auto-Reply"):
        if msg.get(header) is not None:
            return header.lower()
    if msg.get_content_type() == "multipart/report":
        return "report: " + str(msg.get_param("report-type", "unknown"))
    if str(msg.get("Return-Path", "")).strip() == "<>":
        return "null return path"
    local = _sender(msg)[1].split("@", 1)[0]
    if local in _AUTOMATED_SENDERS:
        return f"sender {local}"
    return None


def _sender(msg: Message) -> tuple[str, str]:
    try:
        addresses = msg["From"].addresses if msg["From"] is not None else ()
    except (AttributeError, IndexError, TypeError, ValueError):
        addresses = ()
    if addresses:
        return addresses[0].display_name or "", addresses[0].addr_spec.lower()
    name, addr = email.utils.parseaddr(str(msg.get("From", "")))
    return name, addr.lower()


def _content(part: EmailMessage) -> str:
    """A text part's content: in its declared charset when its bytes decode in it, else in
    UTF-8; when neither does, in the first of them that decodes some non-ASCII text right
    (a damaged byte here and there: U+FFFD marks it), else in the charset charset-normalizer
    detects."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    charsets = list(dict.fromkeys(filter(None, (part.get_content_charset(), "utf-8"))))
    for charset in charsets:
        try:
            return payload.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    for charset in charsets:
        try:
            text = payload.decode(charset, errors="replace")
        except LookupError:
            continue
        if any(c > "\x7f" and c != "\ufffd" for c in text):
            return text
    log.info("email: a %s part does not decode as its charset %r; detecting it",
             part.get_content_type(), part.get_content_charset())
    return _detected(payload)


def _detected(payload: bytes) -> str:
    matches = charset_normalizer.from_bytes(payload)
    best = matches.best()
    if best is None:
        return payload.decode("utf-8", errors="replace")
    # Short Western text fits several single-byte charsets equally well; mislabeled mail is
    # most often Windows-1252 (what WHATWG's Encoding Standard reads "latin1"/"ascii" labels as).
    for match in matches:
        if match.encoding == "cp1252" and match.chaos <= best.chaos:
            return str(match)
    return str(best)


def _bodies(msg: EmailMessage) -> tuple[str, str | None]:
    """(plain text, HTML or None) of the message's body."""
    html_part = msg.get_body(preferencelist=("html",))
    html = _content(html_part) if html_part is not None else None
    plain_part = msg.get_body(preferencelist=("plain",))
    if plain_part is not None:
        return _content(plain_part), html
    return (html_to_text(html) if html else ""), html


def _attachments(msg: EmailMessage) -> tuple[Attachment, ...]:
    found = []
    for part in msg.iter_attachments():
        if part.get_content_maintype() == "multipart":
            _skip(msg, part, "a multipart part without a boundary")  # parsed as one opaque blob
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue  # message/rfc822 parts and the like: not a file
        if any(isinstance(d, errors.InvalidBase64LengthDefect) for d in part.defects):
            _skip(msg, part, "base64 that cannot be decoded")  # the stdlib hands back the encoded text
            continue
        found.append(
            Attachment(
                content_type=part.get_content_type(),
                filename=part.get_filename(),
                size=len(data),
                data=data,
            )
        )
    return tuple(found)


def _skip(msg: Message, part: Message, why: str) -> None:
    log.warning("email: leaving out part %s (%r) of %s: %s", part.get_content_type(), part.get_filename(),
                msg.get("Message-ID"), why)
    metrics.WEBHOOK_ITEMS_SKIPPED.labels(CHANNEL, "unreadable_part").inc()


def _timestamp(msg: Message) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(str(msg.get("Date", "")))
    except (TypeError, ValueError, IndexError):
        return None
    return when.timestamp() if when.tzinfo else None


def _clean_header(value: object) -> str:
    return re.sub(r"\s+", " ", str(value or "")).strip()


def parse_email(raw: bytes, *, own_addresses: frozenset[str] = frozenset()) -> list[InboundMessage]:
    """The customer message in one raw email; [] for automated mail and our own messages."""
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    reason = is_automated(msg)
    if reason:
        log.info("email: dropping automated message %s (%s)", msg.get("Message-ID"), reason)
        return []
    name, address = _sender(msg)
    if not address or "@" not in address:
        log.info("email: dropping message without a sender address %s", msg.get("Message-ID"))
        return []
    if address in own_addresses:
        return []  # our own mail looping back (e.g. BCC to the support mailbox)

    own_ids = message_ids(msg.get("Message-ID"))
    message_id = own_ids[0] if own_ids else "<sha256-" + hashlib.sha256(raw).hexdigest() + "@handoff.invalid>"
    in_reply_to = message_ids(msg.get("In-Reply-To"))
    references = message_ids(msg.get("References"))
    reply_to = list(dict.fromkeys(in_reply_to + references[::-1]))
    root = references[0] if references else in_reply_to[0] if in_reply_to else message_id
    subject = _clean_header(msg.get("Subject"))

    full_text, html = _bodies(msg)
    text = latest_reply(full_text) if full_text.strip() else ""
    attachments = _attachments(msg)
    if not text and not attachments:
        text = _REPLY_PREFIX.sub("", subject)  # "Subject: Refund for order 42" and an empty body
    return [
        InboundMessage(
            channel=CHANNEL,
            provider_id=message_id,
            contact_id=address,
            contact_name=name or None,
            contact_email=address,
            conversation_key=root,
            text=text,
            attachments=attachments,
            thread={
                "reply_to": reply_to,
                "references": references or in_reply_to[:1],
                "subject": subject,
                "message_id": message_id,
            },
            sent_at=_timestamp(msg),
            raw={
                "headers": {h: _clean_header(v) for h in _KEPT_HEADERS if (v := msg.get(h)) is not None},
                "text": full_text,
                "html": sanitize_html(html) if html else None,
            },
        )
    ]
