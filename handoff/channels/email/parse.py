"""One raw RFC 5322 message -> at most one InboundMessage.

Follows RFC 5322 (headers, Reply-To §3.6.2, Message-ID/In-Reply-To/References threading §3.6.4),
RFC 2045-2047 (MIME, charsets, encoded words: the standard library's `email` package with
`policy.default`), RFC 2392 (`cid:` inline parts), RFC 3834 (Auto-Submitted) and RFC 3464/6522
(delivery reports).

The InboundMessage carries:
- `contact_id`: the customer's address, lowercased (`senders.customer`: the single Reply-To
  address when it differs from From, else From); `provider_id`: the Message-ID;
- `conversation_key`: the thread root (first References id, else In-Reply-To, else the
  message's own Message-ID), identical for every message of one email thread;
- `thread`: {"reply_to": [In-Reply-To, *References newest first], "references": the
  References (oldest first), "subject", "message_id", "to": the customer, "cc": the other
  participants} — the gateway matches `reply_to` against the provider ids it stored for this
  channel and keeps the rest on the conversation, where `smtp` finds it to address and thread
  our reply as a "reply all" would;
- `automated`: mail a machine sent (auto-replies, bounces, bulk; `senders.automated`) is kept
  and shown but never answered; its `thread` holds only `reply_to` (a bounce names the message
  that bounced, from its returned headers) so it never readdresses the conversation;
- `text`: what the sender just wrote (quotes and signature cut, forwarded content kept);
  `raw` keeps the full text, the nh3-sanitized HTML and the headers that matter;
- `attachments`: every file with its bytes — attachments, inline `cid:` images, attached
  emails (`message/rfc822`, as .eml) — which the channel saves into the media store.

Text is decoded as the writing client meant it (`charsets`: the Windows/WHATWG superset of the
declared charset), else as UTF-8, else in the charset charset-normalizer detects. One broken
MIME part never costs the rest of the email: an attachment whose base64 cannot be decoded at all,
or a nested multipart without a boundary, is left out (logged, and counted in
`handoff_webhook_items_skipped_total{channel="email"}`); everything else is kept.
"""

from __future__ import annotations

import email
import email.utils
import hashlib
import logging
import re
import mimetypes
from collections.abc import Iterator
from email import errors, policy
from email.message import EmailMessage, Message

import charset_normalizer

from handoff import metrics
from handoff.channels.email import charsets, senders
from handoff.channels.email.subjects import is_forward, strip_prefixes
from handoff.channels.email.text import html_to_text, latest_reply, sanitize_html
from handoff.schema import Attachment, InboundMessage

log = logging.getLogger(__name__)

CHANNEL = "email"
_ID = re.compile(r"<[^<>\s]+>")
_MAX_ID = 250  # Message.provider_id is 255 characters
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


def _content(part: EmailMessage) -> str:
    """A text part's content: in its declared charset (or that charset's superset) when its
    bytes decode in it, else in UTF-8; when neither does, in the first of them that decodes
    some non-ASCII text right (a damaged byte here and there: U+FFFD marks it), else in the
    charset charset-normalizer detects."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return ""
    declared = part.get_content_charset()
    for label in dict.fromkeys(filter(None, (declared, "utf-8"))):
        text = charsets.decode(payload, label)
        if text is not None:
            return text
    for label in dict.fromkeys(filter(None, (declared, "utf-8"))):
        try:
            text = payload.decode(label, errors="replace")
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


def _bodies(msg: EmailMessage) -> tuple[str, str | None, set[int]]:
    """(plain text, HTML or None, ids of the parts read as the body) of the message."""
    html_part = msg.get_body(preferencelist=("html",))
    html = _content(html_part) if html_part is not None else None
    plain_part = msg.get_body(preferencelist=("plain",))
    used = {id(p) for p in (html_part, plain_part) if p is not None}
    if plain_part is not None:
        return _content(plain_part), html, used
    return (html_to_text(html) if html else ""), html, used


def _leaves(part: Message, body: set[int]) -> Iterator[Message]:
    """Every part that is a file, depth first: not the body's text parts, not the other
    renderings of a multipart/alternative, not the inside of an attached email."""
    if id(part) in body:
        return
    if part.is_multipart() and part.get_content_maintype() == "multipart":
        alternative = part.get_content_type() == "multipart/alternative"
        for child in part.iter_parts():  # type: ignore[attr-defined]
            if alternative and child.get_content_maintype() == "text":
                continue  # another rendering of the body (text/enriched, a second text/html)
            yield from _leaves(child, body)
        return
    yield part


def _attachments(msg: EmailMessage, body: set[int]) -> tuple[Attachment, ...]:
    found = []
    if not msg.is_multipart():
        return ()
    for number, part in enumerate(_leaves(msg, body), 1):
        if part.get_content_maintype() == "multipart":
            _skip(msg, part, "a multipart part without a boundary")  # parsed as one opaque blob
            continue
        if part.get_content_maintype() == "message" and part.get_content_type() != "message/rfc822":
            continue  # message/delivery-status and the like: a report's machine-readable part
        if part.get_content_type() == "message/rfc822":
            inner = part.get_payload()
            if not isinstance(inner, list) or not inner:
                continue
            data = inner[0].as_bytes(policy=policy.default)
            subject = str(inner[0].get("Subject", "")).strip() or "message"
            found.append(Attachment("message/rfc822", filename=part.get_filename() or f"{subject}.eml",
                                    size=len(data), data=data))
            continue
        data = part.get_payload(decode=True)
        if not isinstance(data, bytes):
            continue
        if any(isinstance(d, errors.InvalidBase64LengthDefect) for d in part.defects):
            _skip(msg, part, "base64 that cannot be decoded")  # the stdlib hands back the encoded text
            continue
        found.append(Attachment(content_type=part.get_content_type(), filename=_filename(part, number),
                                size=len(data), data=data))
    return tuple(found)


def _filename(part: Message, number: int) -> str | None:
    """The part's filename; an inline part without one (a `cid:` image) is named after its type."""
    name = part.get_filename()
    if name:
        return name
    text = part.get_content_maintype() == "text"
    extension = mimetypes.guess_extension(part.get_content_type()) or (".txt" if text else ".bin")
    return f"{'inline' if part.get('Content-ID') else 'part'}-{number}{extension}"


def _returned_ids(msg: EmailMessage) -> list[str]:
    """The Message-ID of the message a delivery report returns (its message/rfc822 or
    text/rfc822-headers part), so the report joins that message's conversation."""
    for part in msg.walk():
        if part.get_content_type() == "text/rfc822-headers":
            payload = part.get_payload(decode=True)
            if isinstance(payload, bytes):
                returned = email.message_from_bytes(payload.lstrip(), policy=policy.default)
                return message_ids(returned.get("Message-ID"))
        if part.get_content_type() == "message/rfc822" and isinstance(part.get_payload(), list):
            return message_ids(part.get_payload()[0].get("Message-ID"))
    return []


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


def _own_ids(ids: list[str], own_addresses: frozenset[str]) -> list[str]:
    """The ids among `ids` that are ours: Message-IDs on one of our addresses' domains."""
    domains = {"@" + a.rpartition("@")[2] + ">" for a in own_addresses}
    return [i for i in ids if any(i.lower().endswith(d) for d in domains)]


def parse_email(raw: bytes, *, own_addresses: frozenset[str] = frozenset()) -> list[InboundMessage]:
    """The message in one raw email ([] for our own mail and mail without a sender address);
    automated mail comes back marked `automated`."""
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    name, address = senders.customer(msg)
    if not address or "@" not in address:
        log.info("email: dropping message without a sender address %s", msg.get("Message-ID"))
        return []
    author = senders.addresses(msg, "From")
    if address in own_addresses or (author and author[0][1] in own_addresses):
        return []  # our own mail looping back (e.g. BCC to the support mailbox)
    reason = senders.automated(msg, address)
    if reason:
        log.info("email: automated message %s (%s): stored, not answered", msg.get("Message-ID"), reason)

    own_ids = message_ids(msg.get("Message-ID"))
    message_id = own_ids[0] if own_ids else "<sha256-" + hashlib.sha256(raw).hexdigest() + "@handoff.invalid>"
    in_reply_to = message_ids(msg.get("In-Reply-To"))
    references = message_ids(msg.get("References"))
    if reason and not (in_reply_to or references):
        in_reply_to = _returned_ids(msg)
    reply_to = list(dict.fromkeys(in_reply_to + references[::-1]))
    root = references[0] if references else in_reply_to[0] if in_reply_to else message_id
    subject = senders.header_text(msg, "Subject")

    full_text, html, body = _bodies(msg)
    ours = [*own_addresses, *_own_ids(reply_to, own_addresses)]
    text = latest_reply(full_text, own=ours, forward=is_forward(subject)) if full_text.strip() else ""
    attachments = _attachments(msg, body)
    if not text and not attachments:
        text = strip_prefixes(subject)  # "Subject: Refund for order 42" and an empty body
    if reason:
        thread: dict = {"reply_to": reply_to}
    else:
        thread = {
            "reply_to": reply_to,
            "references": references or in_reply_to[:1],
            "subject": subject,
            "message_id": message_id,
            "to": address,
            "cc": senders.reply_all(msg, address, own_addresses),
        }
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
            thread=thread,
            sent_at=_timestamp(msg),
            automated=bool(reason),
            raw={
                "headers": {h: senders.header_text(msg, h) for h in _KEPT_HEADERS if msg.get(h) is not None},
                "text": full_text,
                "html": sanitize_html(html) if html else None,
                "automated": reason,
            },
        )
    ]
