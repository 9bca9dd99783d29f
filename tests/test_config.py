"""Settings from the environment: names, types, and the public URL that follows the port."""

from __future__ import annotations

import pytest

from handoff.config import Settings


def test_public_url_follows_host_and_port_unless_set() -> None:
    assert Settings.from_env({}).public_url == "http://localhost:8080"
    assert Settings.from_env({"HANDOFF_PORT": "8099"}).public_url == "http://localhost:8099"
    assert Settings.from_env({"HANDOFF_HOST": "0.0.0.0", "HANDOFF_PORT": "9000"}).public_url == "http://localhost:9000"
    assert Settings.from_env({"HANDOFF_HOST": "10.0.0.5"}).public_url == "http://10.0.0.5:8080"
    explicit = {"HANDOFF_PUBLIC_URL": "https://help.example.com", "HANDOFF_PORT": "8099"}
    assert Settings.from_env(explicit).public_url == "https://help.example.com"


def test_numbers_are_checked_and_named() -> None:
    assert Settings.from_env({"HANDOFF_INACTIVITY_TIMEOUT": "90"}).inactivity_timeout == 90.0
    with pytest.raises(ValueError, match="HANDOFF_PORT must be a number"):
        Settings.from_env({"HANDOFF_PORT": "eighty"})


def test_every_variable_name_and_default_is_kept() -> None:
    env = {"HANDOFF_DATABASE_URL": "postgres://db/x", "OPENAI_API_KEY": "sk-1", "TWILIO_AUTH_TOKEN": "tw",
           "SLACK_BOT_TOKEN": "xoxb", "SMTP_PORT": "2525", "IMAP_POLL_INTERVAL": "2.5", "HANDOFF_BOT_MODEL": "m",
           "HANDOFF_EMAIL_FROM": "help@example.com", "HANDOFF_MAX_BODY_BYTES": "2048", "HANDOFF_MEDIA_DIR": ""}
    settings = Settings.from_env(env)
    assert (settings.database_url, settings.openai_api_key, settings.twilio_auth_token, settings.slack_bot_token) == (
        "postgres://db/x", "sk-1", "tw", "xoxb")
    assert (settings.smtp_port, settings.imap_poll_interval, settings.bot_model, settings.max_body_bytes) == (
        2525, 2.5, "m", 2048)
    assert settings.email_from == "help@example.com"
    assert settings.media_dir == "handoff-media"  # empty means unset
    assert Settings.from_env({"HANDOFF_OPENAI_API_KEY": "wrong name"}).openai_api_key == ""
    defaults = Settings.from_env({})
    assert (defaults.port, defaults.outbox_max_attempts, defaults.imap_tls, defaults.meta_graph_base) == (
        8080, 8, True, "https://graph.facebook.com/v21.0")


@pytest.mark.parametrize(("raw", "on"), [("1", True), ("TRUE", True), (" yes ", True), ("on", True),
                                         ("0", False), ("false", False), ("maybe", False)])
def test_flags_are_on_only_for_the_usual_words(raw: str, on: bool) -> None:
    assert Settings.from_env({"IMAP_TLS": raw}).imap_tls is on


def test_bad_numbers_name_their_variable() -> None:
    with pytest.raises(ValueError, match=r"^SMTP_PORT must be a number, got 'x'$"):
        Settings.from_env({"SMTP_PORT": "x"})
    with pytest.raises(ValueError, match=r"^HANDOFF_OUTBOX_BASE_DELAY must be a number, got 'soon'$"):
        Settings.from_env({"HANDOFF_OUTBOX_BASE_DELAY": "soon"})


def test_keyword_construction_ignores_the_environment_and_copies_change_fields(monkeypatch) -> None:
    monkeypatch.setenv("HANDOFF_PORT", "9999")
    monkeypatch.setenv("OPENAI_API_KEY", "from-env")
    settings = Settings(port=8100, api_secret="s")
    assert (settings.port, settings.openai_api_key, settings.public_url) == (8100, "", "http://localhost:8100")
    assert Settings.from_env().port == 9999
    copy = settings.model_copy(update={"api_secret": "t"})
    assert (copy.api_secret, copy.port, settings.api_secret) == ("t", 8100, "s")
    with pytest.raises(ValueError):
        settings.port = 1  # type: ignore[misc]


def test_the_whole_environment_is_kept_for_channel_settings() -> None:
    settings = Settings.from_env({"TELEGRAM_BOT_TOKEN": "123:abc", "HANDOFF_EXTRA": "not json"}, port=8200)
    assert settings.extra["TELEGRAM_BOT_TOKEN"] == "123:abc"
    assert settings.port == 8200  # keyword overrides win
