"""Inline custom emoji: only text between tags changes, only shortcodes the post names and that
are copied here, and nothing from the other server's text can break out of the markup."""

from __future__ import annotations

from app.services.remote_emojis import ShownEmoji
from app.web.custom_emoji import html_with_emojis, text_with_emojis

BLOB = ShownEmoji(
    "blobcat", "http://a.test/media/cache/emojis/ab/ab12.png", "http://a.test/media/cache/emojis/ab/ab12.png"
)


def test_only_text_between_tags_is_replaced() -> None:
    html = '<p>Hi :blobcat: <a href="https://x.test/:blobcat:/" title=":blobcat:">:other:</a></p>'
    shown = str(html_with_emojis(html, [BLOB]))
    assert shown.count('<img class="custom-emoji"') == 1
    assert 'href="https://x.test/:blobcat:/" title=":blobcat:"' in shown
    assert ":other:" in shown and 'alt=":blobcat:"' in shown


def test_a_content_warning_is_escaped_before_its_emoji_are_inlined() -> None:
    shown = str(text_with_emojis('<script>alert(1)</script> :blobcat: ":x', [BLOB]))
    assert "<script>" not in shown and "&lt;script&gt;" in shown
    assert f'<img class="custom-emoji" src="{BLOB.url}"' in shown


def test_without_copies_the_text_stays_as_it_was() -> None:
    assert str(html_with_emojis("<p>:blobcat:</p>", [])) == "<p>:blobcat:</p>"
    assert str(text_with_emojis("a < b :blobcat:", [])) == "a &lt; b :blobcat:"
