"""A raw HTTP/1.1 client over a socket: the request written in the pieces a network makes of it.

Real requests reach a server split over TCP segments, chunked, or from slow senders;
aiohttp's own client writes a body in one go. `post_in_pieces` writes the head and then each
body piece as its own write, pausing between them, and returns the parsed answer.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any


@dataclass
class RawResponse:
    """A parsed HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        """The body decoded as JSON."""
        return json.loads(self.body)


def split(body: bytes, pieces: int) -> list[bytes]:
    """`body` cut into `pieces` parts of about equal size (never empty ones)."""
    pieces = max(1, min(pieces, len(body)))
    size, extra = divmod(len(body), pieces)
    parts, start = [], 0
    for index in range(pieces):
        end = start + size + (1 if index < extra else 0)
        parts.append(body[start:end])
        start = end
    return parts


def chunked(parts: list[bytes]) -> list[bytes]:
    """`parts` framed with Transfer-Encoding: chunked, one chunk each, then the last chunk."""
    return [b"%x\r\n%s\r\n" % (len(p), p) for p in parts if p] + [b"0\r\n\r\n"]


async def post_in_pieces(url: str, path: str, parts: list[bytes], headers: dict[str, str], *,
                         pause: float = 0.05, chunked_encoding: bool = False, method: str = "POST",
                         timeout: float = 15.0) -> RawResponse:
    """Send one request whose body is written as `parts`, `pause` seconds apart; the answer."""
    host, port = url.split("//", 1)[1].rstrip("/").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        if chunked_encoding:
            head.append("Transfer-Encoding: chunked")
            parts = chunked(parts)
        else:
            head.append(f"Content-Length: {sum(len(p) for p in parts)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1"))
        await writer.drain()
        for part in parts:
            await asyncio.sleep(pause)
            writer.write(part)
            await writer.drain()
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()
    return _parse(raw)


def _parse(raw: bytes) -> RawResponse:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding") == "chunked":
        body = _unchunk(body)
    return RawResponse(status, headers, body)


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2:]
    return out
