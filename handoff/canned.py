"""Canned responses: saved replies an agent calls up by their shortcut (`/shipping`), their
placeholders filled in for the ticket's customer.

Placeholders are Liquid, as in Chatwoot (`{{contact.name}}`, `{{ contact.first_name | default:
"there" }}`), rendered by python-liquid with these variables: `contact.name`,
`contact.first_name`, `contact.email`, `agent.name`, `agent.first_name`, `agent.email`,
`conversation.id`. A value that is not known (a customer without a name) is left out together
with the space before it when punctuation or the line's end follows ("Hi {{contact.name}}," →
"Hi,"), unless the template gives its own `default`. Rendering is bounded (loop iterations,
output size), so no saved content can tie up the server.

`short_code` rules: 1 to 50 letters, digits, `_`, `-` or `.`, stored in lower case (a leading
`/` is dropped), unique.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from liquid import Environment, Undefined
from liquid.exceptions import LiquidError, TemplateNotFoundError

from handoff.models import Agent, CannedResponse, Contact, Conversation

SHORT_CODE = re.compile(r"^[\w.-]{1,50}$")
MAX_CONTENT = 10_000  # characters: a reply's limit (handoff.transitions.MAX_TEXT)
# A shortcut at the start of a message: `/code`, then a space, a line break or the end.
SHORTCUT = re.compile(r"^\s*/([\w.-]{1,50})(?=\s|$)")
_MISSING = "\x00"  # what an unknown value renders as, tidied away afterwards


class _Missing(Undefined):
    """An unknown value: falsy (so `default` applies), printed as a marker `_tidy` removes."""

    def __str__(self) -> str:
        return _MISSING

    def __bool__(self) -> bool:
        return False


class _Env(Environment):
    loop_iteration_limit = 1_000
    output_stream_limit = 4 * MAX_CONTENT


_ENV = _Env(undefined=_Missing)


class TemplateError(ValueError):
    """The content is not a template that can be rendered; the message says where."""


def normalize_code(value: str) -> str:
    """A short code as stored: without one leading `/`, in lower case; ValueError when it breaks
    the rules (1-50 letters, digits, `_`, `-`, `.`)."""
    code = value.strip().removeprefix("/").lower()
    if not SHORT_CODE.match(code):
        raise ValueError("must be 1 to 50 letters, digits, _, - or . (no spaces)")
    return code


def check_template(content: str) -> str:
    """`content` when it parses and renders as a template (with no values known); TemplateError
    (a ValueError) naming the problem otherwise."""
    try:
        _ENV.from_string(content).render()
    except LiquidError as exc:
        raise TemplateError(_reason(exc)) from None
    return content


def _reason(exc: LiquidError) -> str:
    if isinstance(exc, TemplateNotFoundError):
        return "is not a valid template: include and render are not available"
    token = getattr(exc, "token", None)
    where = f" (line {token.source.count(chr(10), 0, token.start_index) + 1})" if token is not None else ""
    return f"is not a valid template: {exc.message}{where}"


@dataclass(frozen=True)
class Values:
    """What placeholders may say: the customer, the agent, the conversation (None: not known)."""

    contact_name: str | None = None
    contact_email: str | None = None
    agent_name: str | None = None
    agent_email: str | None = None
    conversation_id: int | None = None

    def context(self) -> dict[str, Any]:
        """Liquid's variables, unknown ones left out (they render as missing)."""
        def known(**pairs: Any) -> dict[str, Any]:
            return {k: v for k, v in pairs.items() if v not in (None, "")}

        return {
            "contact": known(name=self.contact_name, first_name=_first(self.contact_name), email=self.contact_email),
            "agent": known(name=self.agent_name, first_name=_first(self.agent_name), email=self.agent_email),
            "conversation": known(id=self.conversation_id),
        }


def _first(name: str | None) -> str | None:
    return name.split()[0] if name and name.split() else None


async def values_for(conversation: Conversation, agent: Agent | None) -> Values:
    """The placeholder values for a reply by `agent` in `conversation`."""
    contact: Contact = await conversation.contact
    return Values(contact_name=contact.name, contact_email=contact.email,
                  agent_name=agent.name if agent else None, agent_email=agent.email if agent else None,
                  conversation_id=conversation.id)


def render(content: str, values: Values) -> str:
    """`content` with its placeholders filled in from `values`; TemplateError when it cannot be
    rendered (content saved before a rule changed)."""
    try:
        text = _ENV.from_string(content).render(**values.context())
    except LiquidError as exc:
        raise TemplateError(_reason(exc)) from None
    return _tidy(text)


def _tidy(text: str) -> str:
    # "Hi ␀, thanks" → "Hi, thanks"; "Dear ␀ team" → "Dear team"; "␀, hello" at a line's start → "hello".
    text = re.sub(r"(?m)^[ \t]*\x00[ \t]*[,;:]?[ \t]*", "", text)
    text = re.sub(r"[ \t]*\x00(?=[\s,.!?;:)]|$)", "", text)
    return text.replace(_MISSING, "")


def shortcut_of(text: str) -> tuple[str, str] | None:
    """`(short_code, rest)` when `text` starts with `/code` (a space, line break or the end after
    it; spaces before it allowed), the code in lower case; None otherwise."""
    match = SHORTCUT.match(text)
    if match is None:
        return None
    return match.group(1).lower(), text[match.end():].lstrip(" \t")


async def expand(text: str, values: Values) -> tuple[str, str | None]:
    """`text` with a leading `/code` replaced by that canned response, rendered (what follows the
    shortcut is kept after it, on the same line); `(text, None)` when it starts with no shortcut,
    `(text, code)` with the code of an unknown shortcut (the caller decides: refuse or send)."""
    found = shortcut_of(text)
    if found is None:
        return text, None
    code, rest = found
    canned = await CannedResponse.get_or_none(short_code=code)
    if canned is None:
        return text, code
    body = render(canned.content, values)
    return (f"{body} {rest}" if rest and not rest.startswith("\n") else body + rest), None
