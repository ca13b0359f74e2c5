from html.parser import HTMLParser

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.services.html_sanitizer import html_to_plain_text, sanitize_remote_html
from app.services.text_format import (
    HASHTAG_RE,
    MENTION_RE,
    URL_RE,
    extract_hashtags,
    extract_mentions,
    render_plain_text,
)

REL = "nofollow noopener noreferrer"
LOCAL = "https://herold.example"

MENTION_HREFS: dict[tuple[str, str | None], str] = {
    ("alice", None): f"{LOCAL}/users/alice",
    ("bob", "remote.example"): "https://remote.example/users/bob",
    ("alice", "127.0.0.2:9100"): "http://127.0.0.2:9100/users/alice",
    ("bob", "localhost:8000"): "http://localhost:8000/users/bob",
}


def hashtag_href(tag: str) -> str:
    return f"{LOCAL}/tags/{tag.lower()}"


def render(text: str) -> str:
    return render_plain_text(text, mention_hrefs=MENTION_HREFS, hashtag_href=hashtag_href)


def link_html(url: str, prefix: str, display: str, suffix: str = "", display_class: str = "") -> str:
    return (
        f'<a href="{url}" target="_blank" rel="{REL}" translate="no"><span class="invisible">{prefix}</span>'
        f'<span class="{display_class}">{display}</span><span class="invisible">{suffix}</span></a>'
    )


def mention_html(username: str, href: str) -> str:
    return (
        f'<span class="h-card" translate="no"><a href="{href}" class="u-url mention">'
        f"@<span>{username}</span></a></span>"
    )


def hashtag_html(tag: str) -> str:
    return f'<a href="{hashtag_href(tag)}" class="mention hashtag" rel="tag">#<span>{tag}</span></a>'


# --- extract_mentions


def test_local_and_remote_mentions() -> None:
    assert extract_mentions("hi @alice and @bob@remote.example!") == [
        ("alice", None),
        ("bob", "remote.example"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("@alice@127.0.0.2:9100 hello", [("alice", "127.0.0.2:9100")]),
        ("ping @bob@localhost:8000.", [("bob", "localhost:8000")]),
        ("(@bob@localhost:8000)", [("bob", "localhost:8000")]),
        ("@bob@localhost:8000, @bob@localhost", [("bob", "localhost:8000"), ("bob", "localhost")]),
        ("@bob@localhost: hello", [("bob", "localhost")]),
        ("@bob@localhost:123456", [("bob", "localhost")]),
    ],
)
def test_mentions_with_a_port(text: str, expected: list[tuple[str, str | None]]) -> None:
    assert extract_mentions(text) == expected


def test_email_address_is_not_a_mention() -> None:
    assert extract_mentions("write to mail@example.com or bob.smith@example.org") == []


def test_mentions_inside_urls_are_ignored() -> None:
    assert extract_mentions("see https://mastodon.example/@carol and https://x.example/a?u=@dave#@erin") == []


def test_mention_after_slash_or_equals_is_ignored() -> None:
    assert extract_mentions("path/@carol a=@dave") == []


def test_mentions_are_deduplicated_in_order() -> None:
    text = "@zed @alice @zed @Alice @alice@remote.example @ALICE@Remote.Example"
    assert extract_mentions(text) == [("zed", None), ("alice", None), ("alice", "remote.example")]


def test_username_characters() -> None:
    assert extract_mentions("@first.last-name_1 @trailing. @dash- @_under") == [
        ("first.last-name_1", None),
        ("trailing", None),
        ("dash", None),
        ("_under", None),
    ]


def test_mention_domain_trailing_punctuation() -> None:
    assert extract_mentions("thanks @bob@remote.example.") == [("bob", "remote.example")]


def test_mention_at_start_of_lines() -> None:
    assert extract_mentions("@alice\n@bob@remote.example") == [("alice", None), ("bob", "remote.example")]


def test_lone_at_sign() -> None:
    assert extract_mentions("meet @ 5, @ @!") == []


def test_mention_regex_constant_is_usable_directly() -> None:
    match = MENTION_RE.search("cc @bob@localhost:8000")
    assert match is not None
    assert match.group("username", "domain") == ("bob", "localhost:8000")


# --- extract_hashtags


def test_hashtags() -> None:
    assert extract_hashtags("#hello world #Tag_2 #x") == ["hello", "Tag_2", "x"]


def test_unicode_hashtags() -> None:
    assert extract_hashtags("#Fédiverse #日本語 #Ελληνικά #über") == [
        "Fédiverse",
        "日本語",
        "Ελληνικά",
        "über",
    ]


def test_decomposed_accent_stays_in_the_tag() -> None:
    assert extract_hashtags("#Fe\u0301diverse rocks") == ["Fe\u0301diverse"]


def test_hashtags_are_deduplicated_case_insensitively_as_written() -> None:
    assert extract_hashtags("#Fediverse #fediverse #FEDIVERSE #other") == ["Fediverse", "other"]


def test_numeric_hashtags_are_not_tags() -> None:
    assert extract_hashtags("issue #123 and #1st and #2024_") == ["1st"]


def test_hashtag_inside_url_is_not_a_tag() -> None:
    assert extract_hashtags("see https://example.com/page#anchor and https://example.com/#/route") == []


def test_hashtag_after_ampersand_or_word_is_not_a_tag() -> None:
    assert extract_hashtags("&#tag C#sharp a=#x path/#y (x)#z") == []


def test_hashtag_trailing_punctuation() -> None:
    assert extract_hashtags("I love #cats. And #dogs, #birds!") == ["cats", "dogs", "birds"]


def test_hashtag_regex_constant_is_usable_directly() -> None:
    assert [m.group("tag") for m in HASHTAG_RE.finditer("#a #1 #b2")] == ["a", "b2"]


# --- URLs


def test_url_regex_constant_finds_candidates() -> None:
    assert [m.group() for m in URL_RE.finditer("a https://x.example/p b HTTP://Y.example")] == [
        "https://x.example/p",
        "HTTP://Y.example",
    ]


def test_short_url_is_linked_mastodon_style() -> None:
    assert render("see https://example.com/short") == (
        f"<p>see {link_html('https://example.com/short', 'https://', 'example.com/short')}</p>"
    )


def test_long_url_is_cut_after_30_characters() -> None:
    url = "https://www.example.org/a/very/long/path/that/goes/on?x=1&y=2"
    assert render(url) == (
        "<p>"
        + link_html(
            "https://www.example.org/a/very/long/path/that/goes/on?x=1&amp;y=2",
            "https://www.",
            "example.org/a/very/long/path/t",
            "hat/goes/on?x=1&amp;y=2",
            "ellipsis",
        )
        + "</p>"
    )


def test_url_of_exactly_30_characters_has_no_ellipsis() -> None:
    url = "http://" + "a" * 26 + ".com"
    assert render(url) == f"<p>{link_html(url, 'http://', 'a' * 26 + '.com')}</p>"


@pytest.mark.parametrize(
    ("text", "url", "after"),
    [
        ("see https://example.com/a.", "https://example.com/a", "."),
        ("see https://example.com/a, then", "https://example.com/a", ", then"),
        ("really https://example.com/a?!", "https://example.com/a", "?!"),
        ("(see https://example.com/a)", "https://example.com/a", ")"),
        ("[https://example.com/a]", "https://example.com/a", "]"),
        ("'https://example.com/a'", "https://example.com/a", "&#x27;"),
        ("“https://example.com/a”", "https://example.com/a", "”"),
        ("見て https://example.com/日本。", "https://example.com/日本", "。"),
        ("<https://example.com/a>", "https://example.com/a", "&gt;"),
    ],
)
def test_trailing_punctuation_is_not_part_of_the_url(text: str, url: str, after: str) -> None:
    html = render(text)
    assert f'href="{url}"' in html
    assert html.endswith(f"</a>{after}</p>")


def test_balanced_parentheses_stay_in_the_url() -> None:
    html = render("(see https://en.wikipedia.org/wiki/Foo_(bar))")
    assert 'href="https://en.wikipedia.org/wiki/Foo_(bar)"' in html
    assert html.endswith("</a>)</p>")


def test_url_with_anchor_and_at_sign_is_one_link() -> None:
    text = "https://mastodon.example/@alice/1#reply and https://example.com/#top"
    html = render(text)
    assert html.count("<a ") == 2
    assert "mention" not in html
    assert "hashtag" not in html
    assert 'href="https://mastodon.example/@alice/1#reply"' in html


def test_scheme_without_host_is_not_linked() -> None:
    assert render("https:// and http://.") == "<p>https:// and http://.</p>"


def test_other_schemes_are_not_linked() -> None:
    assert render("ftp://example.com javascript:alert(1)") == "<p>ftp://example.com javascript:alert(1)</p>"


# --- render_plain_text


def test_escapes_typed_html() -> None:
    assert render("<script>alert('x')</script> & <b>") == (
        "<p>&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; &lt;b&gt;</p>"
    )


def test_paragraphs_and_line_breaks() -> None:
    assert render("one\ntwo\n\nthree\n  \n\nfour") == "<p>one<br>two</p><p>three</p><p>four</p>"


def test_windows_newlines() -> None:
    assert render("one\r\ntwo\r\n\r\nthree") == "<p>one<br>two</p><p>three</p>"


def test_surrounding_blank_lines_are_ignored() -> None:
    assert render("\n\n  hello  \n\n") == "<p>hello</p>"
    assert render("   \n ") == ""


def test_known_mentions_become_h_cards() -> None:
    assert render("hi @alice and @bob@remote.example") == (
        f"<p>hi {mention_html('alice', f'{LOCAL}/users/alice')} and "
        f"{mention_html('bob', 'https://remote.example/users/bob')}</p>"
    )


def test_mentions_with_ports_render() -> None:
    assert render("@alice@127.0.0.2:9100 @bob@localhost:8000: hi") == (
        f"<p>{mention_html('alice', 'http://127.0.0.2:9100/users/alice')} "
        f"{mention_html('bob', 'http://localhost:8000/users/bob')}: hi</p>"
    )


def test_unknown_mentions_stay_text() -> None:
    assert render("hi @nobody and @bob@elsewhere.example") == "<p>hi @nobody and @bob@elsewhere.example</p>"


def test_mention_keeps_the_spelling_typed_and_matches_case_insensitively() -> None:
    assert render("@Alice") == f"<p>{mention_html('Alice', f'{LOCAL}/users/alice')}</p>"


def test_email_address_is_left_alone() -> None:
    assert render("mail alice@example.com") == "<p>mail alice@example.com</p>"


def test_hashtags_become_links() -> None:
    assert (
        render("#Fédiverse and #日本語!")
        == f"<p>{hashtag_html('Fédiverse')} and {hashtag_html('日本語')}!</p>"
    )


def test_hashtag_href_is_escaped() -> None:
    html = render_plain_text(
        "#tag", mention_hrefs={}, hashtag_href=lambda tag: f'https://x.example/?t={tag}&"'
    )
    assert 'href="https://x.example/?t=tag&amp;&quot;"' in html


def test_everything_together() -> None:
    text = "Hello @alice!\nRead https://example.com/a. #news\n\nBye <3"
    assert render(text) == (
        f"<p>Hello {mention_html('alice', f'{LOCAL}/users/alice')}!<br>"
        f"Read {link_html('https://example.com/a', 'https://', 'example.com/a')}. {hashtag_html('news')}</p>"
        "<p>Bye &lt;3</p>"
    )


def test_extraction_and_rendering_agree() -> None:
    text = "@alice see https://x.example/@bob#tag #real @bob@remote.example mail@example.com"
    assert extract_mentions(text) == [("alice", None), ("bob", "remote.example")]
    assert extract_hashtags(text) == ["real"]
    html = render(text)
    assert html.count('class="u-url mention"') == 2
    assert html.count('class="mention hashtag"') == 1


# --- stability under the remote-HTML sanitiser


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.items: list[tuple[str, str | None, frozenset[str]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        classes = frozenset((attributes.get("class") or "").split())
        self.items.append((tag, attributes.get("href"), classes))


def _structure(html: str) -> list[tuple[str, str | None, frozenset[str]]]:
    parser = _Links()
    parser.feed(html)
    return parser.items


STABILITY_TEXTS = [
    "Hello @alice and @bob@remote.example, @bob@localhost:8000 and @alice@127.0.0.2:9100",
    "#Fédiverse #日本語 #news",
    "short https://example.com/a and long https://www.example.org/a/very/long/path/that/goes/on?x=1&y=2",
    "(https://en.wikipedia.org/wiki/Foo_(bar)) <script>alert(1)</script>",
    "one\ntwo\n\nthree",
]


@pytest.mark.parametrize("text", STABILITY_TEXTS)
def test_rendered_html_survives_the_sanitiser(text: str) -> None:
    html = render(text)
    sanitized = sanitize_remote_html(html)
    assert _structure(sanitized) == _structure(html)
    assert html_to_plain_text(sanitized) == html_to_plain_text(html)
    assert sanitize_remote_html(sanitized) == sanitized


def test_rendered_text_round_trips_to_plain_text() -> None:
    text = "Hello @alice!\nRead https://www.example.org/a/very/long/path/that/goes/on. #news\n\nBye <3 & more"
    assert html_to_plain_text(render(text)) == text


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            [
                "@alice",
                "@bob@remote.example",
                "@bob@localhost:8000",
                "#tag",
                "#日本語",
                "https://example.com/a_(b)",
                "https://example.com/#x@y",
                "mail@example.com",
                "<b>",
                "&",
                ".",
                ")",
                "(",
                " ",
                "\n",
                "\n\n",
                "word",
            ]
        ),
        max_size=20,
    )
)
def test_render_is_stable_and_faithful_for_any_mix(parts: list[str]) -> None:
    text = "".join(parts)
    html = render(text)
    sanitized = sanitize_remote_html(html)
    assert _structure(sanitized) == _structure(html)
    # Rendering only adds markup: the words of the text are all still there, in order.  (Remote
    # mentions show only the username, as on Mastodon, so only local ones are linked here.)
    local_only = render_plain_text(
        text, mention_hrefs={("alice", None): "https://h.example/@alice"}, hashtag_href=hashtag_href
    )
    assert html_to_plain_text(local_only).split() == text.split()
