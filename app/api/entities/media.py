"""Mastodon's MediaAttachment entity."""

from __future__ import annotations

from typing import Any

from app.api.entities.common import api_id
from app.models import MediaAttachment, MediaState
from app.services.media import with_focus

KINDS = ("image", "gifv", "video", "audio")


def media_kind(media: MediaAttachment) -> str:
    if media.kind in KINDS:
        return media.kind
    # Remote attachments never cached here: told apart by their declared type, as Mastodon does.
    major = media.media_type.split("/", 1)[0]
    return {"image": "image", "video": "video", "audio": "audio"}.get(major, "unknown")


def media_entity(media: MediaAttachment) -> dict[str, Any]:
    ready = media.state in (MediaState.READY, MediaState.REMOTE)
    url = media.url if ready and media.url else None
    return {
        "id": api_id(media.id),
        "type": media_kind(media),
        "url": url,
        "preview_url": (media.preview_url or url) if ready else None,
        "remote_url": media.remote_url,
        "preview_remote_url": None,
        "text_url": None,
        "meta": with_focus(media.meta or _sizes(media), media),
        "description": media.description,
        "blurhash": media.blurhash,
    }


def _sizes(media: MediaAttachment) -> dict[str, Any]:
    if not (media.width and media.height):
        return {}
    return {
        "original": {
            "width": media.width,
            "height": media.height,
            "size": f"{media.width}x{media.height}",
            "aspect": round(media.width / media.height, 6),
        }
    }


__all__ = ["media_entity", "media_kind"]
