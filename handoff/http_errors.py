"""Every error answer is JSON `{"error": message}`, whichever layer raised it.

aiohttp answers an unknown path (404), a wrong method (405, with its `Allow` header) and
an oversized body (413) in plain text; handlers raise `web.HTTPException`s too. The
middleware here rewrites any 4xx/5xx that is not JSON yet, keeping its status and headers,
answers the desk's errors (`handoff.errors.DeskError` and kin) as their `status` and `json()`,
and answers an unexpected exception with a JSON 500 that says nothing of its cause (the
cause goes to the log).
"""

from __future__ import annotations

import logging
from typing import Any

from aiohttp import web

from handoff.errors import DeskError

log = logging.getLogger(__name__)

_KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")


def _json_error(status: int, message: str, headers: Any = None) -> web.Response:
    kept = {k: headers[k] for k in _KEPT_HEADERS if headers is not None and k in headers}
    return web.json_response({"error": message}, status=status, headers=kept)


def desk_error(exc: DeskError) -> web.Response:
    """The answer to a desk error: its status and JSON body; a 413 closes the connection instead
    of reading the rest of the body."""
    response = web.json_response(exc.json(), status=exc.status)
    if exc.status == 413:
        response.force_close()
    return response


@web.middleware
async def json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    """Answer every error as JSON; a handler's own JSON error passes through unchanged."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or exc.content_type == "application/json":
            raise
        return _json_error(exc.status, (exc.reason or "error").lower(), exc.headers)
    except DeskError as exc:
        return desk_error(exc)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return _json_error(500, "internal server error")
    return response
