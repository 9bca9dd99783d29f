"""Settings, read from environment variables (documented in the README)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields


def _env_name(name: str) -> str:
    return _ENV_NAMES.get(name, "HANDOFF_" + name.upper())


@dataclass(frozen=True)
class Settings:
    """Everything the server reads from its environment. Empty string means unset."""

    database_url: str = "sqlite://handoff.db"
    public_url: str = ""  # unset: http://localhost:<port> (see __post_init__)
    secret_key: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    api_secret: str = ""
    api_callback_url: str = ""
    redis_url: str = ""
    knowledge_file: str = ""
    inactivity_timeout: float = 24 * 3600.0
    max_body_bytes: int = 1024 * 1024
    outbox_max_attempts: int = 8
    outbox_base_delay: float = 1.0
    outbox_max_delay: float = 300.0
    # AI
    openai_api_key: str = ""
    openai_base_url: str = ""
    bot_model: str = "gpt-4o-mini"
    bot_system_prompt: str = ""
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
    imap_tls: bool = True
    imap_mailbox: str = "INBOX"
    imap_poll_interval: float = 30.0
    imap_quarantine: str = "handoff-quarantine"
    email_from: str = ""
    email_ca_file: str = ""  # PEM CA(s) trusted besides the system ones, for IMAP and SMTP
    # Web chat widget (handoff/channels/widget.py): allowed embedding origins (comma-separated,
    # "*" for any; the server's own origin is always allowed), the per-site secret for
    # identity verification (HMAC-SHA256 of the user id), and where uploads are kept.
    widget_origins: str = ""
    widget_identity_secret: str = ""
    media_dir: str = "handoff-media"
    # The environment these settings were read from: a channel declares its own variables in its
    # module (channels.base.env_setting, e.g. TELEGRAM_*) and reads them from here.
    extra: Mapping[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not self.public_url:
            local = self.host in ("", "0.0.0.0", "::", "127.0.0.1", "::1", "localhost")
            host = "localhost" if local else self.host
            object.__setattr__(self, "public_url", f"http://{host}:{self.port}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        """Settings from `environ` (default os.environ); keyword overrides win."""
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        for f in fields(cls):
            if f.name == "extra":
                continue
            raw = env.get(_env_name(f.name))
            if raw is None or raw == "":
                continue
            values[f.name] = _coerce(f.type, raw, _env_name(f.name))
        values["extra"] = dict(env)
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]


def _coerce(type_name: object, raw: str, env_name: str) -> object:
    kind = str(type_name)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError:
        raise ValueError(f"{env_name} must be a number, got {raw!r}") from None
    if kind == "bool":
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    return raw


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
