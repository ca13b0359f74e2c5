"""HTTP signatures: Mastodon's own verification cases, round trips, and independent signers."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

from app.activitypub.signatures import (
    CLOCK_SKEW_FUTURE,
    CLOCK_SKEW_PAST,
    KeyCache,
    SignatureError,
    SignedRequest,
    body_digest,
    content_digest,
    parse_signed_request,
    sign_request,
    sign_request_rfc9421,
)

FIXTURE = (
    Path(__file__).resolve().parent.parent / "fixtures" / "signature_vectors" / "mastodon-draft-cavage.json"
)
VECTORS: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
NOW = datetime.fromisoformat(VECTORS["now"])
KEY_ID: str = VECTORS["key_id"]
KEYS = KeyCache()
PRIVATE_KEY = KEYS.private_key(VECTORS["private_key_pem"])
PUBLIC_KEY = KEYS.public_key(VECTORS["public_key_pem"])


@pytest.fixture(scope="module")
def other_key() -> RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _parse(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    *,
    now: datetime = NOW,
    host: str | None = None,
) -> SignedRequest:
    parts = urlsplit(url)
    return parse_signed_request(
        method=method,
        path=parts.path or "/",
        query=parts.query,
        headers=headers,
        body=body,
        now=now,
        host=host,
        scheme=parts.scheme,
    )


def _on_the_wire(url: str, headers: Mapping[str, str]) -> dict[str, str]:
    """Add the Host header an HTTP client adds when the signer did not return one."""
    wire = dict(headers)
    if not any(name.lower() == "host" for name in wire):
        wire["Host"] = urlsplit(url).netloc
    return wire


def _vector_outcome(case: dict[str, Any]) -> bool:
    path, _, query = case["path"].partition("?")
    try:
        signed = parse_signed_request(
            method=case["method"],
            path=path,
            query=query,
            headers=case["headers"],
            body=case["body"].encode(),
            now=NOW,
        )
    except SignatureError:
        return False
    return signed.verify(PUBLIC_KEY)


# --------------------------------------------------------------------------------------------
# Mastodon's vectors


@pytest.mark.parametrize("case", VECTORS["cases"], ids=[case["name"] for case in VECTORS["cases"]])
def test_mastodon_vector(case: dict[str, Any]) -> None:
    assert case["expect"] in ("valid", "invalid")
    assert _vector_outcome(case) is (case["expect"] == "valid"), case.get("note", case["name"])


def test_vector_file_has_all_twelve_cases() -> None:
    assert len(VECTORS["cases"]) == 12
    assert len({case["name"] for case in VECTORS["cases"]}) == 12


@pytest.mark.parametrize(("reason", "name"), [
    ("Digest does not match the body", "post-tampered-body"),
    ("signature does not cover digest", "post-digest-not-signed"),
    ("signature does not cover digest", "method-mismatch"),
    ("Date header is not a valid HTTP date", "unparsable-date"),
    ("Date is outside the accepted window", "date-two-days-old"),
])  # fmt: skip
def test_mastodon_vector_rejection_reason(reason: str, name: str) -> None:
    case = next(case for case in VECTORS["cases"] if case["name"] == name)
    path, _, query = case["path"].partition("?")
    with pytest.raises(SignatureError, match=reason):
        parse_signed_request(
            method=case["method"],
            path=path,
            query=query,
            headers=case["headers"],
            body=case["body"].encode(),
            now=NOW,
        )


def test_query_quirk_falls_back_to_path_without_query() -> None:
    case = next(case for case in VECTORS["cases"] if case["name"] == "get-query-signed-without-query")
    signed = parse_signed_request(
        method="GET", path="/activitypub/success", query="foo=42", headers=case["headers"], body=None, now=NOW
    )
    assert [base.split(b"\n")[2] for base in signed.signature_bases] == [
        b"(request-target): get /activitypub/success?foo=42",
        b"(request-target): get /activitypub/success",
    ]
    assert signed.verify(PUBLIC_KEY)


@pytest.mark.parametrize(("body", "digest"), sorted(VECTORS["expected_digest_of_body"].items()))
def test_body_digest_matches_mastodon(body: str, digest: str) -> None:
    assert body_digest(body.encode()) == digest


# --------------------------------------------------------------------------------------------
# An independent draft-cavage signer, written the way Mastodon builds its signing string


def mastodon_sign(
    private_key: RSAPrivateKey,
    key_id: str,
    request_target: str,
    headers: Mapping[str, str],
    signed: list[str],
    algorithm: str = "rsa-sha256",
    extra_params: str = "",
) -> str:
    lowered = {name.lower(): value for name, value in headers.items()}
    signing_string = "\n".join(
        f"{name}: {request_target if name == '(request-target)' else lowered[name]}" for name in signed
    )
    raw = private_key.sign(signing_string.encode(), padding.PKCS1v15(), hashes.SHA256())
    return (
        f'keyId="{key_id}",algorithm="{algorithm}",headers="{" ".join(signed)}"{extra_params},'
        f'signature="{base64.b64encode(raw).decode()}"'
    )


def test_independent_signer_reproduces_the_vector_signatures() -> None:
    # PKCS#1 v1.5 is deterministic, so the helper is itself checked against Mastodon's output.
    for name, target in (
        ("get-valid", "get /activitypub/success"),
        ("post-valid", "post /activitypub/success"),
    ):
        case = next(case for case in VECTORS["cases"] if case["name"] == name)
        signed = case["headers"]["Signature"].split('headers="')[1].split('"')[0].split()
        assert (
            mastodon_sign(PRIVATE_KEY, KEY_ID, target, case["headers"], signed)
            == case["headers"]["Signature"]
        )


def test_sign_request_matches_independent_signer() -> None:
    body = b'{"type":"Follow"}'
    headers = sign_request(
        method="POST",
        url="https://www.example.com/users/bob/inbox",
        body=body,
        key_id=KEY_ID,
        private_key=PRIVATE_KEY,
        now=NOW,
    )
    assert headers["Host"] == "www.example.com"
    assert headers["Date"] == "Wed, 20 Dec 2023 10:00:00 GMT"
    assert headers["Digest"] == "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert headers["Content-Type"] == "application/activity+json"
    expected = mastodon_sign(
        PRIVATE_KEY,
        KEY_ID,
        "post /users/bob/inbox",
        headers,
        ["(request-target)", "host", "date", "digest", "content-type"],
    )
    assert headers["Signature"] == expected


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_independent_mastodon_style_signature_is_accepted(method: str) -> None:
    body = b'{"type":"Create"}' if method == "POST" else None
    headers = {
        "Host": "herold.example",
        "Date": "Wed, 20 Dec 2023 09:59:58 GMT",
        "Accept": "application/json",
    }
    signed = ["(request-target)", "host", "date"]
    if body is not None:
        headers["Digest"] = "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode()
        headers["Content-Type"] = "application/activity+json"
        signed += ["digest", "content-type"]
    else:
        signed.append("accept")
    headers["Signature"] = mastodon_sign(
        PRIVATE_KEY, KEY_ID, f"{method.lower()} /users/alice/inbox", headers, signed
    )
    result = _parse(method, "https://herold.example/users/alice/inbox", headers, body)
    assert result.key_id == KEY_ID
    assert result.scheme == "draft-cavage"
    assert result.signed_headers == signed
    assert result.verify(PUBLIC_KEY)


# --------------------------------------------------------------------------------------------
# Round trips

ROUND_TRIP_URLS = [
    "https://remote.example/users/alice/inbox",
    "http://127.0.0.2:9100/inbox",
    "https://remote.example/users/alice/outbox?page=true&min_id=01HX",
    "https://remote.example:8443/inbox?x=1",
]


@pytest.mark.parametrize("url", ROUND_TRIP_URLS)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_draft_cavage_round_trip(method: str, url: str) -> None:
    body = b'{"type":"Note","content":"h\xc3\xa9"}' if method == "POST" else None
    extra = {"Accept": "application/activity+json"} if method == "GET" else None
    headers = sign_request(
        method=method,
        url=url,
        body=body,
        key_id=KEY_ID,
        private_key=PRIVATE_KEY,
        now=NOW,
        extra_headers=extra,
    )
    result = _parse(method, url, headers, body)
    expected = ["(request-target)", "host", "date"]
    expected += ["digest", "content-type"] if method == "POST" else ["accept"]
    assert result.signed_headers == expected
    assert result.verify(PUBLIC_KEY)


def test_host_carries_non_default_port_only() -> None:
    def host_for(url: str) -> str:
        return sign_request(
            method="GET", url=url, body=None, key_id=KEY_ID, private_key=PRIVATE_KEY, now=NOW
        )["Host"]

    assert host_for("http://127.0.0.2:9100/inbox") == "127.0.0.2:9100"
    assert host_for("https://Remote.Example:443/inbox") == "remote.example"
    assert host_for("http://remote.example:80/inbox") == "remote.example"
    assert host_for("https://[::1]:8443/inbox") == "[::1]:8443"


def test_get_signature_headers() -> None:
    headers = sign_request(
        method="GET", url="https://a.example/u", body=None, key_id=KEY_ID, private_key=PRIVATE_KEY
    )
    assert set(headers) == {"Host", "Date", "Signature"}
    assert 'headers="(request-target) host date"' in headers["Signature"]


def test_extra_headers_cannot_replace_signed_ones() -> None:
    with pytest.raises(ValueError, match="Date"):
        sign_request(
            method="GET",
            url="https://a.example/u",
            body=None,
            key_id=KEY_ID,
            private_key=PRIVATE_KEY,
            extra_headers={"Date": "yesterday"},
        )


@pytest.mark.parametrize("url", ROUND_TRIP_URLS)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_rfc9421_round_trip(method: str, url: str) -> None:
    body = b'{"type":"Like"}' if method == "POST" else None
    extra = {"Accept": "application/activity+json"} if method == "GET" else None
    headers = sign_request_rfc9421(
        method=method,
        url=url,
        body=body,
        key_id=KEY_ID,
        private_key=PRIVATE_KEY,
        now=NOW,
        extra_headers=extra,
    )
    if body is not None:
        assert headers["Content-Digest"] == content_digest(body)
    result = _parse(method, url, _on_the_wire(url, headers), body)
    assert result.scheme == "rfc9421"
    assert result.key_id == KEY_ID
    expected = ["@method", "@target-uri"]
    expected += ["content-digest", "content-type"] if method == "POST" else ["accept"]
    assert result.signed_headers == expected
    assert result.verify(PUBLIC_KEY)


# --------------------------------------------------------------------------------------------
# Negative cases (draft-cavage)

INBOX = "https://herold.example/users/alice/inbox"
ACTIVITY = b'{"type":"Follow","actor":"https://remote.domain/users/bob"}'


def _signed_post(body: bytes = ACTIVITY, now: datetime = NOW, url: str = INBOX) -> dict[str, str]:
    return sign_request(method="POST", url=url, body=body, key_id=KEY_ID, private_key=PRIVATE_KEY, now=now)


def test_tampered_body_is_refused() -> None:
    headers = _signed_post()
    with pytest.raises(SignatureError, match=r"^Digest does not match the body$"):
        _parse("POST", INBOX, headers, ACTIVITY + b" ")


def test_unsigned_digest_on_post_is_refused() -> None:
    headers = {
        "Host": "herold.example",
        "Date": "Wed, 20 Dec 2023 10:00:00 GMT",
        "Digest": body_digest(ACTIVITY),
    }
    headers["Signature"] = mastodon_sign(
        PRIVATE_KEY, KEY_ID, "post /users/alice/inbox", headers, ["(request-target)", "host", "date"]
    )
    with pytest.raises(SignatureError, match=r"^signature does not cover digest$"):
        _parse("POST", INBOX, headers, ACTIVITY)


def test_signed_digest_header_must_be_present() -> None:
    headers = _signed_post()
    del headers["Digest"]
    with pytest.raises(SignatureError, match="signed header digest is missing"):
        _parse("POST", INBOX, headers, ACTIVITY)


@pytest.mark.parametrize(
    ("age", "accepted"),
    [
        (timedelta(hours=13), False),
        (timedelta(hours=2), False),
        (CLOCK_SKEW_PAST + timedelta(seconds=1), False),
        (CLOCK_SKEW_PAST - timedelta(minutes=1), True),
        (timedelta(minutes=5), True),
        (-timedelta(minutes=59), True),
        (-timedelta(hours=2), False),
        (-(CLOCK_SKEW_FUTURE + timedelta(seconds=1)), False),
    ],
    ids=[
        "13h-old",
        "2h-old",
        "just-past-window",
        "just-inside-window",
        "5min-old",
        "59min-ahead",
        "2h-ahead",
        "just-ahead",
    ],
)
def test_date_window(age: timedelta, accepted: bool) -> None:
    headers = _signed_post(now=NOW - age)
    if accepted:
        assert _parse("POST", INBOX, headers, ACTIVITY).verify(PUBLIC_KEY)
    else:
        with pytest.raises(SignatureError, match=r"^Date is outside the accepted window"):
            _parse("POST", INBOX, headers, ACTIVITY)


def test_window_constants() -> None:
    # Mastodon's: 5 minutes of validity plus 1 hour of clock skew.
    assert timedelta(hours=1, minutes=5) == CLOCK_SKEW_PAST
    assert timedelta(hours=1) == CLOCK_SKEW_FUTURE


@pytest.mark.parametrize("headers", [{}, {"Host": "herold.example", "Signature": "  "}])
def test_missing_signature_header(headers: dict[str, str]) -> None:
    with pytest.raises(SignatureError, match="not signed"):
        _parse("POST", INBOX, headers, ACTIVITY)


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        'keyId="unterminated',
        'keyId="a" signature="b"',
        "=value",
        ",,,",
        'keyId="a",,signature="b"',
    ],
)
def test_garbage_signature_header(header: str) -> None:
    headers = {"Host": "herold.example", "Date": "Wed, 20 Dec 2023 10:00:00 GMT", "Signature": header}
    with pytest.raises(SignatureError, match="Signature header is malformed"):
        _parse("GET", INBOX, headers, None)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ('algorithm="rsa-sha256",headers="(request-target) host date",signature="AAAA"', "missing keyId"),
        ('keyId="k",algorithm="rsa-sha256",headers="(request-target) host date"', "missing signature"),
        (
            'keyId="k",algorithm="rsa-sha256",headers="(request-target) host date",signature="%%%"',
            "not valid base64",
        ),
        ('keyId="k",keyId="j",signature="AAAA"', "duplicate keyId"),
        (
            'keyId="k",algorithm="rsa-sha1",headers="(request-target) host date",signature="AAAA"',
            "algorithm rsa-sha1",
        ),
        ('keyId="k",algorithm="hmac-sha256",signature="AAAA"', "^unsupported algorithm hmac-sha256$"),
        (
            'keyId="k",algorithm="rsa-sha256",headers="host date",signature="AAAA"',
            "cover \\(request-target\\)",
        ),
        ('keyId="k",algorithm="rsa-sha256",headers="(request-target) date",signature="AAAA"', "cover host"),
        (
            'keyId="k",algorithm="rsa-sha256",headers="(request-target) host",signature="AAAA"',
            "date or \\(created\\)",
        ),
        ('keyId="k",signature="AAAA"', "cover \\(request-target\\)"),
        (
            'keyId="k",algorithm="rsa-sha256",created="1703066400",headers="(request-target) host (created)",'
            'signature="AAAA"',
            "\\(created\\) cannot be used with algorithm rsa-sha256",
        ),
        (
            'keyId="k",algorithm="hs2019",headers="(request-target) host (created)",signature="AAAA"',
            "created parameter is missing",
        ),
    ],
)
def test_signature_header_reasons(header: str, reason: str) -> None:
    headers = {"Host": "herold.example", "Date": "Wed, 20 Dec 2023 10:00:00 GMT", "Signature": header}
    with pytest.raises(SignatureError, match=reason):
        _parse("GET", INBOX, headers, None)


def test_unsupported_algorithm_message_is_exact() -> None:
    headers = _signed_post()
    headers["Signature"] = headers["Signature"].replace('algorithm="rsa-sha256"', 'algorithm="RSA-SHA1"')
    with pytest.raises(SignatureError) as caught:
        _parse("POST", INBOX, headers, ACTIVITY)
    assert str(caught.value) == "unsupported algorithm rsa-sha1"


def test_wrong_key_does_not_verify(other_key: RSAPrivateKey) -> None:
    headers = _signed_post()
    assert not _parse("POST", INBOX, headers, ACTIVITY).verify(other_key.public_key())


def test_signature_over_another_path_does_not_verify() -> None:
    headers = _signed_post()
    assert not _parse("POST", "https://herold.example/inbox", headers, ACTIVITY).verify(PUBLIC_KEY)


def test_signature_for_another_host_does_not_verify_when_host_is_pinned() -> None:
    headers = _signed_post()
    assert _parse("POST", INBOX, headers, ACTIVITY, host="herold.example").verify(PUBLIC_KEY)
    assert not _parse("POST", INBOX, headers, ACTIVITY, host="other.example").verify(PUBLIC_KEY)


def test_wrong_method_does_not_verify() -> None:
    headers = sign_request(
        method="PUT", url=INBOX, body=ACTIVITY, key_id=KEY_ID, private_key=PRIVATE_KEY, now=NOW
    )
    assert not _parse("POST", INBOX, headers, ACTIVITY).verify(PUBLIC_KEY)


def test_headers_are_case_insensitive() -> None:
    headers = {name.upper(): value for name, value in _signed_post().items()}
    assert _parse("POST", INBOX, headers, ACTIVITY).verify(PUBLIC_KEY)


# --------------------------------------------------------------------------------------------
# Digest variants


def _post_with_digest(digest: str) -> dict[str, str]:
    headers = {
        "Host": "herold.example",
        "Date": "Wed, 20 Dec 2023 10:00:00 GMT",
        "Digest": digest,
        "Content-Type": "application/activity+json",
    }
    headers["Signature"] = mastodon_sign(
        PRIVATE_KEY,
        KEY_ID,
        "post /users/alice/inbox",
        headers,
        ["(request-target)", "host", "date", "digest", "content-type"],
    )
    return headers


def test_sha512_digest_is_accepted() -> None:
    digest = body_digest(ACTIVITY, "SHA-512")
    assert digest == "SHA-512=" + base64.b64encode(hashlib.sha512(ACTIVITY).digest()).decode()
    assert _parse("POST", INBOX, _post_with_digest(digest), ACTIVITY).verify(PUBLIC_KEY)


def test_several_digests_all_supported_must_match() -> None:
    both = f"{body_digest(ACTIVITY)}, {body_digest(ACTIVITY, 'sha-512')}, MD5=XrY7u+Ae7tCTyyK7j1rNww=="
    assert _parse("POST", INBOX, _post_with_digest(both), ACTIVITY).verify(PUBLIC_KEY)
    one_wrong = f"{body_digest(ACTIVITY)}, {body_digest(b'other', 'SHA-512')}"
    with pytest.raises(SignatureError, match=r"^Digest does not match the body$"):
        _parse("POST", INBOX, _post_with_digest(one_wrong), ACTIVITY)


def test_digest_without_supported_algorithm_is_refused() -> None:
    with pytest.raises(SignatureError, match="no supported algorithm \\(offered: md5"):
        _parse("POST", INBOX, _post_with_digest("MD5=XrY7u+Ae7tCTyyK7j1rNww=="), ACTIVITY)


def test_digest_with_bad_base64_is_refused() -> None:
    with pytest.raises(SignatureError, match="not valid base64"):
        _parse("POST", INBOX, _post_with_digest("SHA-256=not base64!"), ACTIVITY)


def test_body_digest_rejects_unknown_algorithm() -> None:
    with pytest.raises(ValueError, match="unsupported digest algorithm"):
        body_digest(b"", "MD5")


def test_content_digest_format() -> None:
    # RFC 9530 section 2 example body.
    assert content_digest(b'{"hello": "world"}') == "sha-256=:X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE=:"


# --------------------------------------------------------------------------------------------
# Header parsing robustness


def test_quoted_values_with_commas_escaped_quotes_and_unknown_params() -> None:
    key_id = 'https://remote.domain/users/bob,with"comma#main-key'
    headers = {"Host": "herold.example", "Date": "Wed, 20 Dec 2023 10:00:00 GMT"}
    signed = ["(request-target)", "host", "date"]
    signature = mastodon_sign(
        PRIVATE_KEY, "PLACEHOLDER", "get /users/alice", headers, signed, extra_params=',note="a, \\"b\\", c"'
    )
    headers["Signature"] = "Signature " + signature.replace(
        "PLACEHOLDER", 'https://remote.domain/users/bob,with\\"comma#main-key'
    )
    headers["Signature"] = headers["Signature"].replace('",algorithm=', '" , algorithm=')
    result = _parse("GET", "https://herold.example/users/alice", headers, None)
    assert result.key_id == key_id
    assert result.verify(PUBLIC_KEY)


def test_hs2019_with_created_and_expires() -> None:
    created = int(NOW.timestamp()) - 30
    headers = {"Host": "herold.example", "Date": "garbage: not signed, so never read"}
    lines = [
        "(request-target): get /users/alice",
        "host: herold.example",
        f"(created): {created}",
        f"(expires): {created + 60}",
    ]
    raw = PRIVATE_KEY.sign("\n".join(lines).encode(), padding.PKCS1v15(), hashes.SHA256())
    headers["Signature"] = (
        f'keyId="{KEY_ID}",algorithm="hs2019",created={created},expires={created + 60},'
        f'headers="(request-target) host (created) (expires)",signature="{base64.b64encode(raw).decode()}"'
    )
    url = "https://herold.example/users/alice"
    assert _parse("GET", url, headers, None).verify(PUBLIC_KEY)
    # Expired a minute after signing, plus the hour of clock skew; still inside the (created) window.
    with pytest.raises(SignatureError, match=r"^signature has expired$"):
        _parse("GET", url, headers, None, now=NOW + timedelta(hours=1, minutes=1))
    with pytest.raises(SignatureError, match=r"^\(created\) is outside the accepted window"):
        _parse("GET", url, headers, None, now=NOW - timedelta(hours=2))


# --------------------------------------------------------------------------------------------
# RFC 9421: an independent signer following the shape of the RFC's section 2.5 example

RFC_URL = "https://example.com/foo?param=Value&Pet=dog"
RFC_BODY = b'{"hello": "world"}'
RFC_CREATED = 1618884473
RFC_NOW = datetime.fromtimestamp(RFC_CREATED + 5, UTC)
# The RFC's own Content-Digest for this body (RFC 9421 section 2.5, RFC 9530).
RFC_DIGEST = (
    "sha-512=:WZDPaVn/7XgHaAy8pmojAkGWoRx2UFChF41A2svX+TaPm+AbwAgBWnrIiYllu7BNNyealdVLvRwEmTHWXvJwew==:"
)
RFC_HEADERS = {
    "Host": "example.com",
    "Date": "Tue, 20 Apr 2021 02:07:55 GMT",
    "Content-Type": "application/json",
    "Content-Digest": RFC_DIGEST,
    "Content-Length": "18",
}
RFC_BASE = (
    '"@method": POST\n'
    '"@authority": example.com\n'
    '"@path": /foo\n'
    '"@query": ?param=Value&Pet=dog\n'
    '"@target-uri": https://example.com/foo?param=Value&Pet=dog\n'
    '"@request-target": /foo?param=Value&Pet=dog\n'
    f'"content-digest": {RFC_DIGEST}\n'
    '"content-length": 18\n'
    '"content-type": application/json\n'
    '"@signature-params": ("@method" "@authority" "@path" "@query" "@target-uri" "@request-target" '
    '"content-digest" "content-length" "content-type")'
    ';created=1618884473;keyid="test-key-rsa";alg="rsa-v1_5-sha256"'
)
RFC_INPUT = RFC_BASE.rsplit('"@signature-params": ', 1)[1]


def _rfc_signed_headers(base: str = RFC_BASE, signature_input: str = RFC_INPUT) -> dict[str, str]:
    raw = PRIVATE_KEY.sign(base.encode(), padding.PKCS1v15(), hashes.SHA256())
    return {
        **RFC_HEADERS,
        "Signature-Input": f"sig-b21={signature_input}",
        "Signature": f"sig-b21=:{base64.b64encode(raw).decode()}:",
    }


def test_rfc9421_hand_built_signature_is_accepted() -> None:
    result = _parse("POST", RFC_URL, _rfc_signed_headers(), RFC_BODY, now=RFC_NOW)
    assert result.scheme == "rfc9421"
    assert result.key_id == "test-key-rsa"
    assert result.signature_bases == (RFC_BASE.encode(),)
    assert result.verify(PUBLIC_KEY)


def test_rfc9421_signature_params_are_reserialized_canonically() -> None:
    spaced = RFC_INPUT.replace("(", "(  ", 1).replace('" "', '"   "')
    headers = _rfc_signed_headers(signature_input=spaced)
    headers["Signature-Input"] = " " + headers["Signature-Input"] + " "
    assert _parse("POST", RFC_URL, headers, RFC_BODY, now=RFC_NOW).verify(PUBLIC_KEY)


def test_rfc9421_only_first_label_is_used() -> None:
    headers = _rfc_signed_headers()
    headers["Signature-Input"] += ', sig2=("@method");created=1;keyid="other";alg="hmac-sha256"'
    headers["Signature"] += ", sig2=:AAAA:"
    assert _parse("POST", RFC_URL, headers, RFC_BODY, now=RFC_NOW).verify(PUBLIC_KEY)


def test_rfc9421_without_alg_is_accepted() -> None:
    base = RFC_BASE.replace(';alg="rsa-v1_5-sha256"', "")
    headers = _rfc_signed_headers(base=base, signature_input=RFC_INPUT.replace(';alg="rsa-v1_5-sha256"', ""))
    assert _parse("POST", RFC_URL, headers, RFC_BODY, now=RFC_NOW).verify(PUBLIC_KEY)


def test_rfc9421_wrong_key_and_wrong_uri_do_not_verify(other_key: RSAPrivateKey) -> None:
    headers = _rfc_signed_headers()
    assert not _parse("POST", RFC_URL, headers, RFC_BODY, now=RFC_NOW).verify(other_key.public_key())
    assert not _parse("POST", RFC_URL.replace("Pet=dog", "Pet=cat"), headers, RFC_BODY, now=RFC_NOW).verify(
        PUBLIC_KEY
    )


def _rfc9421_minimal(signature_input: str) -> dict[str, str]:
    return {
        "Host": "example.com",
        "Content-Digest": content_digest(RFC_BODY),
        "Signature-Input": f"sig1={signature_input}",
        "Signature": "sig1=:AAAA:",
    }


@pytest.mark.parametrize(
    ("signature_input", "reason"),
    [
        (
            '("@method" "@target-uri" "content-digest");created=1618884473;keyid="k";alg="rsa-pss-sha512"',
            "^unsupported algorithm rsa-pss-sha512$",
        ),
        ('("@method" "@target-uri" "content-digest");keyid="k"', "missing created"),
        ('("@method" "@target-uri" "content-digest");created=1618884473', "missing keyid"),
        ('("@method" "content-digest");created=1618884473;keyid="k"', "does not cover @target-uri"),
        ('("@target-uri" "content-digest");created=1618884473;keyid="k"', "does not cover @method"),
        ('("@method" "@target-uri");created=1618884473;keyid="k"', "does not cover content-digest"),
        ('("@method" "@target-uri" "content-digest");created=1618800000;keyid="k"', "^created is outside"),
        (
            '("@method" "@target-uri" "content-digest");created=1618884473;expires=1618880000;keyid="k"',
            "^signature has expired$",
        ),
        (
            '("@method" "@target-uri" "content-digest" "@status");created=1618884473;keyid="k"',
            "derived component",
        ),
        ('("@method" "@target-uri" "content-digest";sf);created=1618884473;keyid="k"', "has parameters"),
        ('("@method" "@method" "@target-uri" "content-digest");created=1618884473;keyid="k"', "listed twice"),
        (
            '("@method" "@target-uri" "content-digest" "x-missing");created=1618884473;keyid="k"',
            "signed header x-missing is missing",
        ),
        (
            '("@method" "@target-uri" "content-digest";created=1618884473;keyid="k"',
            "Signature-Input header is malformed",
        ),
        ("%%%", "Signature-Input header is malformed"),
    ],
)
def test_rfc9421_reasons(signature_input: str, reason: str) -> None:
    with pytest.raises(SignatureError, match=reason):
        _parse("POST", RFC_URL, _rfc9421_minimal(signature_input), RFC_BODY, now=RFC_NOW)


def test_rfc9421_content_digest_mismatch() -> None:
    with pytest.raises(SignatureError, match=r"^Content-Digest does not match the body$"):
        _parse("POST", RFC_URL, _rfc_signed_headers(), RFC_BODY + b"\n", now=RFC_NOW)


def test_rfc9421_signature_label_must_match() -> None:
    headers = _rfc_signed_headers()
    headers["Signature"] = headers["Signature"].replace("sig-b21=", "other=")
    with pytest.raises(SignatureError, match="no signature labelled sig-b21"):
        _parse("POST", RFC_URL, headers, RFC_BODY, now=RFC_NOW)


def test_rfc9421_headers_shape() -> None:
    headers = sign_request_rfc9421(
        method="POST",
        url="http://127.0.0.2:9100/inbox",
        body=b"{}",
        key_id="k#1",
        private_key=PRIVATE_KEY,
        now=NOW,
    )
    created = int(NOW.timestamp())
    assert headers["Signature-Input"] == (
        f'sig1=("@method" "@target-uri" "content-digest" "content-type");created={created};'
        'keyid="k#1";alg="rsa-v1_5-sha256"'
    )
    assert headers["Signature"].startswith("sig1=:") and headers["Signature"].endswith(":")
    assert headers["Content-Digest"] == content_digest(b"{}")


# --------------------------------------------------------------------------------------------
# KeyCache


def _public_pem(key: RSAPrivateKey) -> str:
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def test_key_cache_returns_the_identical_object() -> None:
    cache = KeyCache()
    assert cache.private_key(VECTORS["private_key_pem"]) is cache.private_key(VECTORS["private_key_pem"])
    assert cache.public_key(VECTORS["public_key_pem"]) is cache.public_key(VECTORS["public_key_pem"])


def test_key_caches_are_per_instance() -> None:
    assert KeyCache().public_key(VECTORS["public_key_pem"]) is not KeyCache().public_key(
        VECTORS["public_key_pem"]
    )


def test_key_cache_evicts_least_recently_used(other_key: RSAPrivateKey) -> None:
    third = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    a, b, c = VECTORS["public_key_pem"], _public_pem(other_key), _public_pem(third)
    cache = KeyCache(max_public=2, max_private=1)
    key_a = cache.public_key(a)
    key_b = cache.public_key(b)
    assert cache.public_key(a) is key_a  # a is now the most recently used
    cache.public_key(c)  # evicts b, not a
    assert cache.public_key(a) is key_a
    assert cache.public_key(b) is not key_b


def test_key_cache_stays_bounded() -> None:
    # Distinct PEM texts (trailing newlines differ) of one key: cheap to parse, separate entries.
    pems = [VECTORS["public_key_pem"] + "\n" * i for i in range(10)]
    cache = KeyCache(max_public=3)
    first = [cache.public_key(pem) for pem in pems]
    assert all(cache.public_key(pem) is key for pem, key in zip(pems[-3:], first[-3:], strict=True))
    assert all(cache.public_key(pem) is not key for pem, key in zip(pems[:3], first[:3], strict=True))


def test_key_cache_private_bound() -> None:
    cache = KeyCache(max_public=1, max_private=1)
    first = cache.private_key(VECTORS["private_key_pem"])
    other = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    other_pem = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    other_key = cache.private_key(other_pem)
    assert cache.private_key(other_pem) is other_key
    assert cache.private_key(VECTORS["private_key_pem"]) is not first


def test_key_cache_refuses_unusable_public_keys() -> None:
    cache = KeyCache()
    with pytest.raises(SignatureError, match="cannot be parsed"):
        cache.public_key("-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    ed_pem = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    with pytest.raises(SignatureError, match="not an RSA key"):
        cache.public_key(ed_pem)


def test_key_cache_accepts_pkcs1_public_keys() -> None:
    pkcs1 = PUBLIC_KEY.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1).decode()
    assert "BEGIN RSA PUBLIC KEY" in pkcs1
    assert KeyCache().public_key(pkcs1).public_numbers() == PUBLIC_KEY.public_numbers()


def test_an_internationalised_host_is_signed_as_it_is_sent_in_punycode() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    headers = sign_request(
        method="POST",
        url="https://bücher.example/inbox",
        body=b"{}",
        key_id="https://a.test/k",
        private_key=key,
    )
    assert headers["Host"] == "xn--bcher-kva.example"
    with pytest.raises(ValueError):
        sign_request(method="POST", url="https://a..example/inbox", body=b"{}", key_id="k", private_key=key)
