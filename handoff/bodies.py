"""Reading request bodies: the whole body however it is framed, within a size limit.

A body reaches the server in as many reads as the network makes of it (TCP segments, a
slow sender, `Transfer-Encoding: chunked`); a signature covers all of it, so every
endpoint that reads a body reads it here, to its end. Errors are JSON `{"error": ...}`:
413 past the limit (announced by Content-Length or found while reading), 400 for JSON
that does not parse or nests deeper than `MAX_DEPTH` arrays/objects (no provider sends more
than a handful of levels; a deeper value would only exhaust the stack of code that walks it).
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

MAX_DEPTH = 64


def too_large(limit: int, actual: int) -> web.HTTPRequestEntityTooLarge:
    """The 413 for a body of `actual` bytes over `limit`."""
    return web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=actual,
                                         text=json.dumps({"error": f"body too large (limit {limit} bytes)"}),
                                         content_type="application/json")


def bad_request(message: str) -> web.HTTPBadRequest:
    """A 400 with a JSON `{"error": message}` body."""
    return web.HTTPBadRequest(text=json.dumps({"error": message}), content_type="application/json")


async def read_body(request: web.Request, limit: int) -> bytes:
    """The raw body, all of it; raises the 413 `too_large` past `limit` bytes.

    Reads until the end of the payload: `StreamReader.read(n)` alone returns whatever the
    first network read brought, which is only part of a body split over several segments.
    """
    if request.content_length is not None and request.content_length > limit:
        raise too_large(limit, request.content_length)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise too_large(limit, size)
        chunks.append(chunk)
    return b"".join(chunks)


def loads(body: bytes | str) -> Any:
    """Decode JSON; ValueError (with a short reason) for bad UTF-8, bad JSON or nesting deeper than
    `MAX_DEPTH`."""
    try:
        value = json.loads(body)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except UnicodeDecodeError:
        raise ValueError("body is not UTF-8") from None
    # Fewer brackets than the limit cannot nest past it: most bodies skip the walk.
    opening = ("[", "{") if isinstance(body, str) else (b"[", b"{")
    if body.count(opening[0]) + body.count(opening[1]) > MAX_DEPTH and _depth(value) > MAX_DEPTH:  # type: ignore[arg-type]
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels")
    return value


def _depth(value: Any) -> int:
    """How many arrays/objects deep `value` nests (iterative: safe for any depth)."""
    if not isinstance(value, (dict, list)):
        return 0
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        children = item.values() if isinstance(item, dict) else item
        stack.extend([(child, level + 1) for child in children if isinstance(child, (dict, list))])
    return deepest


async def read_json(request: web.Request, limit: int, *, empty: Any = None) -> Any:
    """The body decoded as JSON (`empty` when there is no body); 400 when it is not JSON, 413 past `limit`."""
    body = await read_body(request, limit)
    if not body.strip():
        if empty is not None:
            return empty
        raise bad_request("body is empty: expected JSON")
    try:
        return loads(body)
    except ValueError as exc:
        raise bad_request(f"body is not valid JSON: {exc}") from None


async def read_json_object(request: web.Request, limit: int, *, empty: dict[str, Any] | None = None
                           ) -> dict[str, Any]:
    """`read_json` that must be a JSON object; 400 otherwise."""
    data = await read_json(request, limit, empty=empty)
    if not isinstance(data, dict):
        raise bad_request("body must be a JSON object")
    return data
