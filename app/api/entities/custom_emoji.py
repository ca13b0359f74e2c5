"""Mastodon's CustomEmoji entity, for a post's or an account's emoji copied here."""

from __future__ import annotations

from typing import Any

from app.services.remote_emojis import ShownEmoji


def custom_emoji_entity(emoji: ShownEmoji) -> dict[str, Any]:
    """Pointing at the copy here; another server's emoji is never offered in this server's picker."""
    return {
        "shortcode": emoji.shortcode,
        "url": emoji.url,
        "static_url": emoji.static_url,
        "visible_in_picker": False,
    }


__all__ = ["custom_emoji_entity"]
