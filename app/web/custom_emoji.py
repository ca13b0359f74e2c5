"""`:shortcode:` in a post's text shown as the custom emoji's picture, copied here.

Only the text between tags is touched (a shortcode inside a link's address or an attribute stays
as it is), and only shortcodes the post itself names and Herold has copied (the read model's
`PostView.emojis`); everything else stays text.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from markupsafe import Markup, escape

from app.services.remote_emojis import ShownEmoji

_TAG_RE = re.compile(r"(<[^>]*>)")
_SHORTCODE_RE = re.compile(r":([A-Za-z0-9_]{1,255}):")


def _image(emoji: ShownEmoji) -> str:
    name = escape(f":{emoji.shortcode}:")
    return (
        f'<img class="custom-emoji" src="{escape(emoji.url)}" alt="{name}" title="{name}" '
        'draggable="false" loading="lazy">'
    )


def _replace_in_text(text: str, emojis: dict[str, ShownEmoji]) -> str:
    def swap(match: re.Match[str]) -> str:
        emoji = emojis.get(match.group(1))
        return _image(emoji) if emoji is not None else match.group(0)

    return _SHORTCODE_RE.sub(swap, text)


def html_with_emojis(html: str | None, emojis: Sequence[ShownEmoji]) -> Markup:
    """Sanitized post HTML with its copied emoji inline."""
    html = html or ""
    if not emojis:
        return Markup(html)  # noqa: S704 - stored post HTML is sanitized on the way in
    by_code = {emoji.shortcode: emoji for emoji in emojis}
    parts = _TAG_RE.split(html)
    return Markup(  # noqa: S704 - sanitized HTML, with images built from escaped values
        "".join(part if part.startswith("<") else _replace_in_text(part, by_code) for part in parts)
    )


def text_with_emojis(text: str | None, emojis: Sequence[ShownEmoji]) -> Markup:
    """Plain text (a content warning) escaped, with its copied emoji inline."""
    escaped = str(escape(text or ""))
    if not emojis:
        return Markup(escaped)  # noqa: S704 - escaped just above
    return Markup(_replace_in_text(escaped, {emoji.shortcode: emoji for emoji in emojis}))  # noqa: S704


__all__ = ["html_with_emojis", "text_with_emojis"]
