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
