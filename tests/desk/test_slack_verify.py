"""Slack request verification and settings: forged, stale and unsigned requests are refused."""

from __future__ import annotations

import pytest

from handoff.channels.base import ChannelConfigError, InvalidSignature
from handoff.config import Settings
from handoff.desk.slack import SlackIntegration
from handoff.desk.slack.verify import SlackVerifier, sign

# The worked example in https://api.slack.com/authentication/verifying-requests-from-slack
DOC_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
DOC_TIMESTAMP = 1531420618
DOC_BODY = (
    b"token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V"
    b"&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text="
    b"&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN"
    b"&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
)
DOC_SIGNATURE = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"


def headers(timestamp: int, signature: str) -> dict[str, str]:
    return {"X-Slack-Request-Timestamp": str(timestamp), "X-Slack-Signature": signature}


def test_documented_vector_is_accepted() -> None:
    verifier = SlackVerifier(DOC_SECRET, now=lambda: DOC_TIMESTAMP + 10)
    verifier.verify(DOC_BODY, headers(DOC_TIMESTAMP, DOC_SIGNATURE))


def test_sign_reproduces_documented_vector() -> None:
    assert sign(DOC_SECRET, DOC_BODY, DOC_TIMESTAMP)["X-Slack-Signature"] == DOC_SIGNATURE


@pytest.mark.parametrize(
    "body, hdrs",
    [
        (DOC_BODY + b"&text=evil", headers(DOC_TIMESTAMP, DOC_SIGNATURE)),  # body changed
        (DOC_BODY, headers(DOC_TIMESTAMP, "v0=" + "0" * 64)),  # forged signature
        (DOC_BODY, headers(DOC_TIMESTAMP, DOC_SIGNATURE.upper())),
        (DOC_BODY, headers(DOC_TIMESTAMP + 1, DOC_SIGNATURE)),  # timestamp not the signed one
        (DOC_BODY, {}),  # unsigned
        (DOC_BODY, {"X-Slack-Signature": DOC_SIGNATURE}),
        (DOC_BODY, {"X-Slack-Request-Timestamp": str(DOC_TIMESTAMP)}),
        (DOC_BODY, headers(DOC_TIMESTAMP, "")),
        (DOC_BODY, {"X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": DOC_SIGNATURE}),
        (b"\xff\xfe", headers(DOC_TIMESTAMP, DOC_SIGNATURE)),  # not UTF-8
    ],
)
def test_forged_or_unsigned_requests_are_refused(body: bytes, hdrs: dict[str, str]) -> None:
    verifier = SlackVerifier(DOC_SECRET, now=lambda: DOC_TIMESTAMP)
    with pytest.raises(InvalidSignature):
        verifier.verify(body, hdrs)


@pytest.mark.parametrize("age", [301, 3600, -301])
def test_requests_outside_the_five_minute_window_are_refused(age: int) -> None:
    verifier = SlackVerifier(DOC_SECRET, now=lambda: DOC_TIMESTAMP + age)
    with pytest.raises(InvalidSignature, match="stale"):
        verifier.verify(DOC_BODY, headers(DOC_TIMESTAMP, DOC_SIGNATURE))


@pytest.mark.parametrize("age", [0, 299, -299])
def test_requests_inside_the_window_pass(age: int) -> None:
    SlackVerifier(DOC_SECRET, now=lambda: DOC_TIMESTAMP + age).verify(DOC_BODY, headers(DOC_TIMESTAMP, DOC_SIGNATURE))


@pytest.mark.parametrize("secret", ["", "   "])
def test_missing_secret_fails_closed(secret: str) -> None:
    with pytest.raises(InvalidSignature, match="not configured"):
        SlackVerifier(secret, now=lambda: DOC_TIMESTAMP).verify(DOC_BODY, headers(DOC_TIMESTAMP, DOC_SIGNATURE))


def test_slack_is_off_without_settings() -> None:
    assert SlackIntegration.from_settings(Settings()) is None


@pytest.mark.parametrize(
    "overrides, missing",
    [
        ({"slack_bot_token": "xoxb-1"}, "SLACK_SIGNING_SECRET, SLACK_CHANNEL"),
        ({"slack_bot_token": "xoxb-1", "slack_signing_secret": "s"}, "SLACK_CHANNEL"),
        ({"slack_channel": "C1"}, "SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET"),
        ({"slack_app_token": "xapp-1", "slack_channel": "C1"}, "SLACK_BOT_TOKEN"),
    ],
)
def test_partial_settings_are_a_clear_error(overrides: dict[str, str], missing: str) -> None:
    with pytest.raises(ChannelConfigError, match=missing):
        SlackIntegration.from_settings(Settings(**overrides))


def test_full_settings_build_the_integration() -> None:
    slack = SlackIntegration.from_settings(Settings(
        slack_bot_token="xoxb-1", slack_signing_secret="s", slack_channel="C1",
        slack_api_base="http://127.0.0.1:9/api"))
    assert slack is not None
    assert slack.client.base_url == "http://127.0.0.1:9/api/"
    assert [r.path for r in slack.routes()] == ["/slack/events", "/slack/interactions", "/slack/commands"]


def test_socket_mode_needs_no_signing_secret() -> None:
    slack = SlackIntegration.from_settings(Settings(slack_bot_token="xoxb-1", slack_app_token="xapp-1", slack_channel="C1"))
    assert slack is not None and slack.app_token == "xapp-1"
