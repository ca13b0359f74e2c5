import re
from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.services.html_sanitizer import (
    ALLOWED_CLASSES,
    ALLOWED_TAGS,
    html_to_plain_text,
    sanitize_remote_html,
)

REL = "nofollow noopener noreferrer"


class _Collector(HTMLParser):
    """Reads the sanitiser's output back with the stdlib parser, independent of html5lib."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.raw_start_tags: list[str] = []
        self.comments: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self.raw_start_tags.append(self.get_starttag_text() or "")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)


def _collect(html: str) -> _Collector:
    collector = _Collector()
    collector.feed(html)
    collector.close()
    return collector


def _normalized_scheme(href: str) -> str:
    compact = re.sub(r"[\x00-\x20\x7f]+", "", href).lower()
    return compact.split(":", 1)[0] if ":" in compact else ""


def assert_safe(output: str) -> None:
    lowered = output.lower()
    assert "<script" not in lowered
    assert "<style" not in lowered
    assert "<!--" not in output
    # Text is escaped, so every "<" in the output opens one of our tags, and ">" never occurs
    # inside an attribute value: the regex below sees exactly the tags.
    for raw_tag in re.findall(r"<[^>]*>", output):
        assert not re.search(r"[\s/\"']on\w+\s*=", raw_tag, re.IGNORECASE), raw_tag
        assert not re.search(r"style\s*=", raw_tag, re.IGNORECASE), raw_tag
        assert not re.search(r"(?:javascript|vbscript|data|livescript)\s*:", raw_tag, re.IGNORECASE), raw_tag
    collector = _collect(output)
    assert not collector.comments
    for tag, attrs in collector.tags:
        assert tag in ALLOWED_TAGS, tag
        for name in attrs:
            assert not name.startswith("on"), (tag, name)
            assert name in {"href", "rel", "target", "class", "translate", "start", "reversed", "value"}
        if tag == "a":
            assert _normalized_scheme(attrs["href"] or "") in {"http", "https", "gemini", "magnet", "xmpp"}
            assert attrs["rel"] is not None and attrs["rel"].startswith(REL)
            assert attrs["target"] == "_blank"
        if "class" in attrs:
            assert set((attrs["class"] or "").split()) <= ALLOWED_CLASSES


# (payload, whether the text after the payload must survive).  A few payloads leave a tag or a
# raw-text element open, and a browser would swallow the rest of the document too.
XSS_PAYLOADS: list[tuple[str, bool]] = [
    ("<script>alert(1)</script>", True),
    ("<SCRIPT SRC=https://evil.example/x.js></SCRIPT>", True),
    ("<scr<script>ipt>alert(1)</script>", True),
    ("<script\x00>alert(1)</script>", True),
    ("<img src=x onerror=alert(1)>", True),
    ('<img src="x" onerror="alert(1)"/>', True),
    ("<svg onload=alert(1)>", False),
    ("<svg><script>alert(1)</script></svg>", True),
    ("<body onload=alert(1)>", True),
    ('<a href="javascript:alert(1)">click</a>', True),
    ('<a href="JaVaScRiPt:alert(1)">click</a>', True),
    ('<a href="java\tscript:alert(1)">click</a>', True),
    ('<a href="java\nscript:alert(1)">click</a>', True),
    ('<a href="java&#x09;script:alert(1)">click</a>', True),
    ('<a href="&#106;avascript:alert(1)">click</a>', True),
    ('<a href="&#x6A;&#x61;&#x76;&#x61;&#x73;&#x63;&#x72;&#x69;&#x70;&#x74;&#x3A;alert(1)">click</a>', True),
    (
        '<a href="&#0000106&#0000097&#0000118&#0000097&#0000115&#0000099'
        '&#0000114&#0000105&#0000112&#0000116&#0000058alert(1)">click</a>',
        True,
    ),
    ('<a href="javascript&colon;alert(1)">click</a>', True),
    ('<a href="  javascript:alert(1)">click</a>', True),
    ('<a href="\x01javascript:alert(1)">click</a>', True),
    ('<a href="data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==">click</a>', True),
    ('<a href="DATA:text/html,<script>alert(1)</script>">click</a>', True),
    ('<a href="vbscript:msgbox(1)">click</a>', True),
    ('<a href="https://ok.example/" onclick="alert(1)" onmouseover="alert(2)">click</a>', True),
    ('<iframe srcdoc="<script>alert(1)</script>"></iframe>', True),
    ('<iframe src="javascript:alert(1)">fallback</iframe>', True),
    (
        '<form action="javascript:alert(1)"><input type="submit" formaction="javascript:alert(2)"></form>',
        True,
    ),
    ('<button formaction="javascript:alert(1)">go</button>', True),
    ("<style>body{background:url(javascript:alert(1))}</style>", True),
    ('<p style="width: expression(alert(1))">styled</p>', True),
    ('<span style="background:url(javascript:alert(1))">styled</span>', True),
    ('<div style="behavior: url(xss.htc)">styled</div>', True),
    ("<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>", False),
    ('<math href="javascript:alert(1)">CLICK</math>', True),
    ('<svg><a xlink:href="javascript:alert(1)"><text x="20" y="20">XSS</text></a></svg>', True),
    ('<svg><foreignObject><p><a href="javascript:alert(1)">x</a></p></foreignObject></svg>', True),
    ('<svg></p><style><a id="</style><img src=1 onerror=alert(1)>">', False),
    ('<base href="javascript:alert(1)//">', True),
    ('<meta http-equiv="refresh" content="0;url=javascript:alert(1)">', True),
    ('<link rel="stylesheet" href="javascript:alert(1)">', True),
    ("<img src=x onerror=alert(1)", False),
    ("<a href='https://ok.example/' onmouseover=alert(1) x='", False),
    ("<!--><script>alert(1)</script>-->", True),
    ("<!-- --!><script>alert(1)</script> -->", True),
    ("<![CDATA[<script>alert(1)</script>]]>", True),
    ('<noscript><p title="</noscript><img src=x onerror=alert(1)>">', True),
    ("<textarea></textarea><script>alert(1)</script>", True),
    ("<textarea><script>alert(1)</script></textarea>", True),
    ("<title><script>alert(1)</script></title>", True),
    ("<xmp><script>alert(1)</script></xmp>", True),
    ('<object data="javascript:alert(1)"></object>', True),
    ('<embed src="javascript:alert(1)">', True),
    ("<template><script>alert(1)</script></template>", True),
    ('<video><source onerror="alert(1)"></video>', True),
    ('<details open ontoggle="alert(1)">d</details>', True),
    ('<a href="https://ok.example/" style="position:fixed;top:0">overlay</a>', True),
    ('<a href="https://ok.example/"\nonmouseover="alert(1)">newline attr</a>', True),
    ('<a/href="javascript:alert(1)">slash</a>', True),
    ("<a href=javascript:alert(1)>unquoted</a>", True),
    ('<p><span class="h-card" onclick="alert(1)">card</span></p>', True),
    ('<isindex action="javascript:alert(1)" type=image>', True),
    ("<plaintext><script>alert(1)</script>", False),
]


@pytest.mark.parametrize(("payload", "keeps_tail"), XSS_PAYLOADS, ids=[p for p, _ in XSS_PAYLOADS])
def test_xss_payload_is_neutralised(payload: str, keeps_tail: bool) -> None:
    output = sanitize_remote_html(f"<p>Before the payload. {payload} After the payload.</p>")
    assert_safe(output)
    assert "Before the payload." in output
    if keeps_tail:
        assert "After the payload." in output
    # The sanitised HTML is a fixed point: sanitising it again changes nothing.
    assert sanitize_remote_html(output) == output


def test_there_are_plenty_of_payloads() -> None:
    assert len(XSS_PAYLOADS) >= 30


def test_payload_at_top_level_without_wrapping() -> None:
    for payload, _ in XSS_PAYLOADS:
        assert_safe(sanitize_remote_html(payload))


def test_script_and_style_are_removed_with_their_content() -> None:
    source = "<p>Hi <script>alert('XSS')</script><style>p{color:red}</style>there</p>"
    assert sanitize_remote_html(source) == "<p>Hi there</p>"


def test_embedding_elements_are_removed_with_their_content() -> None:
    source = (
        "<p>a<iframe>frame text</iframe>b<object>object text</object>c<svg><text>svg text</text></svg>"
        "d<math><mi>x</mi></math>e<template>template text</template>f</p>"
    )
    assert sanitize_remote_html(source) == "<p>abcdef</p>"


def test_disallowed_inline_tags_are_unwrapped_keeping_text() -> None:
    source = "<p>a <font color=red>red</font> <abbr title=x>abbr</abbr> <s>gone</s> <img src=x alt=pic>b</p>"
    assert sanitize_remote_html(source) == "<p>a red abbr gone b</p>"


def test_unwrapped_blocks_stay_on_separate_lines() -> None:
    source = "<h3>Last Meeting</h3>\n<h4>Recording</h4>\n<div>Passcode: z+1*4pUB</div>"
    output = sanitize_remote_html(source)
    assert output == "Last Meeting\n<br>Recording\n<br>Passcode: z+1*4pUB"
    assert html_to_plain_text(output) == "Last Meeting\nRecording\nPasscode: z+1*4pUB"


def test_unwrapped_block_inside_allowed_block_adds_no_trailing_break() -> None:
    assert sanitize_remote_html("<blockquote><div>a</div><div>b</div></blockquote>") == (
        "<blockquote>a<br>b</blockquote>"
    )
    assert sanitize_remote_html("<div><p>a</p><p>b</p></div>") == "<p>a</p><p>b</p>"


def test_allowed_formatting_is_kept() -> None:
    source = (
        "<p><strong>bold</strong> <b>b</b> <em>em</em> <i>i</i> <u>u</u> <del>del</del> <code>x=1</code></p>"
        "<pre><code>indented\n  code</code></pre><blockquote><p>quoted</p></blockquote>"
        "<ul><li>one</li><li>two</li></ul>"
    )
    assert sanitize_remote_html(source) == source


def test_list_attributes() -> None:
    source = '<ol start="3" reversed type="A"><li value="7" onclick="x()">a</li><li value="x">b</li></ol>'
    assert sanitize_remote_html(source) == '<ol start="3" reversed><li value="7">a</li><li>b</li></ol>'


def test_every_link_gets_rel_and_target() -> None:
    output = sanitize_remote_html('<a href="https://example.com/" rel="me" target="_self">x</a>')
    assert output == f'<a href="https://example.com/" rel="{REL}" target="_blank">x</a>'


def test_rel_tag_is_kept_next_to_the_forced_rel() -> None:
    output = sanitize_remote_html(
        '<a href="https://m.example/tags/cats" class="mention hashtag" rel="tag">#cats</a>'
    )
    assert f'rel="{REL} tag"' in output


@pytest.mark.parametrize(
    "href",
    [
        "http://example.com/",
        "https://example.com/?a=1&b=2",
        "gemini://example.org/",
        "gopher://example.org/",
        "magnet:?xt=urn:btih:abc",
        "xmpp:someone@example.org",
        "ipfs://bafy",
        "ipns://example",
        "dat://abc",
        "dweb:/ipfs/abc",
        "ssb:%abc",
        "HTTPS://EXAMPLE.COM/",
    ],
)
def test_allowed_link_schemes(href: str) -> None:
    output = sanitize_remote_html(f'<a href="{href.replace("&", "&amp;")}">link</a>')
    assert _collect(output).tags == [("a", {"href": href, "rel": REL, "target": "_blank"})]


@pytest.mark.parametrize(
    "href",
    [
        "/relative/path",
        "//example.com/x",
        "#anchor",
        "ftp://example.com/",
        "mailto:a@example.com",
        "file:///etc/passwd",
    ],
)
def test_links_without_an_allowed_scheme_become_text(href: str) -> None:
    assert sanitize_remote_html(f'<p><a href="{href}">label</a></p>') == "<p>label</p>"


def test_links_without_href_become_text() -> None:
    assert sanitize_remote_html('<a name="top">label</a>') == "label"


def test_nested_links_are_not_emitted() -> None:
    output = sanitize_remote_html(
        '<a href="https://a.example/"><table><td><a href="https://b.example/">in</a>'
    )
    assert output.count("<a ") == 1
    assert "in" in output
    assert sanitize_remote_html(output) == output


def test_class_allowlist() -> None:
    output = sanitize_remote_html(
        '<span class="h-card evil mention big-red quote-inline">x</span><span class="foo">y</span>'
        '<a href="https://e.example/" class="u-url mention status-url-link">z</a>'
    )
    assert output == (
        '<span class="h-card mention">x</span><span>y</span>'
        f'<a href="https://e.example/" class="u-url mention" rel="{REL}" target="_blank">z</a>'
    )


def test_classes_are_dropped_on_tags_that_may_not_carry_them() -> None:
    assert (
        sanitize_remote_html('<p class="mention">x</p><li class="invisible">y</li>') == "<p>x</p><li>y</li>"
    )


def test_translate_is_kept_only_as_no() -> None:
    assert sanitize_remote_html('<span translate="no">a</span><span translate="yes">b</span>') == (
        '<span translate="no">a</span><span>b</span>'
    )


def test_data_attributes_and_ids_are_dropped() -> None:
    output = sanitize_remote_html('<a id="x" data-user="9v5b" title="t" href="https://e.example/u">@u</a>')
    assert output == f'<a href="https://e.example/u" rel="{REL}" target="_blank">@u</a>'


def test_text_is_escaped_and_entities_normalised() -> None:
    assert sanitize_remote_html("<p>It&#39;s &lt;b&gt; &amp; 1 < 2 &nbsp;</p>") == (
        "<p>It's &lt;b&gt; &amp; 1 &lt; 2 \xa0</p>"
    )


def test_attribute_values_are_escaped() -> None:
    output = sanitize_remote_html('<a href="https://e.example/?q=&quot;x&quot;&amp;a=&lt;b&gt;">q</a>')
    assert 'href="https://e.example/?q=&quot;x&quot;&amp;a=&lt;b&gt;"' in output


def test_control_characters_are_removed() -> None:
    assert sanitize_remote_html("<p>a\x07b\x1bc</p>") == "<p>abc</p>"


def test_leading_newline_in_pre_survives_a_second_pass() -> None:
    once = sanitize_remote_html("<pre>\n\nline</pre>")
    assert sanitize_remote_html(once) == once
    assert html_to_plain_text(once) == "line"


def test_deeply_nested_html_does_not_recurse() -> None:
    depth = 5000
    output = sanitize_remote_html("<span>" * depth + "deep" + "</span>" * depth)
    assert "deep" in output
    assert html_to_plain_text("<div>" * depth + "deep" + "</div>" * depth) == "deep"


def test_empty_input() -> None:
    assert sanitize_remote_html("") == ""
    assert html_to_plain_text("") == ""


def test_plain_text_input_passes_through_escaped() -> None:
    assert sanitize_remote_html("just text & more") == "just text &amp; more"


# --- Real notes, copied from captured Mastodon / Pleroma / Misskey / Lemmy / Friendica payloads.

MASTODON_NOTE = (
    '<p><span class="h-card" translate="no"><a href="https://lemmy.kde.social/c/kde" class="u-url mention">'
    "@<span>kde@lemmy.kde.social</span></a></span> </p><p>We also need funding 💶 to keep the gears turning! "
    'Please support us with a donation:</p><p><a href="https://kde.org/donate/" target="_blank" '
    'rel="nofollow noopener noreferrer" translate="no"><span class="invisible">https://</span>'
    '<span class="">kde.org/donate/</span><span class="invisible"></span></a></p><p>[3/3]</p>'
)


def test_mastodon_note_with_mention_and_shortened_link() -> None:
    assert sanitize_remote_html(MASTODON_NOTE) == (
        '<p><span class="h-card" translate="no"><a '
        'href="https://lemmy.kde.social/c/kde" class="u-url mention" '
        f'rel="{REL}" target="_blank">@<span>kde@lemmy.kde.social</span></a></span> </p>'
        "<p>We also need funding 💶 to keep the gears turning! Please support us with a donation:</p>"
        f'<p><a href="https://kde.org/donate/" rel="{REL}" target="_blank" translate="no">'
        '<span class="invisible">https://</span><span>kde.org/donate/</span><span class="invisible"></span>'
        "</a></p><p>[3/3]</p>"
    )
    assert html_to_plain_text(MASTODON_NOTE) == (
        "@kde@lemmy.kde.social\n\nWe also need funding 💶 to keep the gears turning! Please support us with a "
        "donation:\n\nhttps://kde.org/donate/\n\n[3/3]"
    )


MASTODON_HASHTAGS = (
    "<p>Inaugural Post for Lemmy, a decentralized, easily "
    'self-hostable <a href="https://mastodon.social/tags/reddit" '
    'class="mention hashtag" rel="tag">#<span>reddit</span>'
    "</a> / link aggregator alternative,intended to work in "
    'the <a href="https://mastodon.social/tags/fediverse" '
    'class="mention hashtag" rel="tag">#<span>fediverse</span>'
    '</a>: </p><p><a href="https://github.com/LemmyNet/lemmy/" '
    'target="_blank" rel="nofollow noopener noreferrer">'
    '<span class="invisible">https://</span><span class="">github.com/LemmyNet/lemmy/</span>'
    '<span class="invisible"></span></a></p><p><a href="https://mastodon.social/tags/activitypub" '
    'class="mention hashtag" rel="tag">#<span>activitypub</span></a></p>'
)


def test_mastodon_hashtag_links() -> None:
    output = sanitize_remote_html(MASTODON_HASHTAGS)
    assert_safe(output)
    links = [attrs for tag, attrs in _collect(output).tags if tag == "a"]
    assert [link["href"] for link in links] == [
        "https://mastodon.social/tags/reddit",
        "https://mastodon.social/tags/fediverse",
        "https://github.com/LemmyNet/lemmy/",
        "https://mastodon.social/tags/activitypub",
    ]
    assert [link.get("class") for link in links] == [
        "mention hashtag",
        "mention hashtag",
        None,
        "mention hashtag",
    ]
    assert links[0]["rel"] == f"{REL} tag"
    assert html_to_plain_text(MASTODON_HASHTAGS) == (
        "Inaugural Post for Lemmy, a decentralized, easily self-hostable #reddit / link aggregator "
        "alternative,intended to work in the "
        "#fediverse:\n\nhttps://github.com/LemmyNet/lemmy/\n\n#activitypub"
    )


MASTODON_ELLIPSIS = (
    '<p><a href="http://mastodon.example.org/media/hw4nrZmV5DPbW2z_hao" '
    'rel="nofollow noopener" target="_blank">'
    '<span class="invisible">http://</span><span class="ellipsis">mastodon.example.org/media/hw4</span>'
    '<span class="invisible">nrZmV5DPbW2z_hao</span></a></p>'
)


def test_mastodon_ellipsis_link() -> None:
    assert sanitize_remote_html(MASTODON_ELLIPSIS) == (
        f'<p><a href="http://mastodon.example.org/media/hw4nrZmV5DPbW2z_hao" rel="{REL}" target="_blank">'
        '<span class="invisible">http://</span><span class="ellipsis">mastodon.example.org/media/hw4</span>'
        '<span class="invisible">nrZmV5DPbW2z_hao</span></a></p>'
    )
    assert html_to_plain_text(MASTODON_ELLIPSIS) == "http://mastodon.example.org/media/hw4nrZmV5DPbW2z_hao"


PLEROMA_MENTION = (
    '<span class="h-card"><a class="u-url mention" data-user="9v5bmRalQvjOy0ECcC" '
    'href="https://gleasonator.com/users/alex" rel="ugc">'
    "@<span>alex</span></a></span> Any idea why my posts are "
    'failing? I sent an Accept/Follow from <a href="http://macgirvin.com" rel="ugc">macgirvin.com</a> at '
    "2022-02-02T04:06:01Z and it vanished into space. <br><br>It&#39;s OK if I&#39;m blocked"
)


def test_pleroma_mention_with_data_attributes_and_ugc_rel() -> None:
    assert sanitize_remote_html(PLEROMA_MENTION) == (
        '<span class="h-card"><a href="https://gleasonator.com/users/alex" '
        f'class="u-url mention" rel="{REL}" '
        'target="_blank">@<span>alex</span></a></span> Any idea why my posts are failing? I sent an '
        f'Accept/Follow from <a href="http://macgirvin.com" rel="{REL}" target="_blank">macgirvin.com</a> at '
        "2022-02-02T04:06:01Z and it vanished into space. <br><br>It's OK if I'm blocked"
    )
    assert html_to_plain_text(PLEROMA_MENTION) == (
        "@alex Any idea why my posts are failing? I sent an Accept/Follow from macgirvin.com at "
        "2022-02-02T04:06:01Z and it vanished into space.\n\nIt's OK if I'm blocked"
    )


MISSKEY_NOTE = (
    "<p><span>投稿者の設定によるね<br>Fanboxについても投稿者によっては過去の投稿は高額なプランに移動してることがある"
    '<br><br>RE: </span><a href="https://misskey.io/notes/8vs6wxufd0">'
    "https://misskey.io/notes/8vs6wxufd0</a></p>"
)


def test_misskey_note_with_line_breaks() -> None:
    assert sanitize_remote_html(MISSKEY_NOTE) == (
        "<p><span>投稿者の設定によるね<br>Fanboxについても投稿者によっては過去の投稿は高額なプランに移動してることがある"
        f'<br><br>RE: </span><a href="https://misskey.io/notes/8vs6wxufd0" rel="{REL}" target="_blank">'
        "https://misskey.io/notes/8vs6wxufd0</a></p>"
    )
    assert html_to_plain_text(MISSKEY_NOTE) == (
        "投稿者の設定によるね\nFanboxについても投稿者によっては過去の投稿は高額なプランに移動してることがある\n\n"
        "RE: https://misskey.io/notes/8vs6wxufd0"
    )


FEDIBIRD_QUOTE = (
    '<p>揺れていたようだ<span class="quote-inline"><br/>QT: <a class="status-url-link" '
    'data-status-account-acct="UN_NERV@unnerv.jp" data-status-id="107712177062934465" '
    'href="https://unnerv.jp/@UN_NERV/107712176849067434" rel="nofollow noopener noreferrer" target="_blank">'
    '<span class="invisible">https://</span><span class="ellipsis">unnerv.jp/@UN_NERV/10771217684</span>'
    '<span class="invisible">9067434</span></a></span></p>'
)


def test_fedibird_quote_inline() -> None:
    assert sanitize_remote_html(FEDIBIRD_QUOTE) == (
        '<p>揺れていたようだ<span><br>QT: <a href="https://unnerv.jp/@UN_NERV/107712176849067434" '
        f'rel="{REL}" target="_blank"><span class="invisible">https://</span><span class="ellipsis">'
        'unnerv.jp/@UN_NERV/10771217684</span><span class="invisible">9067434</span></a></span></p>'
    )


OWNCAST_NOTE = (
    "<p>I've gone live!</p><p></p><p>"
    '<a class="hashtag" href="https://directory.owncast.online/tags/owncast">#owncast</a> '
    '<a class="hashtag" href="https://directory.owncast.online/tags/streaming">#streaming</a></p>'
    '<a href="https://owncast.localhost.localdomain">https://owncast.localhost.localdomain</a>'
)


def test_owncast_note() -> None:
    output = sanitize_remote_html(OWNCAST_NOTE)
    assert_safe(output)
    assert output.count('class="hashtag"') == 2
    assert html_to_plain_text(OWNCAST_NOTE) == (
        "I've gone live!\n\n#owncast #streaming\n\nhttps://owncast.localhost.localdomain"
    )


NODEBB_NOTE = (
    "<h3>Welcome to your brand new NodeBB forum!</h3>\n<p>This is what a topic and post looks like.<br />\n"
    "To customise your forum, go to the <a "
    'href="https://bb.devnull.land/admin">Administrator Control Panel</a>.'
    "</p>\n<h4>Additional Resources</h4>\n<ul>\n"
    '<li><a href="https://docs.nodebb.org/" rel="nofollow ugc">NodeBB Documentation</a></li>\n'
    '<li><a href="https://github.com/nodebb/nodebb" rel="nofollow ugc">Project repository</a></li>\n</ul>\n'
)


def test_nodebb_headings_and_lists() -> None:
    output = sanitize_remote_html(NODEBB_NOTE)
    assert_safe(output)
    assert "<h3>" not in output
    assert output.startswith("Welcome to your brand new NodeBB forum!\n<p>")
    assert "<ul>\n<li>" in output
    assert html_to_plain_text(NODEBB_NOTE) == (
        "Welcome to your brand new NodeBB forum!\n\nThis is what a topic and post looks like.\n"
        "To customise your forum, go to the Administrator Control Panel.\n\nAdditional Resources\n\n"
        "NodeBB Documentation\nProject repository"
    )


def test_pleroma_fixture_with_script() -> None:
    source = "You expected a cute girl? Too bad. <script>alert('XSS')</script>"
    assert sanitize_remote_html(source) == "You expected a cute girl? Too bad. "
    assert html_to_plain_text(source) == "You expected a cute girl? Too bad."


# --- html_to_plain_text


def test_plain_text_line_breaks_and_paragraphs() -> None:
    assert html_to_plain_text("<p>one<br>two</p><p>three</p>") == "one\ntwo\n\nthree"


def test_plain_text_decodes_entities() -> None:
    assert html_to_plain_text("<p>Tom &amp; Jerry &lt;3 &#x1F600; &quot;q&quot; caf&eacute;</p>") == (
        'Tom & Jerry <3 😀 "q" café'
    )


def test_plain_text_collapses_source_whitespace() -> None:
    assert html_to_plain_text("<p>\n  a   lot\n of   space </p>\n\n<p> b </p>") == "a lot of space\n\nb"


def test_plain_text_keeps_preformatted_whitespace() -> None:
    assert (
        html_to_plain_text("<p>code:</p><pre>def f():\n    return 1</pre>")
        == "code:\n\ndef f():\n    return 1"
    )


def test_plain_text_lists() -> None:
    assert html_to_plain_text("<p>list:</p><ul><li>a</li><li>b</li></ul><p>end</p>") == "list:\n\na\nb\n\nend"


def test_plain_text_keeps_invisible_link_parts() -> None:
    html = (
        '<p>see <a href="https://example.com/long/path"><span class="invisible">https://</span>'
        '<span class="ellipsis">example.com/lo</span><span class="invisible">ng/path</span></a></p>'
    )
    assert html_to_plain_text(html) == "see https://example.com/long/path"


def test_plain_text_drops_script_style_and_comments() -> None:
    assert html_to_plain_text("a<script>x()</script><style>p{}</style><!-- c -->b") == "ab"


def test_plain_text_of_text_that_looks_like_markup_is_the_text() -> None:
    assert html_to_plain_text("1 &lt; 2 &amp;&amp; <b>bold</b>") == "1 < 2 && bold"


def test_plain_text_table_cells() -> None:
    assert html_to_plain_text("<table><tr><td>a</td><td>b</td></tr><tr><td>c</td></tr></table>") == "a b\nc"


def test_plain_text_consecutive_breaks() -> None:
    assert html_to_plain_text("a<br><br><br>b") == "a\n\n\nb"


# --- properties

_FRAGMENTS = [
    "<p>",
    "</p>",
    "<br>",
    "<a href='https://e.example/'>",
    "<a href='javascript:x'>",
    "</a>",
    "<span class='h-card invisible x'>",
    "</span>",
    "<div>",
    "</div>",
    "<ul>",
    "<li>",
    "</li>",
    "</ul>",
    "<pre>",
    "\n",
    "</pre>",
    "<blockquote>",
    "</blockquote>",
    "<button>",
    "<table><td>",
    "</table>",
    "<h2>",
    "</h2>",
    "<script>",
    "</script>",
    "<svg>",
    "<b>",
    "</b>",
    "<!--",
    "-->",
    "&amp;",
    "&lt;",
    "<",
    ">",
    '"',
    "text",
    " ",
    "<img src=x onerror=alert(1)>",
    "<textarea>",
    "<noscript>",
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_FRAGMENTS), max_size=25))
def test_sanitised_output_is_safe_and_a_fixed_point(fragments: list[str]) -> None:
    output = sanitize_remote_html("".join(fragments))
    assert_safe(output)
    assert sanitize_remote_html(output) == output


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_never_breaks_the_sanitiser(text: str) -> None:
    output = sanitize_remote_html(text)
    assert_safe(output)
    assert sanitize_remote_html(output) == output
    html_to_plain_text(text)
