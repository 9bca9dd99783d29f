"""Email bodies as the bot and agents should read them.

`html_to_text` turns an HTML part into plain text (blocks become lines, lists get "- ",
links keep their target, blockquotes become "> " quotes, scripts and styles vanish).
`sanitize_html` is the only way HTML leaves this module (nh3, allow-list based).
`latest_reply` keeps only what the sender just wrote: quoted history and signatures are cut
first where `quotes` finds quoted history (header blocks and attributions in every language
handoff's notices speak and Korean, full-width colons, and any quoting our own address or
Message-ID), then with mail-parser-reply (Gmail/Outlook/Apple Mail headers in many languages,
signatures), guarded so that a sentence that merely starts with "Thanks," is not mistaken for a
sign-off. Forwarded content is kept.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from html.parser import HTMLParser

import nh3
from mailparser_reply import EmailMessage
from mailparser_reply.constants import MAIL_LANGUAGES

from handoff.channels.email import quotes

# every language mail-parser-reply knows; it tries each header/signature pattern
LANGUAGES = tuple(code for code in MAIL_LANGUAGES if len(code) == 2)

_SKIP = {"script", "style", "head", "title", "template", "noscript", "svg"}
_BLOCK = {
    "p", "div", "br", "li", "tr", "ul", "ol", "table", "blockquote", "pre", "hr",
    "h1", "h2", "h3", "h4", "h5", "h6", "section", "article", "header", "footer", "dl", "dt", "dd",
}
_OPEN_ONLY = {"br", "li", "dt", "dd", "tr"}  # the next block starts a new line anyway
_PARAGRAPH = {"p", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"}


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.segments: list[tuple[int, str]] = []  # (quote depth, text)
        self.depth = 0
        self.skip = 0
        self.pre = 0
        self.href: list[str | None] = []
        self.link_text: list[str] = []

    def _emit(self, text: str) -> None:
        if self.link_text:
            self.link_text[-1] += text
        self.segments.append((self.depth, text))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skip += 1
            return
        if tag in _BLOCK:
            self._emit("\n\n" if tag in _PARAGRAPH else "\n")
        if tag == "blockquote":
            self.depth += 1
        elif tag == "li":
            self._emit("- ")
        elif tag == "pre":
            self.pre += 1
        elif tag in ("td", "th"):
            self._emit(" ")
        elif tag == "a":
            self.href.append(dict(attrs).get("href"))
            self.link_text.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skip = max(0, self.skip - 1)
            return
        if tag == "a" and self.href:
            href, text = self.href.pop(), self.link_text.pop()
            if href and href.startswith(("http://", "https://")) and href not in text:
                self._emit(f" ({href})")
        if tag == "blockquote":
            self._emit("\n")
            self.depth = max(0, self.depth - 1)
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
        if tag in _BLOCK and tag not in _OPEN_ONLY:
            self._emit("\n\n" if tag in _PARAGRAPH else "\n")

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if not self.pre:
            data = re.sub(r"\s+", " ", data)
        self._emit(data.replace("\xa0", " "))

    def text(self) -> str:
        lines: list[str] = []
        for depth, chunk in _merge(self.segments):
            for line in chunk.split("\n"):
                line = line.strip()
                lines.append(("> " * depth + line).rstrip() if line else "")
        return _squeeze("\n".join(lines))


def _merge(segments: list[tuple[int, str]]) -> list[tuple[int, str]]:
    merged: list[tuple[int, str]] = []
    for depth, text in segments:
        if merged and merged[-1][0] == depth:
            merged[-1] = (depth, merged[-1][1] + text)
        else:
            merged.append((depth, text))
    return merged


def _squeeze(text: str) -> str:
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()


def html_to_text(html: str) -> str:
    """Readable plain text from an HTML email body."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return parser.text()


def sanitize_html(html: str) -> str:
    """HTML safe to show in the desk: an allow-list of tags, no scripts, styles or handlers."""
    return nh3.clean(
        html,
        clean_content_tags={"script", "style", "title", "head", "template"},
        link_rel="noopener noreferrer nofollow",
        url_schemes={"http", "https", "mailto"},
    ).strip()


_QUOTE_LINE = re.compile(r"^\s*>")
_SIGNOFF_MAX = 40


def _plausible_signature(signature: str) -> bool:
    """A signature starts with "--", "Sent from ...", or a short sign-off line, not a sentence."""
    lines = [line for line in signature.strip().splitlines() if line.strip()]
    if not lines:
        return False
    first = lines[0].lstrip("> ").strip()
    if first.startswith(("--", "__")):
        return True
    if len(lines) > 10 or len(first) > _SIGNOFF_MAX:
        return False
    # "Thanks, that worked!" and "Thanks, but it fails" are sentences;
    # "Thanks, Jane", "Best regards," and "Mit freundlichen Grüßen" are sign-offs
    if re.search(r"[.!?¿¡]", first):
        return False
    after_comma = first.partition(",")[2].strip()
    return not after_comma or after_comma[0].isupper()


def _drop_trailing_quote(text: str) -> str:
    """Cut a trailing block of "> " lines and the attribution line just above it."""
    lines = text.rstrip().split("\n")
    end = len(lines)
    while end and (_QUOTE_LINE.match(lines[end - 1]) or not lines[end - 1].strip()):
        end -= 1
    if end == len(lines) or not any(_QUOTE_LINE.match(line) for line in lines[end:]):
        return text
    while end and not lines[end - 1].strip():
        end -= 1
    if end and lines[end - 1].rstrip().endswith(":"):
        end -= 1  # "El vie, 7 mar 2025 ... escribió:" and other attributions
    return "\n".join(lines[:end]).rstrip()


@functools.cache
def _compiled() -> dict[str, re.Pattern[str]]:
    """mail-parser-reply's patterns for all languages, compiled once instead of per message."""
    template = EmailMessage(text="", languages=list(LANGUAGES), keep_hyphen_lists=True)
    return {
        "_header_regex": template.HEADER_REGEX,
        "_signature_regex": template.SIGNATURE_REGEX,
        "_disclaimers_regex": template.DISCLAIMERS_REGEX,
    }


def latest_reply(text: str, *, own: Iterable[str] = (), forward: bool = False) -> str:
    """The part of a plain-text body the sender just wrote, without quoted history or signature.

    `own` holds our own addresses and Message-IDs: a header block or attribution line quoting
    one ends the new text whatever its language. Forwarded content is the sender's content: the
    text before a forward marker is cut as a reply's, the forwarded part is kept whole; with
    `forward` (the subject says "Fwd:"/"WG:"/"TR:"...) and no marker, as Outlook forwards, the
    whole body is kept.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    marker = quotes.forward_marker(lines)
    if marker is not None:
        head = "\n".join(lines[:marker])
        kept = _reply_part(head) if head.strip() else ""
        forwarded = "\n".join(lines[marker:]).strip()
        return f"{kept}\n\n{forwarded}".strip()
    if forward:
        return _squeeze(text)
    cut = quotes.history_start(lines, own)
    if cut is not None:
        head = "\n".join(lines[:cut])
        return _reply_part(head) if head.strip() else _squeeze(text)
    return _reply_part(text)


def _reply_part(text: str) -> str:
    parsed = EmailMessage(text=text, languages=list(LANGUAGES), keep_hyphen_lists=True, **_compiled()).read()
    if not parsed.replies:
        return text.strip()
    reply = parsed.replies[0]
    body = reply.content
    for disclaimer in reply.disclaimers:
        body = body.replace(disclaimer, "")
    if reply.signatures and _plausible_signature(reply.signatures):
        body = body.replace(reply.signatures, "")
    if reply.headers:
        body = body.replace(reply.headers, "")
    body = _drop_trailing_quote(body.strip()).strip()
    return _squeeze(body) or _squeeze(text)
