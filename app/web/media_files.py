"""Serving media files from the store: only the types the pipeline writes, never as HTML or SVG.

Every file under /media was written by Herold itself (re-encoded pictures, converted video and
audio), and is served with the one content type its extension stands for, `nosniff`, and a
sandboxing Content-Security-Policy, so even a file that somehow held markup could not run as a
page of Herold's origin. Names are unguessable and never reused, so caches may keep them forever.

With an object store (S3_BUCKET) the files are read from S3_PUBLIC_URL and Herold hands out those
URLs; a /media/<key> URL still met (one given out before the switch, with the files copied into
the bucket) is redirected there for good.
"""

from __future__ import annotations

import asyncio
import re

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, RedirectResponse, Response

from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import NotFound
from app.services.media_store import MEDIA_CACHE_CONTROL, MEDIA_URL_PREFIX, SCRATCH_FOLDER, SERVED_TYPES

router = APIRouter()

_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*/[A-Za-z0-9_-]+\.([a-z0-9]+)$")
MEDIA_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": MEDIA_CACHE_CONTROL,
    "Cross-Origin-Resource-Policy": "cross-origin",
    "Access-Control-Allow-Origin": "*",
}


@router.api_route(MEDIA_URL_PREFIX + "/{key:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def media_file(key: str, context: AppContext = Depends(get_context)) -> Response:
    match = _KEY_RE.match(key)
    content_type = SERVED_TYPES.get(match.group(1)) if match else None
    if match is None or content_type is None or key.startswith(f"{SCRATCH_FOLDER}/"):
        raise NotFound("no such file")
    try:
        path = context.media.local_path(key)
    except ValueError:
        raise NotFound("no such file") from None
    if path is None:
        return RedirectResponse(
            context.media.url(key), status_code=301, headers={"Cache-Control": MEDIA_CACHE_CONTROL}
        )
    if not await asyncio.to_thread(path.is_file):
        raise NotFound("no such file")
    return FileResponse(path, media_type=content_type, headers=MEDIA_HEADERS)


__all__ = ["MEDIA_HEADERS", "router"]
