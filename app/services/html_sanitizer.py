"""Sanitising HTML received from other fediverse servers, and turning HTML into plain text.

Remote HTML is parsed with a spec-compliant HTML5 parser (the html5lib copy that ships inside
bleach) and re-serialised from the parsed tree through an allowlist.  We do not use
``bleach.clean`` itself: its tokenizer turns disallowed tags into text *before* tree
construction, so ``<script>``/``<style>`` bodies survive as visible text and raw-text elements
are not parsed the way a browser parses them.  Walking the real tree lets us drop dangerous
elements together with their content, and because the output is produced by our own serialiser
(only allowlisted tags, every attribute quoted and escaped, every text node escaped) it cannot
re-parse into anything other than what we emitted.

The allowlists mirror Mastodon's ``Sanitize::Config::MASTODON_STRICT`` so that what we show
matches what Mastodon users see.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from typing import Any, Final, NamedTuple

from bleach._vendor import html5lib

__all__ = ["html_to_plain_text", "sanitize_remote_html"]

ALLOWED_TAGS: Final = frozenset(
    {
        "p",
        "br",
        "a",
        "span",
        "del",
        "pre",
        "code",
        "em",
        "strong",
        "b",
        "i",
        "u",
        "ul",
        "ol",
        "li",
        "blockquote",
    }
)

# Elements whose content is code, styling or embedded documents rather than readable text: they
# are removed together with everything inside them.  This is the Sanitize gem's default
# ``remove_contents`` list (used by Mastodon) plus the other active-content containers.
REMOVED_WITH_CONTENT: Final = frozenset(
    {
        "script",
        "style",
        "iframe",
        "frame",
        "frameset",
        "object",
        "embed",
        "applet",
        "svg",
        "math",
        "template",
        "noscript",
        "noembed",
        "noframes",
        "plaintext",
        "xmp",
        "head",
        "title",
    }
)

ALLOWED_LINK_SCHEMES: Final = frozenset(
    {"http", "https", "dat", "dweb", "ipfs", "ipns", "ssb", "gopher", "xmpp", "magnet", "gemini"}
)

# Microformat and link-shortening classes that Mastodon's web UI and clients rely on.
ALLOWED_CLASSES: Final = frozenset({"h-card", "u-url", "mention", "hashtag", "ellipsis", "invisible"})

LINK_REL: Final = "nofollow noopener noreferrer"
# rel tokens from the remote document worth keeping next to ours: clients use rel="tag" to
# recognise hashtag links.
_KEPT_REL_TOKENS: Final = ("tag",)

# Blocks whose tags we drop: their content has to stay visually separated from its neighbours,
# otherwise "<h3>Title</h3><div>Body</div>" would read "TitleBody".
_UNWRAPPED_BLOCKS: Final = frozenset(
    {
        "address",
        "article",
        "aside",
        "caption",
        "center",
        "dd",
        "details",
        "dialog",
        "dir",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hgroup",
        "hr",
        "legend",
        "listing",
        "main",
        "menu",
        "nav",
        "section",
        "summary",
        "table",
        "tbody",
        "td",
        "tfoot",
        "th",
        "thead",
        "tr",
    }
)
_ALLOWED_BLOCKS: Final = frozenset({"p", "pre", "blockquote", "ul", "ol", "li"})
# The HTML parser does not look for an open <li> to close beyond these elements.
_LIST_ITEM_SCOPE_RESETS: Final = frozenset({"ul", "ol", "blockquote", "pre"})

# For plain text: elements that start a new paragraph, and those that only start a new line.
_PARAGRAPH_ELEMENTS: Final = (_ALLOWED_BLOCKS - {"li"}) | (
    _UNWRAPPED_BLOCKS - {"dd", "dt", "td", "th", "tr", "tbody", "thead", "tfoot", "caption", "summary"}
)
_LINE_ELEMENTS: Final = frozenset({"li", "dd", "dt", "tr", "caption", "summary"})

# The URL parser removes tabs and newlines anywhere and C0 controls/spaces at both ends, so
# "java\tscript:" and " javascript:" are javascript: URLs to a browser.
_URL_STRIPPED_CHARS_RE: Final = re.compile(r"[\t\n\r]")
_URL_EDGE_CHARS: Final = "".join(chr(c) for c in range(0x21))
_SCHEME_RE: Final = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_INTEGER_RE: Final = re.compile(r"-?[0-9]{1,9}")
# Control characters have no business in displayed text and some terminals interpret them.
_CONTROL_CHARS_RE: Final = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HTML_WHITESPACE_RE: Final = re.compile(r"[ \t\n\r\f]+")
_CLASS_SPLIT_RE: Final = re.compile(r"[ \t\n\r\f]+")


# One parser per thread, reused: building one (its dozens of phase objects) cost a fifth of the
# sanitising of a typical post, and every parse resets the parser's per-document state before it
# starts (bleach's Cleaner reuses its parser the same way). Not shared between threads, since a
# parse in progress lives in the parser. A cache of a pure function's tool, not instance state.
_parsers = threading.local()


def _parse_fragment(html: str) -> Any:
    parser = getattr(_parsers, "parser", None)
    if parser is None:
        parser = _parsers.parser = html5lib.HTMLParser(namespaceHTMLElements=False)
    # scripting=True makes <noscript> parse as raw text, as a browser with JavaScript enabled does.
    return parser.parseFragment(html, scripting=True)


def _tag_name(element: Any) -> str | None:
    """The lower-case HTML tag name, or None for comments and foreign (SVG/MathML) elements."""
    tag = element.tag
    if not isinstance(tag, str) or tag.startswith("{"):
        return None
    return tag.lower()


def _escape_text(text: str) -> str:
    text = _CONTROL_CHARS_RE.sub("", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _escape_attribute(value: str) -> str:
    return _escape_text(value).replace('"', "&quot;")


def _safe_href(value: str) -> str | None:
    """The href to emit, or None when the link must not be kept (unknown or missing scheme)."""
    # html5lib has already decoded character references, so "&#106;avascript:" arrives here as
    # "javascript:"; we only need to undo what the URL parser itself ignores.
    href = _URL_STRIPPED_CHARS_RE.sub("", value).strip(_URL_EDGE_CHARS)
    match = _SCHEME_RE.match(href)
    # Relative links are dropped like Mastodon does: they would resolve against our host.
    if match is None or match.group(1).lower() not in ALLOWED_LINK_SCHEMES:
        return None
    return href


def _filter_classes(value: str) -> str:
    kept: list[str] = []
    for name in _CLASS_SPLIT_RE.split(value):
        if name in ALLOWED_CLASSES and name not in kept:
            kept.append(name)
    return " ".join(kept)


def _sanitized_attributes(tag: str, attrib: dict[str, str], href: str | None) -> list[tuple[str, str | None]]:
    attributes: list[tuple[str, str | None]] = []
    if tag == "a":
        assert href is not None
        attributes.append(("href", href))
    if tag in ("a", "span"):
        classes = _filter_classes(attrib.get("class", ""))
        if classes:
            attributes.append(("class", classes))
    if tag == "a":
        remote_rel = _CLASS_SPLIT_RE.split(attrib.get("rel", "").lower())
        rel = " ".join([LINK_REL, *(token for token in _KEPT_REL_TOKENS if token in remote_rel)])
        attributes.append(("rel", rel))
        attributes.append(("target", "_blank"))
    if tag in ("a", "span") and attrib.get("translate", "").strip().lower() == "no":
        attributes.append(("translate", "no"))
    if tag == "ol":
        start = attrib.get("start", "").strip()
        if _INTEGER_RE.fullmatch(start):
            attributes.append(("start", start))
        if "reversed" in attrib:
            attributes.append(("reversed", None))
    if tag == "li":
        value = attrib.get("value", "").strip()
        if _INTEGER_RE.fullmatch(value):
            attributes.append(("value", value))
    return attributes


class _HtmlWriter:
    """Accumulates sanitised output and inserts line breaks where unwrapped blocks used to be."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        # Inline content has been written since the last block boundary or <br>.
        self._line_open = False
        # An unwrapped block ended; a <br> is owed before the next inline content.
        self._break_owed = False
        # Nothing has been written since a <pre> start tag.
        self._just_opened_pre = False

    def text(self, text: str) -> None:
        if not text:
            return
        if text.strip(" \t\n\r\f"):
            self._inline()
        # A parser drops one newline right after <pre>; doubling it keeps the one we have.
        if self._just_opened_pre and text.startswith("\n"):
            text = "\n" + text
        self._emit(_escape_text(text))

    def inline_tag(self, markup: str) -> None:
        self._inline()
        self._emit(markup)

    def end_inline_tag(self, markup: str) -> None:
        self._emit(markup)

    def line_break(self) -> None:
        self._flush_owed_break()
        self._emit("<br>")
        self._line_open = False

    def block_tag(self, markup: str) -> None:
        self._emit(markup)
        self._line_open = False
        self._break_owed = False
        self._just_opened_pre = markup.startswith("<pre")

    def start_unwrapped_block(self) -> None:
        if self._line_open:
            self._break_owed = True

    def end_unwrapped_block(self) -> None:
        if self._line_open:
            self._break_owed = True

    def result(self) -> str:
        return "".join(self.parts)

    def _inline(self) -> None:
        self._flush_owed_break()
        self._line_open = True

    def _flush_owed_break(self) -> None:
        if self._break_owed:
            self._emit("<br>")
            self._break_owed = False

    def _emit(self, markup: str) -> None:
        self.parts.append(markup)
        self._just_opened_pre = False


def _start_tag(tag: str, attributes: list[tuple[str, str | None]]) -> str:
    rendered = "".join(
        f" {name}" if value is None else f' {name}="{_escape_attribute(value)}"' for name, value in attributes
    )
    return f"<{tag}{rendered}>"


class _Context(NamedTuple):
    """Where in the *output* tree an element would land."""

    in_link: bool = False
    in_paragraph: bool = False
    # Inside a kept <li> with no kept list, blockquote or pre in between.
    in_list_item: bool = False


def _is_kept(tag: str, context: _Context, href: str | None) -> bool:
    # Unwrapping can bring elements together that a parser never nests (a in a, p in p, li in
    # li, a list in a paragraph); emitting them would re-parse into a different tree, so such
    # elements lose their tag instead.
    if tag not in ALLOWED_TAGS:
        return False
    if tag == "a":
        return href is not None and not context.in_link
    if tag in _ALLOWED_BLOCKS and context.in_paragraph:
        return False
    return not (tag == "li" and context.in_list_item)


def _child_context(tag: str, context: _Context) -> _Context:
    return _Context(
        in_link=context.in_link or tag == "a",
        in_paragraph=context.in_paragraph or tag == "p",
        in_list_item=tag == "li" or (context.in_list_item and tag not in _LIST_ITEM_SCOPE_RESETS),
    )


def sanitize_remote_html(html: str) -> str:
    """Reduce remote HTML to Mastodon's safe subset.

    Disallowed elements are unwrapped (their text is kept) except script-like and embedding
    elements, which are removed with their content.  Links keep only allowed schemes, and get
    ``rel="nofollow noopener noreferrer"`` and ``target="_blank"``.
    """
    if not html:
        return ""
    root = _parse_fragment(html)
    writer = _HtmlWriter()
    writer.text(root.text or "")

    # An explicit stack instead of recursion: remote HTML can nest thousands of levels deep.
    # Items: ("element", element, context), ("text", text, None), ("close", tag, kept).
    stack: list[tuple[str, Any, Any]] = [("element", child, _Context()) for child in reversed(list(root))]
    while stack:
        kind, payload, extra = stack.pop()
        if kind == "text":
            writer.text(payload)
            continue
        if kind == "close":
            tag, kept = payload, extra
            if not kept:
                writer.end_unwrapped_block()
            elif tag in _ALLOWED_BLOCKS:
                writer.block_tag(f"</{tag}>")
            else:
                writer.end_inline_tag(f"</{tag}>")
            continue

        element, context = payload, extra
        if element.tail:
            stack.append(("text", element.tail, None))
        tag = _tag_name(element)
        if tag is None or tag in REMOVED_WITH_CONTENT:
            continue
        if tag == "br":
            writer.line_break()
            continue

        href = _safe_href(element.get("href", "")) if tag == "a" else None
        kept = _is_kept(tag, context, href)
        if kept:
            start = _start_tag(tag, _sanitized_attributes(tag, element.attrib, href))
            if tag in _ALLOWED_BLOCKS:
                writer.block_tag(start)
            else:
                writer.inline_tag(start)
            stack.append(("close", tag, True))
            context = _child_context(tag, context)
        elif tag in _UNWRAPPED_BLOCKS or tag in _ALLOWED_BLOCKS:
            writer.start_unwrapped_block()
            stack.append(("close", tag, False))

        writer.text(element.text or "")
        stack.extend(("element", child, context) for child in reversed(list(element)))

    return writer.result()


class _PlainTextWriter:
    """Accumulates plain text, collapsing whitespace the way a browser lays it out."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self._newlines_owed = 0

    def text(self, text: str, *, preformatted: bool) -> None:
        text = _CONTROL_CHARS_RE.sub("", text)
        if not preformatted:
            text = _HTML_WHITESPACE_RE.sub(" ", text)
            if self._newlines_owed or self._at_line_start() or self._ends_with(" "):
                text = text.lstrip(" ")
        if not text:
            return
        if self._newlines_owed:
            if self.parts:
                trailing = self._trailing_newlines()
                self._trim_trailing_spaces()
                self.parts.append("\n" * max(0, self._newlines_owed - trailing))
            self._newlines_owed = 0
        self.parts.append(text)

    def hard_newline(self) -> None:
        self._trim_trailing_spaces()
        if self._newlines_owed and self.parts:
            self.parts.append("\n" * max(0, self._newlines_owed - self._trailing_newlines()))
        self._newlines_owed = 0
        self.parts.append("\n")

    def boundary(self, newlines: int) -> None:
        self._newlines_owed = max(self._newlines_owed, newlines)

    def result(self) -> str:
        text = "".join(self.parts)
        return "\n".join(line.rstrip(" ") for line in text.split("\n")).strip("\n")

    def _at_line_start(self) -> bool:
        return not self.parts or self._ends_with("\n")

    def _ends_with(self, suffix: str) -> bool:
        return bool(self.parts) and self.parts[-1].endswith(suffix)

    def _trailing_newlines(self) -> int:
        count = 0
        for part in reversed(self.parts):
            stripped = part.rstrip("\n")
            count += len(part) - len(stripped)
            if stripped:
                break
        return count

    def _trim_trailing_spaces(self) -> None:
        while self.parts and self.parts[-1].endswith(" "):
            self.parts[-1] = self.parts[-1].rstrip(" ")
            if not self.parts[-1]:
                self.parts.pop()


def _walk_plain(root: Any) -> Iterator[tuple[str, Any, bool]]:
    """Yield ("text", str, preformatted), ("br", None, _) and ("boundary", newlines, _) events."""
    yield ("text", root.text or "", False)
    stack: list[tuple[str, Any, bool]] = [("element", child, False) for child in reversed(list(root))]
    while stack:
        kind, payload, preformatted = stack.pop()
        if kind != "element":
            yield (kind, payload, preformatted)
            continue
        element = payload
        if element.tail:
            stack.append(("text", element.tail, preformatted))
        tag = _tag_name(element)
        if tag is None or tag in REMOVED_WITH_CONTENT:
            continue
        if tag == "br":
            yield ("br", None, preformatted)
            continue
        newlines = 2 if tag in _PARAGRAPH_ELEMENTS else 1 if tag in _LINE_ELEMENTS else 0
        inner_pre = preformatted or tag in ("pre", "listing", "textarea")
        if newlines:
            yield ("boundary", newlines, preformatted)
            stack.append(("boundary", newlines, preformatted))
        elif tag in ("td", "th"):
            # Table cells on one row read as words separated by spaces.
            stack.append(("text", " ", False))
        yield ("text", element.text or "", inner_pre)
        stack.extend(("element", child, inner_pre) for child in reversed(list(element)))


def html_to_plain_text(html: str) -> str:
    """Readable plain text for previews, notifications, terminals and length counting.

    ``<br>`` becomes a newline, paragraphs are separated by a blank line, character references
    are decoded and every tag is dropped (script-like elements with their content).
    """
    if not html:
        return ""
    writer = _PlainTextWriter()
    for kind, payload, preformatted in _walk_plain(_parse_fragment(html)):
        if kind == "text":
            writer.text(payload, preformatted=preformatted)
        elif kind == "br":
            writer.hard_newline()
        else:
            writer.boundary(payload)
    return writer.result()
