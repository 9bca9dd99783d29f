"""The media store: safe names, streaming size limit, ownership, URLs and how files are served."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from handoff.media import MediaStore, UploadError, clean_content_type, safe_filename

PUBLIC = "https://help.example.com"


async def chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


@pytest.fixture
def store(tmp_path: Path) -> MediaStore:
    return MediaStore(tmp_path / "media", PUBLIC, max_bytes=1000)


def test_filenames_and_content_types_are_sanitized() -> None:
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\Users\\ann\\report.pdf") == "report.pdf"
    assert safe_filename('a"b<script>.png') == "a_b_script_.png"
    assert safe_filename("") == "file"
    assert clean_content_type("Image/PNG; charset=binary") == "image/png"
    assert clean_content_type('text/html"\r\nX: y') == "application/octet-stream"
    assert clean_content_type(None) == "application/octet-stream"


async def test_save_get_and_ownership(store: MediaStore) -> None:
    stored = await store.save(chunks(b"hello ", b"file"), filename="../note.txt", content_type="text/plain",
                              owner={"agent_id": 3})
    assert (stored.filename, stored.content_type, stored.size) == ("note.txt", "text/plain", 10)
    assert store.get(stored.id) == stored
    assert store.read(stored) == b"hello file"
    assert store.owned(stored.id, agent_id=3) == stored
    assert store.owned(stored.id, agent_id=4) is None
    assert store.owned(stored.id, visitor_id="v1") is None
    assert store.url(stored) == f"{PUBLIC}/media/{stored.id}/note.txt"
    assert store.for_url(store.url(stored)) == stored
    assert store.for_url(f"https://evil.example/media/{stored.id}/note.txt") is None
    for bad in (None, "", "../../etc/passwd", 42, "x" * 32):
        assert store.get(bad) is None


async def test_oversized_stream_is_refused_and_leaves_nothing(store: MediaStore) -> None:
    with pytest.raises(UploadError) as refused:
        await store.save(chunks(b"0" * 600, b"0" * 600), filename="big.bin", content_type="", owner={})
    assert refused.value.status == 413
    assert list(store.root.iterdir()) == []


async def test_files_from_the_older_widget_folder_are_still_found(store: MediaStore) -> None:
    store.legacy_root.mkdir(parents=True)
    file_id = "A" * 32
    (store.legacy_root / file_id).write_bytes(b"old")
    (store.legacy_root / f"{file_id}.json").write_text(json.dumps(
        {"visitor_id": "v1", "filename": "old.png", "content_type": "image/png", "size": 3}))
    stored = store.owned(file_id, visitor_id="v1")
    assert stored is not None and store.read(stored) == b"old"


async def test_served_files_are_sandboxed(aiohttp_client: Any, store: MediaStore) -> None:
    app = web.Application()
    app.add_routes(store.routes())
    client = await aiohttp_client(app)
    image = await store.save(chunks(b"\x89PNG"), filename="pic.png", content_type="image/png", owner={})
    page = await store.save(chunks(b"<script>alert(1)</script>"), filename="x.html", content_type="text/html",
                            owner={})
    shown = await client.get(f"/media/{image.id}/pic.png")
    assert shown.status == 200 and shown.content_type == "image/png"
    assert shown.headers["Content-Disposition"].startswith("inline")
    downloaded = await client.get(f"/widget/files/{page.id}/x.html")
    assert downloaded.status == 200 and downloaded.content_type == "application/octet-stream"
    assert downloaded.headers["Content-Disposition"] == 'attachment; filename="x.html"'
    for response in (shown, downloaded):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Security-Policy"] == "sandbox; default-src 'none'"
    missing = await client.get("/media/" + "B" * 32 + "/nope.txt")
    assert missing.status == 404 and "error" in await missing.json()


async def test_the_sweep_removes_only_old_uploads_never_attached(store: MediaStore) -> None:
    import os
    import time

    abandoned = await store.save(chunks(b"draft"), filename="a.txt", content_type="text/plain", owner={"agent_id": 1})
    sent = await store.save(chunks(b"sent"), filename="b.txt", content_type="text/plain", owner={"agent_id": 1})
    fresh = await store.save(chunks(b"new"), filename="c.txt", content_type="text/plain", owner={"agent_id": 1})
    attachment = store.attach(sent)
    assert attachment.url == store.url(sent) and store.get(sent.id) == sent  # `attached` is not an owner field
    day_and_more = time.time() - 25 * 3600
    for stored in (abandoned, sent):
        os.utime(store.root / stored.id, (day_and_more, day_and_more))

    assert store.sweep() == 1
    assert store.get(abandoned.id) is None and not (store.root / f"{abandoned.id}.json").exists()
    assert store.read(store.get(sent.id)) == b"sent"
    assert store.read(store.get(fresh.id)) == b"new"
    assert store.sweep() == 0
