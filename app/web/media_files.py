"""Serving media files from the store: only the types the pipeline writes, never as HTML or SVG.

Every file under /media was written by Herold itself (re-encoded pictures, converted video and
audio), and is served with the one content type its extension stands for, `nosniff`, and a
sandboxing Content-Security-Policy, so even a file that somehow held markup could not run as a
page of Herold's origin. Names are unguessable and never reused, so caches may keep them forever.
"""

from __future__ import annotations

import asyncio
import re

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse, Response

from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import NotFound
from app.services.media_store import MEDIA_URL_PREFIX, SERVED_TYPES, MediaStore

router = APIRouter()

_KEY_RE = re.compile(r"^[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*/[A-Za-z0-9_-]+\.([a-z0-9]+)$")
MEDIA_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "default-src 'none'; sandbox",
    "Cache-Control": "public, max-age=31536000, immutable",
    "Cross-Origin-Resource-Policy": "cross-origin",
    "Access-Control-Allow-Origin": "*",
}


@router.api_route(MEDIA_URL_PREFIX + "/{key:path}", methods=["GET", "HEAD"], include_in_schema=False)
async def media_file(key: str, context: AppContext = Depends(get_context)) -> Response:
    match = _KEY_RE.match(key)
    content_type = SERVED_TYPES.get(match.group(1)) if match else None
    if match is None or content_type is None or key.startswith("tmp/"):
        raise NotFound("no such file")
    try:
        path = MediaStore(context).path(key)
    except ValueError:
        raise NotFound("no such file") from None
    if not await asyncio.to_thread(path.is_file):
        raise NotFound("no such file")
    return FileResponse(path, media_type=content_type, headers=MEDIA_HEADERS)


__all__ = ["MEDIA_HEADERS", "router"]
