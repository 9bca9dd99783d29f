"""The access log, with secrets taken out: what `handoff serve` logs for every request.

Browsers cannot set headers on a WebSocket, so the desk stream (`/api/v1/stream?token=`) and the
widget socket (`/widget/ws?token=`) carry their bearer tokens in the query string, and Meta's
subscription handshake carries `hub.verify_token`; the desk's one-time sign-in links carry theirs
in the path (`/desk/signin/<token>`). The request line and Referer are logged with those values
replaced by `[redacted]`; everything else is aiohttp's usual access-log line:
`<remote> "<method> <path> HTTP/<v>" <status> <bytes> <seconds>s "<referer>" "<user agent>"`.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import unquote_plus

from aiohttp.abc import AbstractAccessLogger

REDACTED = "[redacted]"
# Query parameters whose values are credentials: token, access_token, hub.verify_token, secret...
SECRET_PARAMETER = re.compile(r"token|secret|password|passwd|signature|api[_-]?key|^key$|^code$|^sig$", re.I)
SECRET_PATHS = ("/desk/signin/",)


def redact(target: str) -> str:
    """A path with query (or a whole URL) with every secret value replaced by `[redacted]`."""
    path, mark, query = target.partition("?")
    for prefix in SECRET_PATHS:
        start = path.find(prefix)
        if start != -1 and len(path) > start + len(prefix):
            path = path[: start + len(prefix)] + REDACTED
    if not mark:
        return path
    fields = []
    for field in query.split("&"):
        name, equals, _ = field.partition("=")
        secret = equals and SECRET_PARAMETER.search(unquote_plus(name))
        fields.append(f"{name}={REDACTED}" if secret else field)
    return f"{path}?{'&'.join(fields)}"


class RedactingAccessLogger(AbstractAccessLogger):
    """aiohttp's access log line with secrets redacted (see the module docstring)."""

    def log(self, request: Any, response: Any, time: float) -> None:
        """Log one finished request on the `aiohttp.access` logger."""
        version = f"{request.version.major}.{request.version.minor}"
        referer = request.headers.get("Referer")
        self.logger.info(
            '%s "%s %s HTTP/%s" %s %s %.6fs "%s" "%s"',
            request.remote or "-", request.method, redact(request.path_qs), version, response.status,
            response.body_length, time, redact(referer) if referer else "-",
            request.headers.get("User-Agent", "-"),
        )


# What the server runner is started with (`handoff serve`, and tests that check the log).
SERVER_OPTIONS: dict[str, Any] = {"access_log_class": RedactingAccessLogger}


def server_options(enabled: bool) -> dict[str, Any]:
    """The runner's options: the redacting access log, or none at all (`HANDOFF_ACCESS_LOG=off`:
    no line per request, for a server whose balancer or proxy logs requests already)."""
    return SERVER_OPTIONS if enabled else {"access_log": None}
