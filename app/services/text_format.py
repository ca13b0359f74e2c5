"""Turning plain text typed by a staff member into post HTML, the way Mastodon renders statuses.

Mentions, hashtags and URLs are recognised with the same rules Mastodon uses, so a post looks the
same here as on a Mastodon server, and the markup (``h-card``/``u-url mention`` spans, ``mention
hashtag`` links, ``invisible``/``ellipsis`` link shortening) is what Mastodon-compatible clients
expect.  URLs are found first and mentions and hashtags only outside them, so the ``@`` in
``https://example.com/@alice`` and the ``#`` in ``https://example.com/#top`` are left alone.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Final, Literal

__all__ = [
    "HASHTAG_RE",
    "MENTION_RE",
    "URL_RE",
    "extract_hashtags",
    "extract_mentions",
    "render_plain_text",
]

# Mastodon's MENTION_RE, plus an optional port on the domain so that test and self-hosted
# instances such as "@bob@localhost:8000" can be addressed.  The look-behind keeps "@" inside
# e-mail addresses ("mail@example.com") and URL paths or queries from starting a mention.
MENTION_RE: Final = re.compile(
    r"(?<![=/\w@])@"
    r"(?P<username>[A-Za-z0-9_]+(?:[A-Za-z0-9_.\-]*[A-Za-z0-9_])?)"
    r"(?:@(?P<domain>[\w.\-]*\w(?::[0-9]{1,5}(?![0-9]))?))?"
)

# "#" then unicode letters, digits and underscores (with combining accents, so a decomposed
# "é" does not end the tag), at least one of them not a digit: "#1" is a number, not a tag.
# Like Mastodon, "#" after a word character, "=", "/" or ")" is not a tag, and neither is "&#..."
# which is how people type character references.
_TAG_CHAR: Final = r"[\w\u0300-\u036f]"
HASHTAG_RE: Final = re.compile(
    rf"(?<![=/)&\w\u0300-\u036f])#(?P<tag>{_TAG_CHAR}*[^\W\d_]{_TAG_CHAR}*)",
)

# Candidate http(s) URLs; _trim_url then drops trailing punctuation that belongs to the sentence.
URL_RE: Final = re.compile(r"(?<![\w/@.:])(?i:https?)://[^\s<>\"\x00-\x1f\x7f]+")

_TRAILING_URL_PUNCTUATION: Final = frozenset(".,:;!?'\"*")
_CLOSING_TO_OPENING: Final = {")": "(", "]": "[", "}": "{"}
_URL_PREFIX_RE: Final = re.compile(r"(?i:https?://(?:www\.)?)")
_URL_WITH_HOST_RE: Final = re.compile(r"(?i:https?)://[\w\[]")
# Mastodon shows at most this many characters of a link after the scheme and "www.".
_URL_DISPLAY_LENGTH: Final = 30
_PARAGRAPH_SPLIT_RE: Final = re.compile(r"\n[ \t]*(?:\n[ \t]*)+")
LINK_REL: Final = "nofollow noopener noreferrer"

MentionKey = tuple[str, str | None]


@dataclass(frozen=True, slots=True)
class _Token:
    kind: Literal["text", "url", "mention", "hashtag"]
    text: str
    username: str = ""
    domain: str | None = None


def _trim_url(url: str) -> str:
    """Drop sentence punctuation and unbalanced closing brackets from the end of a URL."""
    while url:
        last = url[-1]
        category = unicodedata.category(last)
        if last in _TRAILING_URL_PUNCTUATION or category in ("Pi", "Pf"):
            url = url[:-1]
        elif last in _CLOSING_TO_OPENING:
            # "https://en.wikipedia.org/wiki/Foo_(bar)" keeps its ")", "(see https://x.org)" does not.
            if url.count(last) <= url.count(_CLOSING_TO_OPENING[last]):
                break
            url = url[:-1]
        elif not last.isascii() and category in ("Po", "Pe"):
            # "。", "、", "」", "…" and friends end sentences in many scripts.
            url = url[:-1]
        else:
            break
    return url


def _url_spans(line: str) -> Iterator[tuple[int, int]]:
    for match in URL_RE.finditer(line):
        url = _trim_url(match.group())
        if _URL_WITH_HOST_RE.match(url):
            yield match.start(), match.start() + len(url)


def _mentions_and_hashtags(segment: str) -> list[tuple[int, int, _Token]]:
    found: list[tuple[int, int, _Token]] = []
    for match in MENTION_RE.finditer(segment):
        token = _Token("mention", match.group(), match.group("username"), match.group("domain"))
        found.append((match.start(), match.end(), token))
    for match in HASHTAG_RE.finditer(segment):
        found.append((match.start(), match.end(), _Token("hashtag", match.group(), match.group("tag"))))
    found.sort(key=lambda item: item[0])
    return found


def _tokenize_line(line: str) -> list[_Token]:
    tokens: list[_Token] = []

    def add_segment(segment: str) -> None:
        position = 0
        for start, end, token in _mentions_and_hashtags(segment):
            if start < position:
                continue
            if start > position:
                tokens.append(_Token("text", segment[position:start]))
            tokens.append(token)
            position = end
        if position < len(segment):
            tokens.append(_Token("text", segment[position:]))

    position = 0
    for start, end in _url_spans(line):
        add_segment(line[position:start])
        tokens.append(_Token("url", line[start:end]))
        position = end
    add_segment(line[position:])
    return tokens


def _normalize_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _tokens(text: str) -> Iterator[_Token]:
    for line in _normalize_newlines(text).split("\n"):
        yield from _tokenize_line(line)


def _mention_key(username: str, domain: str | None) -> MentionKey:
    return (username.lower(), domain.lower() if domain is not None else None)


def extract_mentions(text: str) -> list[tuple[str, str | None]]:
    """``(username, domain)`` for each ``@username`` / ``@username@domain[:port]`` in the text.

    Returned as written, first occurrence first; repeats that differ only in letter case are
    dropped, since usernames and domains are case-insensitive.
    """
    seen: set[MentionKey] = set()
    mentions: list[tuple[str, str | None]] = []
    for token in _tokens(text):
        if token.kind != "mention":
            continue
        key = _mention_key(token.username, token.domain)
        if key not in seen:
            seen.add(key)
            mentions.append((token.username, token.domain))
    return mentions


def extract_hashtags(text: str) -> list[str]:
    """Hashtag names (without ``#``) as first written, without case-insensitive repeats."""
    seen: set[str] = set()
    tags: list[str] = []
    for token in _tokens(text):
        if token.kind != "hashtag":
            continue
        key = unicodedata.normalize("NFC", token.username).casefold()
        if key not in seen:
            seen.add(key)
            tags.append(token.username)
    return tags


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def _link_html(url: str) -> str:
    prefix_match = _URL_PREFIX_RE.match(url)
    prefix = prefix_match.group() if prefix_match else ""
    rest = url[len(prefix) :]
    display, suffix = rest[:_URL_DISPLAY_LENGTH], rest[_URL_DISPLAY_LENGTH:]
    display_class = "ellipsis" if suffix else ""
    return (
        f'<a href="{_escape(url)}" target="_blank" rel="{LINK_REL}" translate="no">'
        f'<span class="invisible">{_escape(prefix)}</span>'
        f'<span class="{display_class}">{_escape(display)}</span>'
        f'<span class="invisible">{_escape(suffix)}</span></a>'
    )


def _mention_html(username: str, href: str) -> str:
    return (
        f'<span class="h-card" translate="no"><a href="{_escape(href)}" class="u-url mention">'
        f"@<span>{_escape(username)}</span></a></span>"
    )


def _hashtag_html(tag: str, href: str) -> str:
    return f'<a href="{_escape(href)}" class="mention hashtag" rel="tag">#<span>{_escape(tag)}</span></a>'


def _render_line(
    line: str,
    mention_hrefs: Mapping[MentionKey, str],
    folded_mention_hrefs: Mapping[MentionKey, str],
    hashtag_href: Callable[[str], str],
) -> str:
    parts: list[str] = []
    for token in _tokenize_line(line):
        if token.kind == "url":
            parts.append(_link_html(token.text))
        elif token.kind == "hashtag":
            parts.append(_hashtag_html(token.username, hashtag_href(token.username)))
        elif token.kind == "mention":
            key = (token.username, token.domain)
            href = mention_hrefs.get(key) or folded_mention_hrefs.get(_mention_key(*key))
            parts.append(_mention_html(token.username, href) if href else _escape(token.text))
        else:
            parts.append(_escape(token.text))
    return "".join(parts)


def render_plain_text(
    text: str,
    *,
    mention_hrefs: Mapping[tuple[str, str | None], str],
    hashtag_href: Callable[[str], str],
) -> str:
    """Post HTML for plain text: escaped, ``<p>`` per paragraph, ``<br>`` per line break.

    URLs are linked Mastodon-style, mentions found in ``mention_hrefs`` (keyed like
    :func:`extract_mentions` returns them) become h-card links and other mentions stay text,
    hashtags link to ``hashtag_href(tag)``.
    """
    text = _normalize_newlines(text).strip()
    if not text:
        return ""
    # Lookups fall back to a case-insensitive match because extract_mentions returns only the
    # first spelling of "@Alice" / "@alice".
    folded = {_mention_key(username, domain): href for (username, domain), href in mention_hrefs.items()}
    paragraphs = []
    for paragraph in _PARAGRAPH_SPLIT_RE.split(text):
        lines = [_render_line(line, mention_hrefs, folded, hashtag_href) for line in paragraph.split("\n")]
        paragraphs.append(f"<p>{'<br>'.join(lines)}</p>")
    return "".join(paragraphs)
