"""Settings, read from environment variables (documented in the README) with pydantic-settings.

Each field is read from `HANDOFF_<NAME>` (provider credentials keep their providers' usual
names: `OPENAI_API_KEY`, `TWILIO_AUTH_TOKEN`, `SMTP_HOST`...; see `_ENV_NAMES`); an empty
variable means unset. Numbers are parsed by pydantic (a bad one: ValueError "HANDOFF_PORT must
be a number, got 'eighty'"); a flag is on for 1/true/yes/on, off for anything else.

`Settings(...)` takes keyword arguments only (never the environment); `Settings.from_env()` reads
the environment; `settings.model_copy(update={...})` gives a changed copy.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import AfterValidator, AliasGenerator, BeforeValidator, Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from handoff import hours


_PROVIDER_NAMES = [
    "openai_api_key", "openai_base_url",
    "twilio_account_sid", "twilio_auth_token", "twilio_whatsapp_number", "twilio_api_base",
    "twilio_template_sid",
    "meta_app_secret", "meta_verify_token", "messenger_page_token", "instagram_access_token",
    "meta_graph_base", "meta_app_id",
    "slack_bot_token", "slack_signing_secret", "slack_channel", "slack_api_base", "slack_app_token",
    "smtp_host", "smtp_port", "smtp_user", "smtp_password", "smtp_tls",
    "imap_host", "imap_port", "imap_user", "imap_password", "imap_tls",
    "imap_mailbox", "imap_poll_interval", "imap_quarantine",
]
_ENV_NAMES = {name: name.upper() for name in _PROVIDER_NAMES}
_ENV_NAMES.update(
    {
        "bot_model": "HANDOFF_BOT_MODEL",
        "email_from": "HANDOFF_EMAIL_FROM",
        "email_ca_file": "HANDOFF_EMAIL_CA_FILE",
    }
)


def _env_name(name: str) -> str:
    return _ENV_NAMES.get(name, "HANDOFF_" + name.upper())


def _flag(value: Any) -> Any:
    """A flag from the environment: on for 1/true/yes/on (any case), off for anything else."""
    return value.strip().lower() in {"1", "true", "yes", "on"} if isinstance(value, str) else value


Flag = Annotated[bool, BeforeValidator(_flag)]


def _business_hours(value: str) -> str:
    """A business-hours line checked at start (`handoff.hours.parse` raises ValueError)."""
    hours.parse(value)
    return value


class Settings(BaseSettings):
    """Everything the server reads from its environment. Empty string means unset."""

    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", validate_by_name=True, validate_by_alias=True,
        alias_generator=AliasGenerator(validation_alias=_env_name),
        case_sensitive=True, env_ignore_empty=True,
    )

    database_url: str = "sqlite://handoff.db"
    public_url: str = ""  # unset: http://localhost:<port> (see _default_public_url)
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    api_secret: str = ""
    api_callback_url: str = ""
    redis_url: str = ""
    knowledge_file: str = ""
    inactivity_timeout: float = 24 * 3600.0
    bot_sweep_interval: float = 5.0
    max_body_bytes: int = 1024 * 1024
    outbox_max_attempts: int = 8
    outbox_base_delay: float = 1.0
    outbox_max_delay: float = 300.0
    # Seconds an outbox claim lasts unless its worker's heartbeat renews it (every third of it).
    outbox_claim_seconds: float = 15.0
    # Seconds `handoff serve` has, from SIGTERM/SIGINT, to finish what it acknowledged and exit.
    shutdown_timeout: float = 10.0
    # Seconds the live-event log keeps an event: a desk stream resumes from it within that time.
    live_event_retention: float = 24 * 3600.0
    # One line per request (secrets redacted) from `handoff serve`; off: none.
    access_log: Flag = True
    # AI
    openai_api_key: str = ""
    openai_base_url: str = ""
    bot_model: str = "gpt-4o-mini"
    bot_system_prompt: str = ""
    # Seconds the desk's AI compose (draft, polish, translate) may take in all before a 504.
    compose_timeout: float = 20.0
    # Twilio WhatsApp
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_whatsapp_number: str = ""
    twilio_api_base: str = ""
    twilio_template_sid: str = ""
    # Meta (Messenger, Instagram)
    meta_app_secret: str = ""
    meta_verify_token: str = ""
    messenger_page_token: str = ""
    instagram_access_token: str = ""
    meta_graph_base: str = "https://graph.facebook.com/v21.0"
    # The Meta app's id: an echo carrying another app's id is a reply sent from outside handoff.
    meta_app_id: str = ""
    # Slack
    slack_bot_token: str = ""
    slack_signing_secret: str = ""
    slack_channel: str = ""
    slack_api_base: str = ""
    slack_app_token: str = ""
    # Email
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_tls: str = "starttls"
    imap_host: str = ""
    imap_port: int = 993
    imap_user: str = ""
    imap_password: str = ""
    imap_tls: Flag = True
    imap_mailbox: str = "INBOX"
    imap_poll_interval: float = 30.0
    imap_quarantine: str = "handoff-quarantine"
    email_from: str = ""
    email_ca_file: str = ""  # PEM CA(s) trusted besides the system ones, for IMAP and SMTP
    # a file a customer emails is kept in the media store up to this size (bytes); larger ones
    # are listed "not kept: too large"
    email_max_attachment_bytes: int = 10 * 1024 * 1024
    # bot replies to one email address in any hour (0: no cap): no loop with an autoresponder
    email_bot_replies_per_hour: int = 10
    # seconds before another instance takes over reading the mailbox from one that died
    imap_lease_ttl: float = 30.0
    # Web chat widget (handoff/channels/widget/): allowed embedding origins (comma-separated,
    # "*" for any; the server's own origin is always allowed), the per-site secret for
    # identity verification (HMAC-SHA256 of the user id), and where uploads are kept.
    widget_origins: str = ""
    widget_identity_secret: str = ""
    media_dir: str = "handoff-media"
    # Routing of escalations (handoff.transitions.route): on/off, and the open tickets an agent
    # may hold before routing passes them over.
    auto_assign: Flag = True
    agent_capacity: int = Field(default=5, ge=1)
    # When the team works (handoff.hours: "Mon-Fri 09:00-17:00 Europe/Madrid"); empty: always.
    business_hours: Annotated[str, AfterValidator(_business_hours)] = ""
    # The environment these settings were read from: a channel declares its own variables in its
    # module (channels.base.env_setting, e.g. TELEGRAM_*) and reads them from here.
    extra: Mapping[str, str] = Field(default_factory=dict, repr=False)

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   **_: PydanticBaseSettingsSource) -> tuple[PydanticBaseSettingsSource, ...]:
        # Deliberate: constructing Settings never reads os.environ; from_env passes the environment in.
        return (init_settings,)

    @model_validator(mode="after")
    def _default_public_url(self) -> Settings:
        if not self.public_url:
            local = self.host in ("", "0.0.0.0", "::", "127.0.0.1", "::1", "localhost")
            host = "localhost" if local else self.host
            object.__setattr__(self, "public_url", f"http://{host}:{self.port}")
        return self

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from `environ` (default os.environ); keyword overrides win. ValueError naming
        the variable for a value of the wrong type."""
        env = os.environ if environ is None else environ
        read = _Environment(cls, env)()
        values = {name: read[_env_name(name)] for name in cls.model_fields if name != "extra" and _env_name(name) in read}
        try:
            return cls(**{**values, "extra": dict(env), **overrides})
        except ValidationError as exc:
            raise ValueError(_env_error(exc, env)) from None


class _Environment(EnvSettingsSource):
    """pydantic-settings' environment source over a given mapping instead of os.environ; only the
    fields' own variables, an empty one being unset (`extra` is the whole mapping, set by from_env)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self._environ = environ
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        names = {_env_name(field) for field in self.settings_cls.model_fields if field != "extra"}
        return {name: value for name, value in self._environ.items() if name in names and value != ""}


def _env_error(error: ValidationError, env: Mapping[str, str]) -> str:
    """`"<VARIABLE> must be a number, got '<value>'"` for the first bad value."""
    first = error.errors(include_url=False)[0]
    name = str(first["loc"][0]) if first["loc"] else ""
    variable = name if name in env else _env_name(name)
    if first["type"] in {"int_parsing", "float_parsing", "int_from_float"}:
        return f"{variable} must be a number, got {env.get(variable)!r}"
    return f"{variable}: {first['msg'].removeprefix('Value error, ')}"
