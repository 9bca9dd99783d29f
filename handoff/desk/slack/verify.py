"""Verify that a request really comes from Slack (v0 request signatures).

Follows https://api.slack.com/authentication/verifying-requests-from-slack: the signature is
`v0=` + hex HMAC-SHA256(signing secret, "v0:{timestamp}:{raw body}"), sent in
X-Slack-Signature with X-Slack-Request-Timestamp; requests older (or newer) than five
minutes are refused to stop replays. slack-sdk's `SignatureVerifier` does the comparison in
constant time. Everything fails closed: no secret, no headers or a bad timestamp is a
rejection, never a pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping

from slack_sdk.signature import Clock, SignatureVerifier

from handoff.channels.base import InvalidSignature

WINDOW_SECONDS = 5 * 60


class _Clock(Clock):
    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now

    def now(self) -> float:
        return self._now()


class SlackVerifier:
    """Checks X-Slack-Signature / X-Slack-Request-Timestamp over a raw body."""

    def __init__(self, signing_secret: str, *, now: Callable[[], float] = time.time) -> None:
        self._now = now
        self._verifier = SignatureVerifier(signing_secret, clock=_Clock(now)) if signing_secret.strip() else None

    def verify(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Raise InvalidSignature unless `body` was signed by Slack within the last five minutes."""
        if self._verifier is None:
            raise InvalidSignature("Slack signing secret is not configured")
        lowered = {k.lower(): v for k, v in headers.items()}
        timestamp = lowered.get("x-slack-request-timestamp", "")
        signature = lowered.get("x-slack-signature", "")
        if not timestamp or not signature:
            raise InvalidSignature("missing Slack signature headers")
        try:
            stamp = int(timestamp)
        except ValueError:
            raise InvalidSignature("malformed Slack request timestamp") from None
        if abs(self._now() - stamp) > WINDOW_SECONDS:
            raise InvalidSignature("stale Slack request timestamp")
        try:
            valid = self._verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
        except UnicodeDecodeError:
            valid = False
        if not valid:
            raise InvalidSignature("bad Slack signature")


def sign(signing_secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack would send with `body` (used by tests and `handoff replay`)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=stamp, body=body)
    return {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature or ""}
