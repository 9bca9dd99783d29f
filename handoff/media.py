"""The media store: files customers and agents send, kept on disk and served at capability URLs.

A file is `<HANDOFF_MEDIA_DIR>/files/<id>` with its metadata beside it in `<id>.json` (safe
filename, content type, size and who uploaded it: `visitor_id` for widget visitors,
`agent_id` for agents). Ids are 192-bit random, so the URL is the permission to read a file;
that is what Twilio and Meta need, as they fetch outbound media from
`HANDOFF_PUBLIC_URL/media/<id>/<name>`. Files are never run in our origin: images are served
inline, everything else as a download, always with `nosniff` and a sandbox CSP.
`/widget/files/<id>/<name>` (the widget's URLs before this store existed) keeps working.

A file a message carries is marked `attached` (`attach()`); an upload never attached is removed
by `sweep()` once it is `UNATTACHED_TTL` old, so abandoned uploads do not pile up.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from handoff.schema import Attachment

MAX_FILE_BYTES = 10 * 1024 * 1024
CHUNK_BYTES = 64 * 1024
INLINE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
URL_PREFIXES = ("/media/", "/widget/files/")
_FILE_ID = re.compile(r"^[A-Za-z0-9_-]{32}$")
_META_KEYS = ("filename", "content_type", "size", "attached")
UNATTACHED_TTL = 24 * 3600.0


class UploadError(Exception):
    """An upload the store refuses; `status` is the HTTP answer (400, 413)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status

    def response(self) -> web.Response:
        """The JSON error; a 413 closes the connection instead of reading the rest of the body."""
        response = web.json_response({"error": str(self)}, status=self.status)
        if self.status == 413:
            response.force_close()
        return response


@dataclass(frozen=True)
class StoredFile:
    """One stored file's metadata; `owner` says who uploaded it (`visitor_id` or `agent_id`)."""

    id: str
    filename: str
    content_type: str
    size: int
    owner: dict[str, Any] = field(default_factory=dict)

    @property
    def inline(self) -> bool:
        """True for images a browser may show in place."""
        return self.content_type in INLINE_TYPES


class MediaStore:
    """Saves, finds and serves files under one directory."""

    def __init__(self, media_dir: str | Path, public_url: str, max_bytes: int = MAX_FILE_BYTES) -> None:
        self.root = Path(media_dir) / "files"
        self.legacy_root = Path(media_dir) / "widget"  # widget uploads written before this store existed
        self.public_url = public_url.rstrip("/")
        self.max_bytes = max_bytes

    @classmethod
    def from_settings(cls, settings: Any) -> MediaStore:
        """The store in HANDOFF_MEDIA_DIR, with URLs under HANDOFF_PUBLIC_URL."""
        return cls(settings.media_dir, settings.public_url)

    # -- writing ---------------------------------------------------------------------------

    async def save(self, chunks: AsyncIterable[bytes], *, filename: str, content_type: str,
                   owner: dict[str, Any]) -> StoredFile:
        """Stream `chunks` into a new file; UploadError(413) as soon as it passes the size limit."""
        file_id = secrets.token_urlsafe(24)
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / file_id
        size = 0
        try:
            with path.open("wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise UploadError(413, f"files are limited to {self.max_bytes} bytes")
                    out.write(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        stored = StoredFile(file_id, safe_filename(filename), clean_content_type(content_type), size, dict(owner))
        meta = {**stored.owner, "filename": stored.filename, "content_type": stored.content_type, "size": size}
        (self.root / f"{file_id}.json").write_text(json.dumps(meta))
        return stored

    async def save_upload(self, request: web.Request, owner: dict[str, Any]) -> StoredFile:
        """The `file` field of a multipart/form-data request (RFC 7578), streamed into the store.

        UploadError(400) for a body that is not multipart, has no or another boundary, has no
        `file` field, or ends before the file part's closing boundary (a truncated upload is
        never kept); UploadError(413) past the size limit.
        """
        if (request.content_length or 0) > self.max_bytes + 64 * 1024:
            raise UploadError(413, f"files are limited to {self.max_bytes} bytes")
        try:
            reader = await request.multipart()
            part = await reader.next()
            while part is not None and getattr(part, "name", None) != "file":
                part = await reader.next()
        except (ValueError, AssertionError, KeyError):
            part = None
        if part is None or not hasattr(part, "read_chunk"):
            raise _not_multipart()
        content_type = part.headers.get("Content-Type") or "application/octet-stream"
        return await self.save(_chunks(part), filename=part.filename or "file", content_type=content_type,
                               owner=owner)

    # -- reading ---------------------------------------------------------------------------

    def get(self, file_id: Any) -> StoredFile | None:
        """A stored file's metadata, or None for an unknown or malformed id."""
        path = self._path(file_id)
        if path is None:
            return None
        try:
            meta = json.loads(path.with_name(f"{file_id}.json").read_text())
            owner = {k: v for k, v in meta.items() if k not in _META_KEYS}
            return StoredFile(file_id, meta["filename"], meta["content_type"], int(meta["size"]), owner)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def owned(self, file_id: Any, **owner: Any) -> StoredFile | None:
        """The file when it exists and every given owner field matches (a visitor's, an agent's)."""
        stored = self.get(file_id)
        if stored is None or any(stored.owner.get(k) != v for k, v in owner.items()):
            return None
        return stored

    def for_url(self, url: str | None) -> StoredFile | None:
        """The stored file an absolute URL of ours points at, or None (another host, unknown id)."""
        if not url or not url.startswith(self.public_url + "/"):
            return None
        path = urlsplit(url).path
        for prefix in URL_PREFIXES:
            if path.startswith(prefix):
                return self.get(path[len(prefix):].split("/", 1)[0])
        return None

    def read(self, stored: StoredFile) -> bytes:
        """A stored file's bytes."""
        path = self._path(stored.id)
        if path is None:
            raise FileNotFoundError(stored.id)
        return path.read_bytes()

    def url(self, stored: StoredFile) -> str:
        """The absolute URL providers and browsers fetch the file from."""
        return f"{self.public_url}/media/{stored.id}/{stored.filename}"

    def upload_json(self, stored: StoredFile) -> dict[str, Any]:
        """What an upload endpoint answers: the id to attach, and how the file will look."""
        return {"id": stored.id, "filename": stored.filename, "content_type": stored.content_type,
                "size": stored.size, "url": self.url(stored)}

    def attach(self, stored: StoredFile) -> Attachment:
        """The file as the attachment of a message being written (by URL), marked as attached so
        `sweep()` keeps it."""
        meta_path = self.root / f"{stored.id}.json"
        try:
            meta = json.loads(meta_path.read_text())
            if not meta.get("attached"):
                meta["attached"] = True
                meta_path.write_text(json.dumps(meta))
        except (OSError, ValueError):
            pass  # a file of the legacy folder: it is never swept
        return Attachment(content_type=stored.content_type, url=self.url(stored), filename=stored.filename,
                          size=stored.size)

    def sweep(self, unattached_ttl: float = UNATTACHED_TTL, now: float | None = None) -> int:
        """Remove uploads never attached to a message once older than `unattached_ttl` seconds (and
        stray halves of a file); returns how many files went. Safe to run on several instances."""
        cutoff = (time.time() if now is None else now) - unattached_ttl
        removed = 0
        for path in self.root.glob("*") if self.root.is_dir() else ():
            file_id = path.name.removesuffix(".json")
            if not _FILE_ID.match(file_id) or path.name.endswith(".json"):
                continue
            meta_path = self.root / f"{file_id}.json"
            try:
                if path.stat().st_mtime >= cutoff:
                    continue
                meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
                if meta.get("attached"):
                    continue
                path.unlink(missing_ok=True)
                meta_path.unlink(missing_ok=True)
                removed += 1
            except (OSError, ValueError):
                continue  # another instance swept it meanwhile, or a half-written file
        return removed

    def _path(self, file_id: Any) -> Path | None:
        if not isinstance(file_id, str) or not _FILE_ID.match(file_id):
            return None
        for root in (self.root, self.legacy_root):
            if (root / file_id).is_file():
                return root / file_id
        return None

    # -- serving ---------------------------------------------------------------------------

    def routes(self) -> list[web.RouteDef]:
        """GET /media/{id}/{name}, and the widget's older /widget/files/{id}/{name}."""
        return [web.get(prefix + "{file_id}/{filename}", self.serve) for prefix in URL_PREFIXES]

    async def serve(self, request: web.Request) -> web.StreamResponse:
        """One stored file: images inline, anything else as an attachment, sandboxed."""
        stored = self.get(request.match_info["file_id"])
        path = self._path(stored.id) if stored else None
        if stored is None or path is None:
            return web.json_response({"error": "no such file"}, status=404)
        response = web.FileResponse(path)
        response.content_type = stored.content_type if stored.inline else "application/octet-stream"
        disposition = "inline" if stored.inline else "attachment"
        response.headers["Content-Disposition"] = f'{disposition}; filename="{stored.filename}"'
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = "sandbox; default-src 'none'"
        response.headers["Cache-Control"] = "private, max-age=3600"
        return response


def attachment_json(attachment: Attachment) -> dict[str, Any]:
    """An attachment as stored on a message and shown to clients (no inline bytes); a file that
    was not kept has no `url` and a `note` saying why ("not kept: too large")."""
    shown: dict[str, Any] = {
        "url": attachment.url,
        "filename": attachment.filename,
        "content_type": attachment.content_type,
        "size": attachment.size,
    }
    if attachment.note:
        shown["note"] = attachment.note
    return shown


def safe_filename(name: str) -> str:
    """A filename safe in a URL path and a Content-Disposition header: no directories, no quotes."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "file"
    return cleaned[:100]


def clean_content_type(value: str | None) -> str:
    """A lower-case `type/subtype` without parameters; application/octet-stream when unusable."""
    kind = (value or "").split(";")[0].strip().lower()
    return kind if re.fullmatch(r"[a-z0-9.+-]+/[a-z0-9.+-]+", kind) else "application/octet-stream"


def _not_multipart() -> UploadError:
    return UploadError(400, "expected multipart/form-data with a file field")


async def _chunks(part: Any) -> AsyncIterator[bytes]:
    """A multipart part's bytes; UploadError(400) when the body ends before the part's boundary."""
    try:
        while chunk := await part.read_chunk(CHUNK_BYTES):
            yield chunk
    except (ValueError, AssertionError):
        raise _not_multipart() from None
    if not part.at_eof():  # the stream ended without the closing boundary: truncated
        raise _not_multipart()
