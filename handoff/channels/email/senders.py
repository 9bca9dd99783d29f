"""Who an email is from, who the reply goes to, and whether a machine sent it.

- The customer (`customer`) is the one address in `Reply-To` when it names exactly one address
  other than `From` (RFC 5322 §3.6.2: "the address(es) to which the author suggests replies be
  sent"): a web form's mail `From: <noreply@forms.shop.example>` with `Reply-To: <a customer>` is
  that customer's, not one contact for every form. Otherwise it is the `From` address.
- A reply goes out as a "reply all" would (`reply_all`): to the customer, with every other
  address of the message's `To` and `Cc` in Cc, never one of our own.
- `automated` says why a machine sent the message (RFC 3834 `Auto-Submitted` other than "no";
  `Precedence: bulk/junk/list/auto_reply`; `List-Id`/`List-Unsubscribe` (mailing lists,
  newsletters); Microsoft's `X-Auto-Response-Suppress`, `X-Autoreply`, `X-Autorespond`;
  a delivery or disposition report, RFC 6522 `multipart/report`; the null reverse-path
  `Return-Path: <>`, RFC 5321 §4.5.5; a noreply/no-reply/donotreply, mailer-daemon or
  postmaster sender), or None for a person.

Header text is decoded as the writing client meant it (`charsets.decode`, the Windows supersets
of the declared charset) where the standard library's decoding failed (`_misread`).
"""

from __future__ import annotations

import email.header
import email.utils
import re
from email.message import Message

from handoff.channels.email import charsets

_BULK_PRECEDENCE = {"bulk", "junk", "list", "auto_reply"}
_MACHINE_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Auto-Reply", "X-Auto-Response-Suppress", "List-Id",
                    "List-Unsubscribe")
_MACHINE_LOCAL = re.compile(
    r"^(?:no[-_.]?reply|do[-_.]?not[-_.]?reply|mailer[-_.]?daemon|postmaster)(?:[-+_.].*)?$", re.IGNORECASE)

Person = tuple[str, str]  # (display name, lowercased address)


def automated(msg: Message, customer: str) -> str | None:
    """Why this message was sent by a machine, or None when a person wrote it."""
    auto = str(msg.get("Auto-Submitted", "")).strip().lower()
    if auto and not auto.startswith("no"):
        return f"auto-submitted: {auto}"
    precedence = str(msg.get("Precedence", "")).strip().lower()
    if precedence in _BULK_PRECEDENCE:
        return f"precedence: {precedence}"
    for header in _MACHINE_HEADERS:
        if msg.get(header) is not None:
            return header.lower()
    if msg.get_content_type() == "multipart/report":
        return "report: " + str(msg.get_param("report-type", "unknown"))
    if str(msg.get("Return-Path", "")).strip() == "<>":
        return "null return path"
    local = customer.split("@", 1)[0]
    if _MACHINE_LOCAL.match(local):
        return f"sender {local}"
    return None


def customer(msg: Message) -> Person:
    """(name, address) of the person a reply goes to: the single Reply-To address when it differs
    from From, else From. ("", "") when the message names no usable address."""
    sender = addresses(msg, "From")
    reply_to = addresses(msg, "Reply-To")
    author = sender[0] if sender else ("", "")
    if len(reply_to) == 1 and reply_to[0][1] != author[1]:
        return reply_to[0]
    return author


def reply_all(msg: Message, to: str, own: frozenset[str]) -> list[str]:
    """The Cc of a "reply all" to this message: its From, To and Cc addresses other than `to`
    and our own, in order, once each."""
    seen = {to, *own}
    cc = []
    for header in ("From", "To", "Cc"):
        for _, addr in addresses(msg, header):
            if addr not in seen and "@" in addr:
                seen.add(addr)
                cc.append(addr)
    # a web form's noreply From is not a participant
    return [addr for addr in cc if not _MACHINE_LOCAL.match(addr.split("@", 1)[0])]


def addresses(msg: Message, name: str) -> list[Person]:
    """Every (display name, lowercased address) of an address header, display names decoded in
    their charset's superset."""
    header = msg.get(name)
    if header is None:
        return []
    try:
        found = [(a.display_name or "", a.addr_spec.lower()) for a in header.addresses]  # type: ignore[union-attr]
    except (AttributeError, IndexError, TypeError, ValueError):
        found = [(n, a.lower()) for n, a in email.utils.getaddresses([str(header)])]
    if any(_misread(n) for n, _ in found):
        names = {a.lower(): n for n, a in email.utils.getaddresses([decoded_header(msg, name)])}
        found = [(names.get(a) or n, a) for n, a in found]
    return [(n, a) for n, a in found if a]


def header_text(msg: Message, name: str) -> str:
    """A header's text, whitespace folded; decoded in its charset's superset when the standard
    library's decoding left U+FFFD."""
    value = msg.get(name)
    text = str(value) if value is not None else ""
    if _misread(text):
        text = decoded_header(msg, name)
    return re.sub(r"\s+", " ", text).strip()


def decoded_header(msg: Message, name: str) -> str:
    """The raw header's RFC 2047 encoded words decoded with `charsets.decode`."""
    raw = next((str(v) for k, v in msg.raw_items() if k.lower() == name.lower()), "")
    parts = []
    for chunk, charset in email.header.decode_header(raw):
        if isinstance(chunk, str):  # no encoded words: the raw text (8-bit bytes surrogate-escaped)
            chunk = chunk.encode("utf-8", "surrogateescape")
            charset = charset or "utf-8"
        # raw 8-bit text without a label: UTF-8, else what WHATWG reads unlabeled Western text as
        parts.append(charsets.decode(chunk, charset or "us-ascii") or charsets.decode(chunk, "windows-1252")
                     or chunk.decode("utf-8", "replace"))
    return "".join(parts)


def _misread(text: str) -> bool:
    """True when the standard library's decoding of a header failed: U+FFFD, C1 controls (a
    windows-1252 byte read as ISO-8859-1), raw 8-bit bytes (surrogate-escaped), or an encoded word it left as it was (ISO-2022-JP
    with NEC extensions)."""
    return "\ufffd" in text or bool(re.search(r"[\x80-\x9f\udc80-\udcff]|=\?[^?]+\?[bqBQ]\?", text))
