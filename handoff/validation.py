"""The one place request bodies are validated: pydantic models of every JSON body the desk API,
desk sign-in and the widget accept, read with `read_model`.

A body is read whole (`bodies.read_json_object`: 413 past the size limit, 400 for bad JSON or
nesting deeper than `bodies.MAX_DEPTH`), then validated; a validation error is a JSON 400
`{"error": "<field> <reason>"}` naming the first field at fault. Text fields are made storable
(`handoff.storable`: NUL and lone surrogates become U+FFFD) and ids are 32-bit positive integers
(PostgreSQL's `integer`), so nothing a client sends can make a store refuse it.
Unknown fields are ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, TypeVar

from aiohttp import web
from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictBool, ValidationError

from handoff import canned, storable
from handoff.bodies import bad_request, read_json_object

MAX_ID = 2**31 - 1  # ids are 32-bit integers on PostgreSQL
MAX_ATTACHMENTS = 10
WIDGET_MAX_TEXT = 8000  # characters of one widget message

# Strings arrive already storable: `validate` runs the whole body through storable.json_value
# first (pydantic cannot even read a str holding a lone surrogate).
Text = Annotated[str, Field(strict=True)]


def text(max_length: int | None = None, min_length: int | None = None) -> Any:
    """A text type with length bounds in characters."""
    return Annotated[str, Field(strict=True, min_length=min_length, max_length=max_length)]


Id = Annotated[int, Field(strict=True, ge=1, le=MAX_ID)]


def id_from_text(value: Any) -> int | None:
    """A record id written as ASCII digits (`"42"`, a Slack button value or command word), or None
    when `value` is not one or is outside 1..MAX_ID (no row can have it)."""
    if not isinstance(value, str) or not (value.isascii() and value.isdigit()) or len(value) > 10:
        return None
    number = int(value)
    return number if 1 <= number <= MAX_ID else None

Model = TypeVar("Model", bound="Body")


class Body(BaseModel):
    """Base of request bodies: unknown fields ignored, the parsed model immutable.

    `item_errors` gives the message for a bad item inside a list field (`field` + phrase).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)
    item_errors: ClassVar[dict[str, str]] = {}


class ReplyBody(Body):
    """`POST /api/v1/tickets/{id}/messages`: text (optional with files), note or reply, upload ids."""

    text: Text | None = None
    internal: StrictBool = False
    attachments: Annotated[list[Text], Field(max_length=MAX_ATTACHMENTS)] | None = None

    item_errors: ClassVar[dict[str, str]] = {"attachments": "must be a list of upload ids"}


class TransferBody(Body):
    """`POST /api/v1/tickets/{id}/transfer`: the receiving agent's id, an optional note, and
    `confirm` (true to take someone else's ticket from them)."""

    agent_id: Id
    note: Text | None = None
    confirm: StrictBool = False  # required to transfer someone else's ticket (desk.rules)


class ConfirmBody(Body):
    """`POST /api/v1/tickets/{id}/allow-ai` and `/close` (the body is optional): `confirm` must be
    true to act on a ticket assigned to another agent (desk.rules)."""

    confirm: StrictBool = False


class TypingBody(Body):
    """`POST /api/v1/conversations/{id}/typing`: show (true, the default) or hide the indicator."""

    typing: StrictBool = True


class PresenceBody(Body):
    """`PUT /api/v1/agents/me/presence`: what the agent says they are, "online" or "away"."""

    status: Literal["online", "away"]


class LoginBody(Body):
    """`POST /desk/login`: an API token, or an email and password."""

    token: text(200) | None = None
    email: text(320) | None = None
    password: text(1024) | None = None


class AccountBody(Body):
    """`POST /desk/account`: any of a new password (10 characters at least), name and email."""

    password: text(1024, min_length=10) | None = None
    name: Text | None = None
    email: Text | None = None


class WidgetSessionBody(Body):
    """`POST /widget/session`: an earlier session token to resume, and the site's user (verified
    with `user_hash`) with their name and email."""

    token: Text | None = None  # any stale value just starts a new session
    user_id: text(255, min_length=1) | Annotated[int, Field(strict=True)] | None = None
    user_hash: text(128) | None = None
    name: Text | None = None
    email: Text | None = None


def _email(value: str) -> str:
    # Syntax only (RFC 5322/6531 through email-validator): a pre-chat answer is not worth a DNS query.
    try:
        return validate_email(value, check_deliverability=False).normalized
    except EmailNotValidError:
        raise ValueError("must be an email address") from None


Email = Annotated[str, Field(strict=True, max_length=320), AfterValidator(_email)]


class WidgetContactBody(Body):
    """`POST /widget/contact`: the visitor's answers to the pre-chat form, each optional (name up
    to 200 characters, email a syntactically valid address)."""

    name: text(200) | None = None
    email: Email | None = None


WidgetText = text(WIDGET_MAX_TEXT)


class WidgetMessageFrame(Body):
    """The widget's `{"type": "message", "client_id", "text", "attachments"}` frame: the client id
    (8-64 url-safe characters) names the message for its dedupe; `attachments` are upload ids (any
    other value is ignored, as are ids the visitor does not own)."""

    client_id: Annotated[str, Field(strict=True, pattern=r"^[A-Za-z0-9_-]{8,64}$")]
    text: WidgetText | None = None
    attachments: Any = None


class WidgetTypingFrame(Body):
    """The widget's `{"type": "typing", "typing"}` frame (typing defaults to true)."""

    typing: bool = True


ComposeText = text(10_000)


class ComposeBody(Body):
    """`POST /api/v1/tickets/{id}/compose`: `mode` draft, polish or translate; `text` (the agent's
    draft, 10,000 characters at most) is required to polish or translate, unused for a draft."""

    mode: Literal["draft", "polish", "translate"]  # handoff.bot.compose.Mode
    text: ComposeText | None = None


def _content(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return canned.check_template(value)


ShortCode = Annotated[str, Field(strict=True, max_length=51), AfterValidator(canned.normalize_code)]
CannedContent = Annotated[str, Field(strict=True, max_length=canned.MAX_CONTENT), AfterValidator(_content)]


class CannedResponseBody(Body):
    """`POST /api/v1/canned_responses`: `short_code` (1-50 letters, digits, `_`, `-`, `.`; a
    leading `/` is dropped; stored in lower case; unique) and `content` (a Liquid template,
    10,000 characters at most, e.g. `Hi {{contact.name}}, …`)."""

    short_code: ShortCode
    content: CannedContent


class CannedResponsePatch(Body):
    """`PATCH /api/v1/canned_responses/{id}`: a new `short_code` and/or `content` (same rules)."""

    short_code: ShortCode | None = None
    content: CannedContent | None = None


_PHRASES = {
    "missing": "is required",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "int_type": "must be a whole number",
    "list_type": "must be a list",
    "less_than_equal": "must be at most {le}",
    "greater_than_equal": "must be at least {ge}",
    "string_too_long": "must be at most {max_length} characters",
    "string_too_short": "must be at least {min_length} characters",
    "too_long": "must have at most {max_length} items",
    "literal_error": "must be one of {expected}",
    "value_error": "{error}",
}


def error_message(error: ValidationError, model: type[Body] = Body) -> str:
    """`"<field path> <reason>"` for the first problem pydantic found (`agent_id must be a whole
    number`, `attachments must be a list of upload ids`)."""
    first = error.errors(include_url=False)[0]
    loc = [str(part) for part in first["loc"] if not _is_type_tag(part)]
    if len(loc) > 1 and loc[0] in model.item_errors:
        return f"{loc[0]} {model.item_errors[loc[0]]}"
    where = ".".join(loc) or "body"
    phrase = _PHRASES.get(first["type"])
    return f"{where} {phrase.format(**first.get('ctx', {}))}" if phrase else f"{where}: {first['msg']}"


def _is_type_tag(part: Any) -> bool:
    # A union reports which member failed ("str", "int", "function-after[text(), str]"); not a field.
    return isinstance(part, str) and ("[" in part or part in {"str", "int", "bool", "list"})


def validate(model: type[Model], data: Any) -> Model:
    """`data` (decoded JSON) made storable, then validated as `model`; raises a JSON 400 naming
    the field otherwise."""
    try:
        return model.model_validate(storable.json_value(data))
    except ValidationError as exc:
        raise bad_request(error_message(exc, model)) from None


async def read_model(request: web.Request, model: type[Model], limit: int, *, empty: bool = False) -> Model:
    """The request's JSON object body validated as `model` (an empty body is `{}` when `empty`);
    JSON 400 for a bad body or field, 413 past `limit` bytes."""
    data = await read_json_object(request, limit, empty={} if empty else None)
    return validate(model, data)


MAX_LABEL_NAME = 40  # characters of a label's name
MAX_LABELS = 50  # labels on one conversation
DEFAULT_LABEL_COLOR = "#1f93ff"


def _label_name(value: str) -> str:
    # Names travel in comma-separated filters (`?label=refund,vip`), so they hold no comma.
    name = " ".join(value.split())
    if not name:
        raise ValueError("must not be empty")
    if len(name) > MAX_LABEL_NAME:
        raise ValueError(f"must be at most {MAX_LABEL_NAME} characters")
    if "," in name or not name.isprintable():
        raise ValueError("must not contain commas or control characters")
    return name


def _color(value: str) -> str:
    if len(value) != 7 or value[0] != "#" or any(ch not in "0123456789abcdefABCDEF" for ch in value[1:]):
        raise ValueError("must be a colour written #rrggbb")
    return value.lower()


LabelName = Annotated[str, Field(strict=True, max_length=1000), AfterValidator(_label_name)]
Color = Annotated[str, Field(strict=True, json_schema_extra={"pattern": "^#[0-9a-fA-F]{6}$"}), AfterValidator(_color)]


class LabelBody(Body):
    """`POST /api/v1/labels`: a name (trimmed, inner spaces made single, 1-40 characters, no comma)
    and a colour `#rrggbb` (lower-cased; default #1f93ff)."""

    name: LabelName
    color: Color = DEFAULT_LABEL_COLOR


class ConversationLabelsBody(Body):
    """`PUT /api/v1/conversations/{id}/labels`: the names of every label the conversation should
    carry (existing labels, matched ignoring case; at most 50)."""

    labels: Annotated[list[LabelName], Field(max_length=MAX_LABELS)]
