"""HTTP message signatures for federation: draft-cavage (what Mastodon speaks) and RFC 9421.

Everything here is pure: no I/O, no module-level mutable state. Verification is split in two
steps because the public key is only known after the keyId has been read and the actor fetched:

    signed = parse_signed_request(...)        # raises SignatureError with a reason
    key = key_cache.public_key(actor_pem)     # caller looks the key up by signed.key_id
    if not signed.verify(key): ...            # the RSA check itself
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from typing import Literal, TypeVar
from urllib.parse import SplitResult, quote, urlsplit

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey

from app.activitypub.addresses import DEFAULT_PORTS, ascii_hostname, host_header
from app.activitypub.keys import load_own_private_key

__all__ = [
    "CLOCK_SKEW_FUTURE",
    "CLOCK_SKEW_PAST",
    "DRAFT_CAVAGE_ALGORITHMS",
    "RFC9421_ALGORITHM",
    "KeyCache",
    "SignatureError",
    "SignedRequest",
    "UnsignedRequest",
    "body_digest",
    "content_digest",
    "http_date",
    "parse_signed_request",
    "prepare_signature",
    "prepare_signature_at",
    "request_target",
    "sign_request",
    "sign_request_rfc9421",
]

# How far a signed timestamp (Date, (created), created=) may lie from our clock.
#
# We take current Mastodon's window (SignatureVerification#matches_time_window?): a signature
# without an explicit expiry is good for 5 minutes after it was made, plus 1 hour of clock skew
# (CLOCK_SKEW_MARGIN) either way, so a Date may be at most 1 h 5 min old and at most 1 h ahead.
# A sender that Mastodon accepts is accepted here, and vice versa. Every sender we know of signs
# each delivery attempt afresh, so a longer window would only widen the replay window; replays
# inside it are caught by de-duplicating activity ids.
CLOCK_SKEW_PAST = timedelta(hours=1, minutes=5)
CLOCK_SKEW_FUTURE = timedelta(hours=1)

DRAFT_CAVAGE_ALGORITHMS = frozenset({"rsa-sha256", "hs2019"})
RFC9421_ALGORITHM = "rsa-v1_5-sha256"

# Methods whose body must be bound to the signature through Digest / Content-Digest.
_BODY_METHODS = frozenset({"POST", "PUT"})

_DIGESTS: Mapping[str, Callable[[bytes], hashlib._Hash]] = {
    "sha-256": hashlib.sha256,
    "sha-512": hashlib.sha512,
}

_PKCS1V15 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()

# Characters a request target may not hold as they are (controls, space, DEL).
_UNSAFE_TARGET = frozenset(range(0x21)) | {0x7F}
_SAFE_TARGET_CHARACTERS = "".join(chr(code) for code in range(0x21, 0x7F))

# draft-cavage auth-param: token "=" ( token / quoted-string ), separated by commas. Unquoted
# values are read up to the next comma or whitespace, so an unquoted base64 signature also parses.
# Possessive quantifiers: a quoted value (the signature itself, 344 characters of base64) is taken
# in runs rather than one character per alternation, four times faster, and never backtracks.
_CAVAGE_PARAM_RE = re.compile(
    r"[ \t]*([!#$%&'*+.^_`|~0-9A-Za-z-]+)[ \t]*=[ \t]*"
    r'(?:"((?:[^"\\]++|\\.)*+)"|([^",\s]*+))[ \t]*(,|\Z)',
    re.DOTALL,
)
_QUOTED_PAIR_RE = re.compile(r"\\(.)", re.DOTALL)
_UNIX_TIME_RE = re.compile(r"\d{1,12}")


class SignatureError(Exception):
    """A request signature is absent, malformed or unacceptable.

    The message is a precise reason meant to be returned verbatim as the 401 body.
    """


# --------------------------------------------------------------------------------------------
# Digests


def body_digest(body: bytes, algorithm: str = "SHA-256") -> str:
    """The draft-cavage ``Digest`` header value, e.g. ``SHA-256=base64``."""
    hasher = _DIGESTS.get(algorithm.lower())
    if hasher is None:
        raise ValueError(f"unsupported digest algorithm {algorithm}")
    return f"{algorithm.upper()}={base64.b64encode(hasher(body).digest()).decode('ascii')}"


def content_digest(body: bytes) -> str:
    """The RFC 9530 ``Content-Digest`` header value, ``sha-256=:base64:``."""
    return f"sha-256=:{base64.b64encode(hashlib.sha256(body).digest()).decode('ascii')}:"


def _check_digest_header(value: str, body: bytes) -> None:
    supported = 0
    offered: list[str] = []
    for part in value.split(","):
        name, sep, encoded = part.strip().partition("=")
        algorithm = name.strip().lower()
        if not sep or not algorithm:
            raise SignatureError("Digest header is malformed")
        offered.append(algorithm)
        hasher = _DIGESTS.get(algorithm)
        if hasher is None:
            continue
        supported += 1
        try:
            expected = base64.b64decode(encoded.strip(), validate=True)
        except ValueError:  # binascii.Error, or non-ASCII header bytes (found by fuzzing)
            raise SignatureError(f"Digest value for {algorithm.upper()} is not valid base64") from None
        if expected != hasher(body).digest():
            raise SignatureError("Digest does not match the body")
    if not supported:
        raise SignatureError(
            f"Digest header has no supported algorithm (offered: {', '.join(offered)}; "
            "supported: SHA-256, SHA-512)"
        )


def _check_content_digest_header(value: str, body: bytes) -> None:
    try:
        members = _SFParser(value).dictionary()
    except _SFError as exc:
        raise SignatureError(f"Content-Digest header is malformed: {exc}") from None
    supported = 0
    for algorithm, (expected, _params) in members.items():
        hasher = _DIGESTS.get(algorithm)
        if hasher is None:
            continue
        supported += 1
        if not isinstance(expected, bytes):
            raise SignatureError(f"Content-Digest value for {algorithm} is not a byte sequence")
        if expected != hasher(body).digest():
            raise SignatureError("Content-Digest does not match the body")
    if not supported:
        raise SignatureError(
            f"Content-Digest header has no supported algorithm (offered: {', '.join(members)}; "
            "supported: sha-256, sha-512)"
        )


# --------------------------------------------------------------------------------------------
# Key cache

_K = TypeVar("_K")


class KeyCache:
    """Parsed keys by PEM text, least recently used evicted first.

    Parsing is worth doing once: a public key costs tens of microseconds, and a private one ~40 ms
    wherever RSA's consistency checks run (our own are loaded without them, see
    `load_own_private_key`). Every signer and verifier should share one instance per process. It
    is an instance, not a global, so tests and separate apps do not share keys by accident.
    """

    def __init__(self, max_public: int = 4096, max_private: int = 256) -> None:
        if max_public < 1 or max_private < 1:
            raise ValueError("KeyCache sizes must be at least 1")
        self._max_public = max_public
        self._max_private = max_private
        self._public: OrderedDict[str, RSAPublicKey] = OrderedDict()
        self._private: OrderedDict[str, RSAPrivateKey] = OrderedDict()
        # Held during the parse too: FastAPI runs sync code in a thread pool, and two threads
        # missing at once would otherwise both parse the same key.
        self._lock = threading.Lock()

    def public_key(self, pem: str) -> RSAPublicKey:
        """Parse (once) a remote actor's ``publicKeyPem``; SignatureError if unusable."""
        return self._get(self._public, self._max_public, pem, _load_public_key)

    def private_key(self, pem: str) -> RSAPrivateKey:
        """Parse (once) one of our own private keys; ValueError if unusable."""
        return self._get(self._private, self._max_private, pem, _load_private_key)

    def _get(self, cache: OrderedDict[str, _K], limit: int, pem: str, load: Callable[[str], _K]) -> _K:
        with self._lock:
            key = cache.get(pem)
            if key is not None:
                cache.move_to_end(pem)
                return key
            key = load(pem)
            cache[pem] = key
            if len(cache) > limit:
                cache.popitem(last=False)
            return key


def _load_public_key(pem: str) -> RSAPublicKey:
    # Remote input: failures become SignatureError so the inbox can answer 401 with the reason.
    try:
        key = serialization.load_pem_public_key(pem.encode("ascii"))
    except (ValueError, UnicodeEncodeError, UnsupportedAlgorithm):
        raise SignatureError("public key PEM cannot be parsed") from None
    if not isinstance(key, RSAPublicKey):
        raise SignatureError(f"public key is not an RSA key ({type(key).__name__})")
    return key


def _load_private_key(pem: str) -> RSAPrivateKey:
    try:
        return load_own_private_key(pem.encode("ascii"))
    except TypeError as error:
        raise ValueError(str(error)) from None


# --------------------------------------------------------------------------------------------
# Small helpers shared by signing and verification


def _as_utc(moment: datetime) -> datetime:
    # A naive datetime is taken to be UTC (datetime.utcnow() style) rather than local time.
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def http_date(moment: datetime) -> str:
    """An HTTP Date header's value (IMF-fixdate) for `moment`."""
    return format_datetime(_as_utc(moment).replace(microsecond=0), usegmt=True)


def _encode(text: str) -> bytes:
    # ASGI servers decode header bytes as latin-1, so latin-1 gives back the bytes that were on
    # the wire; text that cannot be latin-1 can only have come from UTF-8.
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _authority(parts: SplitResult) -> str:
    hostname = parts.hostname
    if not hostname:
        raise ValueError(f"URL has no host: {parts.geturl()}")
    # The Host header is sent in ASCII (punycode), so that is what is signed.
    return host_header(ascii_hostname(hostname), parts.port, parts.scheme)


def _normalize_authority(authority: str, scheme: str) -> str:
    # RFC 9421 section 2.2.3: lowercase, default port omitted.
    authority = authority.strip().lower()
    default = DEFAULT_PORTS.get(scheme.lower())
    if default is not None and authority.endswith(f":{default}"):
        return authority[: -len(str(default)) - 1]
    return authority


def request_target(parts: SplitResult) -> str:
    """The request target as it goes on the wire (path and query), which is what gets signed.

    Controls, space, DEL and non-ASCII cannot stand in a request line: they are percent-encoded
    (UTF-8), as httpx encodes them too, so the signed target is the target sent.
    """
    target = parts.path or "/"
    if parts.query:
        target = f"{target}?{parts.query}"
    if not target.isascii() or any(ord(character) in _UNSAFE_TARGET for character in target):
        target = quote(target, safe=_SAFE_TARGET_CHARACTERS)
    return target


def _check_window(what: str, moment: datetime, now: datetime) -> None:
    if moment > now + CLOCK_SKEW_FUTURE:
        raise SignatureError(
            f"{what} is outside the accepted window (more than {_describe(CLOCK_SKEW_FUTURE)} in the future)"
        )
    if moment < now - CLOCK_SKEW_PAST:
        raise SignatureError(
            f"{what} is outside the accepted window (older than {_describe(CLOCK_SKEW_PAST)})"
        )


def _check_expires(expires: datetime, now: datetime) -> None:
    # Same tolerance for a sender's clock running behind as for one running ahead.
    if now > expires + CLOCK_SKEW_FUTURE:
        raise SignatureError("signature has expired")


def _describe(delta: timedelta) -> str:
    hours, rest = divmod(int(delta.total_seconds()), 3600)
    if rest:
        return f"{int(delta.total_seconds())} seconds"
    return "1 hour" if hours == 1 else f"{hours} hours"


def _unix_time(value: str, what: str) -> datetime:
    if not _UNIX_TIME_RE.fullmatch(value):
        raise SignatureError(f"{what} is not a Unix timestamp")
    return datetime.fromtimestamp(int(value), UTC)


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    # Repeated fields (a multi-dict such as Starlette's Headers) combine as RFC 9110 5.3 says.
    lowered: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        value = value.strip(" \t")
        lowered[key] = f"{lowered[key]}, {value}" if key in lowered else value
    return lowered


# --------------------------------------------------------------------------------------------
# Verification result


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """What a signature says, learned before the signer's key is known.

    ``signed_headers`` holds the lowercase draft-cavage header names, or the RFC 9421 component
    identifiers, in signing order.
    """

    key_id: str
    scheme: Literal["draft-cavage", "rfc9421"]
    signed_headers: list[str]
    algorithm: str
    signature: bytes = field(repr=False)
    # Candidate signing strings: the draft-cavage one with the query string first, then (for
    # Mastodon's compatibility quirk) the one without it.
    signature_bases: tuple[bytes, ...] = field(repr=False)

    def verify(self, public_key: RSAPublicKey) -> bool:
        """RSASSA-PKCS1-v1_5 with SHA-256 over any candidate signing string."""
        for base in self.signature_bases:
            try:
                public_key.verify(self.signature, base, _PKCS1V15, _SHA256)
            except InvalidSignature:
                continue
            return True
        return False


def parse_signed_request(
    *,
    method: str,
    path: str,
    query: str,
    headers: Mapping[str, str],
    body: bytes | None,
    now: datetime,
    host: str | None = None,
    scheme: str = "https",
) -> SignedRequest:
    """Check everything about a signed request that does not need the key.

    ``path`` and ``query`` are as they came over the wire (ASGI ``raw_path``, still
    percent-encoded; query without its ``?``). ``host``, when given, is the authority this
    server answers as and is used instead of the Host header, so a request signed for another
    server cannot be replayed here. ``scheme`` builds the RFC 9421 ``@target-uri``.
    """
    lowered = _lower_headers(headers)
    now = _as_utc(now)
    method = method.upper()
    path = path or "/"
    body_bytes = body if body is not None else b""
    host_value = host if host is not None else lowered.get("host")
    if "signature-input" in lowered:
        return _parse_rfc9421(method, path, query, lowered, body_bytes, now, host_value, scheme)
    if not lowered.get("signature"):
        raise SignatureError("request is not signed (no Signature or Signature-Input header)")
    return _parse_cavage(method, path, query, lowered, body_bytes, now, host_value)


# --------------------------------------------------------------------------------------------
# draft-cavage-http-signatures


def _parse_cavage_params(raw: str) -> dict[str, str]:
    text = raw.strip()
    # Old node-http-signature sends the auth-scheme inside the header; Mastodon tolerates it.
    if text.startswith("Signature "):
        text = text[len("Signature ") :].lstrip()
    params: dict[str, str] = {}
    pos = 0
    end = len(text)
    while pos < end:
        match = _CAVAGE_PARAM_RE.match(text, pos)
        if match is None:
            raise SignatureError(f"Signature header is malformed at character {pos + 1}")
        name, quoted, bare, _sep = match.groups()
        if name in params:
            raise SignatureError(f"Signature header has a duplicate {name} parameter")
        if quoted is not None:
            params[name] = _QUOTED_PAIR_RE.sub(r"\1", quoted) if "\\" in quoted else quoted
        else:
            params[name] = bare
        pos = match.end()
    if not params:
        raise SignatureError("Signature header is malformed: no parameters")
    return params


def _decode_signature(value: str) -> bytes:
    try:
        signature = base64.b64decode(value.strip(), validate=True)
    except ValueError:  # binascii.Error, or non-ASCII header bytes (found by fuzzing)
        raise SignatureError("signature is not valid base64") from None
    if not signature:
        raise SignatureError("signature is empty")
    return signature


def _parse_cavage(
    method: str,
    path: str,
    query: str,
    lowered: dict[str, str],
    body: bytes,
    now: datetime,
    host: str | None,
) -> SignedRequest:
    params = _parse_cavage_params(lowered["signature"])
    key_id = params.get("keyId", "").strip()
    if not key_id:
        raise SignatureError("Signature header is missing keyId")
    if not params.get("signature"):
        raise SignatureError("Signature header is missing signature")
    # An absent algorithm means hs2019 (draft 12); that is also what Mastodon assumes.
    algorithm = params.get("algorithm", "hs2019").strip().lower()
    if algorithm not in DRAFT_CAVAGE_ALGORITHMS:
        raise SignatureError(f"unsupported algorithm {algorithm}")
    signature = _decode_signature(params["signature"])
    default_headers = "(created)" if algorithm == "hs2019" else "date"
    signed = params.get("headers", default_headers).lower().split()

    if "(request-target)" not in signed:
        raise SignatureError("signature does not cover (request-target)")
    if "host" not in signed:
        raise SignatureError("signature does not cover host")
    if "date" not in signed and "(created)" not in signed:
        raise SignatureError("signature does not cover date or (created)")
    if method in _BODY_METHODS and "digest" not in signed:
        raise SignatureError("signature does not cover digest")

    for pseudo, param in (("(created)", "created"), ("(expires)", "expires")):
        if pseudo in signed:
            # The draft forbids them with rsa-sha256: the algorithm name would not say which
            # signing-string rules apply. Mastodon refuses the same way.
            if algorithm != "hs2019":
                raise SignatureError(f"{pseudo} cannot be used with algorithm {algorithm}")
            if not params.get(param):
                raise SignatureError(f"{pseudo} is signed but the {param} parameter is missing")

    # Only signed timestamps count: an unsigned one says nothing about when this was signed.
    if "(created)" in signed:
        _check_window("(created)", _unix_time(params["created"].strip(), "created"), now)
    if "date" in signed:
        date_value = lowered.get("date")
        if date_value is None:
            raise SignatureError("signed header date is missing")
        _check_window("Date", _parse_http_date(date_value), now)
    if "(expires)" in signed:
        _check_expires(_unix_time(params["expires"].strip(), "expires"), now)

    digest_value = lowered.get("digest")
    if digest_value is not None:
        _check_digest_header(digest_value, body)

    lines: list[str] = []
    target_indices: list[int] = []
    for name in signed:
        if name == "(request-target)":
            target_indices.append(len(lines))
            lines.append("")  # filled in per candidate below
        elif name in ("(created)", "(expires)"):
            lines.append(f"{name}: {params[name[1:-1]].strip()}")
        elif name == "host":
            if host is None:
                raise SignatureError("signed header host is missing")
            lines.append(f"host: {host}")
        else:
            value = lowered.get(name)
            if value is None:
                raise SignatureError(f"signed header {name} is missing")
            lines.append(f"{name}: {value}")

    target = f"{method.lower()} {path}"
    targets = [f"{target}?{query}", target] if query else [target]
    bases: list[bytes] = []
    for candidate in targets:
        for index in target_indices:
            lines[index] = f"(request-target): {candidate}"
        bases.append(_encode("\n".join(lines)))

    return SignedRequest(
        key_id=key_id,
        scheme="draft-cavage",
        signed_headers=signed,
        algorithm=algorithm,
        signature=signature,
        signature_bases=tuple(bases),
    )


def _parse_http_date(value: str) -> datetime:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        raise SignatureError("Date header is not a valid HTTP date") from None
    return _as_utc(parsed)


@dataclass(frozen=True, slots=True)
class UnsignedRequest:
    """A request's headers and its draft-cavage signing string, waiting for the RSA signature.

    The signature itself may be made elsewhere (deliveries sign in a process of their own,
    app/activitypub/signing_process.py); `signed` puts it in its header.
    """

    headers: dict[str, str]
    names: str
    signing_string: bytes
    key_id: str

    def signed(self, signature: bytes) -> dict[str, str]:
        return {
            **self.headers,
            "Signature": (
                f'keyId="{_quote(self.key_id)}",algorithm="rsa-sha256",'
                f'headers="{self.names}",signature="{_b64(signature)}"'
            ),
        }


def prepare_signature(
    *,
    method: str,
    url: str,
    body: bytes | None,
    key_id: str,
    content_type: str | None = "application/activity+json",
    now: datetime | None = None,
    extra_headers: dict[str, str] | None = None,
    digest: str | None = None,
) -> UnsignedRequest:
    """Everything of `sign_request` but the RSA signature. `digest`, when given, is the body's
    Digest value already computed (a fan-out sends one body to many inboxes)."""
    parts = urlsplit(url)
    return prepare_signature_at(
        method=method,
        authority=_authority(parts),
        path=request_target(parts),
        date=http_date(now if now is not None else datetime.now(UTC)),
        body=body,
        key_id=key_id,
        content_type=content_type,
        extra_headers=extra_headers,
        digest=digest,
    )


def prepare_signature_at(
    *,
    method: str,
    authority: str,
    path: str,
    date: str,
    body: bytes | None,
    key_id: str,
    content_type: str | None = "application/activity+json",
    extra_headers: dict[str, str] | None = None,
    digest: str | None = None,
) -> UnsignedRequest:
    """`prepare_signature` for a URL already taken apart: `authority` is the Host header's value,
    `path` the request target as sent (`request_target`), `date` the Date header's value
    (`http_date`). A fan-out parses each inbox once and formats the date once a second."""
    method = method.upper()
    extra = _check_extra_headers(extra_headers, reserved=("host", "date", "digest", "signature"))

    target = f"{method.lower()} {path}"
    headers: dict[str, str] = {"Host": authority, "Date": date}
    names = ["(request-target)", "host", "date"]
    lines = [f"(request-target): {target}", f"host: {authority}", f"date: {date}"]
    if body is not None or method in _BODY_METHODS:
        if digest is None:
            digest = body_digest(body or b"")
        headers["Digest"] = digest
        names.append("digest")
        lines.append(f"digest: {digest}")
        if content_type is not None:
            headers["Content-Type"] = content_type
            names.append("content-type")
            lines.append(f"content-type: {content_type}")
    headers.update(extra)
    accept = _find_header(extra, "accept")
    if accept is not None:
        names.append("accept")
        lines.append(f"accept: {accept.strip()}")
    return UnsignedRequest(headers, " ".join(names), _encode("\n".join(lines)), key_id)


def sign_request(
    *,
    method: str,
    url: str,
    body: bytes | None,
    key_id: str,
    private_key: RSAPrivateKey,
    content_type: str | None = "application/activity+json",
    now: datetime | None = None,
    extra_headers: dict[str, str] | None = None,
) -> dict[str, str]:
    """Sign a request the way Mastodon does (draft-cavage, rsa-sha256).

    Returns the headers to send. A POST/PUT always carries a Digest (of an empty body if none).
    Of ``extra_headers`` only Accept is signed, as Mastodon does: other headers (User-Agent...)
    are too often rewritten on the way.
    """
    unsigned = prepare_signature(
        method=method,
        url=url,
        body=body,
        key_id=key_id,
        content_type=content_type,
        now=now,
        extra_headers=extra_headers,
    )
    return unsigned.signed(private_key.sign(unsigned.signing_string, _PKCS1V15, _SHA256))


def _check_extra_headers(extra: dict[str, str] | None, reserved: tuple[str, ...]) -> dict[str, str]:
    if not extra:
        return {}
    for name in extra:
        lowered = name.lower()
        if lowered in reserved or lowered == "content-type":
            raise ValueError(f"{name} is computed by the signer and cannot be an extra header")
    return extra


def _find_header(headers: Mapping[str, str], wanted: str) -> str | None:
    for name, value in headers.items():
        if name.lower() == wanted:
            return value
    return None


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


# --------------------------------------------------------------------------------------------
# RFC 9421 HTTP Message Signatures


def _parse_rfc9421(
    method: str,
    path: str,
    query: str,
    lowered: dict[str, str],
    body: bytes,
    now: datetime,
    host: str | None,
    scheme: str,
) -> SignedRequest:
    try:
        inputs = _SFParser(lowered["signature-input"]).dictionary()
    except _SFError as exc:
        raise SignatureError(f"Signature-Input header is malformed: {exc}") from None
    if not inputs:
        raise SignatureError("Signature-Input header is empty")
    # Only the first label is verified. Fediverse senders attach one signature; taking the first
    # is deterministic and never lets a later, weaker signature stand in for a failing one.
    label, (components_member, params) = next(iter(inputs.items()))
    if not isinstance(components_member, list):
        raise SignatureError(f"Signature-Input {label} is not a list of components")

    raw_signatures = lowered.get("signature")
    if raw_signatures is None:
        raise SignatureError("Signature header is missing")
    try:
        signatures = _SFParser(raw_signatures).dictionary()
    except _SFError as exc:
        raise SignatureError(f"Signature header is malformed: {exc}") from None
    if label not in signatures:
        raise SignatureError(f"Signature header has no signature labelled {label}")
    signature = signatures[label][0]
    if not isinstance(signature, bytes):
        raise SignatureError(f"signature {label} is not a byte sequence")
    if not signature:
        raise SignatureError("signature is empty")

    components: list[str] = []
    for item, item_params in components_member:
        if not isinstance(item, str) or isinstance(item, _Token):
            raise SignatureError("Signature-Input component identifiers must be strings")
        if item_params:
            raise SignatureError(f'component "{item}" has parameters, which are not supported')
        if item in components:
            raise SignatureError(f'component "{item}" is listed twice')
        components.append(item)

    key_id = params.get("keyid")
    if not isinstance(key_id, str) or not key_id:
        raise SignatureError("Signature-Input is missing keyid")
    alg = params.get("alg")
    if alg is not None and alg != RFC9421_ALGORITHM:
        shown = alg if isinstance(alg, str) else _serialize_bare(alg)
        raise SignatureError(f"unsupported algorithm {shown}")
    created = params.get("created")
    if created is None:
        raise SignatureError("Signature-Input is missing created")
    if not isinstance(created, int) or isinstance(created, bool):
        raise SignatureError("created is not a Unix timestamp")

    if "@method" not in components:
        raise SignatureError("signature does not cover @method")
    if "@target-uri" not in components:
        raise SignatureError("signature does not cover @target-uri")
    if method in _BODY_METHODS and "content-digest" not in components:
        raise SignatureError("signature does not cover content-digest")

    _check_window("created", _timestamp(created, "created"), now)
    expires = params.get("expires")
    if expires is not None:
        if not isinstance(expires, int) or isinstance(expires, bool):
            raise SignatureError("expires is not a Unix timestamp")
        _check_expires(_timestamp(expires, "expires"), now)

    digest_value = lowered.get("content-digest")
    if digest_value is not None:
        _check_content_digest_header(digest_value, body)

    lines: list[str] = []
    for name in components:
        if name.startswith("@"):
            value = _derived_component(name, method, path, query, host, scheme)
        elif name == "host" and host is not None:
            value = host
        else:
            found = lowered.get(name)
            if found is None:
                raise SignatureError(f"signed header {name} is missing")
            value = found
        lines.append(f'"{name}": {value}')
    lines.append(f'"@signature-params": {_serialize_signature_params(components_member, params)}')

    return SignedRequest(
        key_id=key_id,
        scheme="rfc9421",
        signed_headers=components,
        algorithm=RFC9421_ALGORITHM,
        signature=signature,
        signature_bases=(_encode("\n".join(lines)),),
    )


def _timestamp(value: int, what: str) -> datetime:
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        raise SignatureError(f"{what} is not a Unix timestamp") from None


def _derived_component(name: str, method: str, path: str, query: str, host: str | None, scheme: str) -> str:
    if name == "@method":
        return method
    if name == "@path":
        return path
    if name == "@query":
        return f"?{query}"
    if name == "@request-target":
        return f"{path}?{query}" if query else path
    if name == "@scheme":
        return scheme.lower()
    if name in ("@authority", "@target-uri"):
        if host is None:
            raise SignatureError(f"cannot build {name}: the request has no Host header")
        authority = _normalize_authority(host, scheme)
        if name == "@authority":
            return authority
        uri = f"{scheme.lower()}://{authority}{path}"
        return f"{uri}?{query}" if query else uri
    raise SignatureError(f"unsupported derived component {name}")


def sign_request_rfc9421(
    *,
    method: str,
    url: str,
    body: bytes | None,
    key_id: str,
    private_key: RSAPrivateKey,
    content_type: str | None = "application/activity+json",
    now: datetime | None = None,
    extra_headers: dict[str, str] | None = None,
    label: str = "sig1",
) -> dict[str, str]:
    """Sign a request per RFC 9421 with rsa-v1_5-sha256.

    Covers @method and @target-uri; with a body also content-digest and content-type; Accept
    when given in ``extra_headers``. Returns Signature-Input, Signature, and for a body
    Content-Digest and Content-Type, plus the extra headers.
    """
    method = method.upper()
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    target_uri = f"{scheme}://{_authority(parts).lower()}{request_target(parts)}"
    created = int(_as_utc(now if now is not None else datetime.now(UTC)).timestamp())
    extra = _check_extra_headers(extra_headers, reserved=("content-digest", "signature", "signature-input"))

    headers: dict[str, str] = {}
    components: list[tuple[str, str]] = [("@method", method), ("@target-uri", target_uri)]
    if body is not None or method in _BODY_METHODS:
        digest = content_digest(body or b"")
        headers["Content-Digest"] = digest
        components.append(("content-digest", digest))
        if content_type is not None:
            headers["Content-Type"] = content_type
            components.append(("content-type", content_type))
    headers.update(extra)
    accept = _find_header(extra, "accept")
    if accept is not None:
        components.append(("accept", accept.strip()))

    signature_params = (
        "(" + " ".join(_serialize_bare(name) for name, _value in components) + ")"
        f";created={created};keyid={_serialize_bare(key_id)};alg={_serialize_bare(RFC9421_ALGORITHM)}"
    )
    lines = [f'"{name}": {value}' for name, value in components]
    lines.append(f'"@signature-params": {signature_params}')
    signature = private_key.sign(_encode("\n".join(lines)), _PKCS1V15, _SHA256)
    headers["Signature-Input"] = f"{label}={signature_params}"
    headers["Signature"] = f"{label}=:{_b64(signature)}:"
    return headers


# --------------------------------------------------------------------------------------------
# RFC 8941 structured fields: just enough to read Signature-Input, Signature and Content-Digest
# and to re-serialize the signature parameters exactly.


class _Token(str):
    """An sf-token, kept apart from an sf-string so that it serializes back unquoted."""

    __slots__ = ()


_BareItem = int | float | str | bytes | bool
_Params = dict[str, _BareItem]
_InnerList = list[tuple[_BareItem, _Params]]
_Member = tuple[_BareItem | _InnerList, _Params]


class _SFError(ValueError):
    pass


_SF_KEY_RE = re.compile(r"[a-z*][a-z0-9_.*-]*")
_SF_TOKEN_RE = re.compile(r"[A-Za-z*][!#$%&'*+.^_`|~0-9A-Za-z:/-]*")
_SF_NUMBER_RE = re.compile(r"-?(\d+)(?:\.(\d+))?")
_SF_STRING_RE = re.compile(r'"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"')
_SF_ESCAPE_RE = re.compile(r'\\(["\\])')
_SF_BYTES_RE = re.compile(r":([A-Za-z0-9+/=]*):")


class _SFParser:
    __slots__ = ("i", "s")

    def __init__(self, text: str) -> None:
        self.s = text.strip(" \t")
        self.i = 0

    def dictionary(self) -> dict[str, _Member]:
        s = self.s
        members: dict[str, _Member] = {}
        while self.i < len(s):
            key = self._key()
            if self.i < len(s) and s[self.i] == "=":
                self.i += 1
                members[key] = self._item_or_inner_list()
            else:
                members[key] = (True, self._params())
            self._skip(" \t")
            if self.i >= len(s):
                break
            if s[self.i] != ",":
                raise _SFError(f"expected ',' at character {self.i + 1}")
            self.i += 1
            self._skip(" \t")
            if self.i >= len(s):
                raise _SFError("trailing comma")
        return members

    def _skip(self, chars: str) -> None:
        s = self.s
        while self.i < len(s) and s[self.i] in chars:
            self.i += 1

    def _key(self) -> str:
        match = _SF_KEY_RE.match(self.s, self.i)
        if match is None:
            raise _SFError(f"expected a key at character {self.i + 1}")
        self.i = match.end()
        return match.group()

    def _item_or_inner_list(self) -> _Member:
        if self.i < len(self.s) and self.s[self.i] == "(":
            return self._inner_list()
        return self._bare_item(), self._params()

    def _inner_list(self) -> _Member:
        s = self.s
        self.i += 1
        items: _InnerList = []
        while True:
            self._skip(" ")
            if self.i >= len(s):
                raise _SFError("unterminated inner list")
            if s[self.i] == ")":
                self.i += 1
                return items, self._params()
            items.append((self._bare_item(), self._params()))
            if self.i < len(s) and s[self.i] not in " )":
                raise _SFError(f"expected ' ' or ')' at character {self.i + 1}")

    def _params(self) -> _Params:
        s = self.s
        params: _Params = {}
        while self.i < len(s) and s[self.i] == ";":
            self.i += 1
            self._skip(" ")
            key = self._key()
            value: _BareItem = True
            if self.i < len(s) and s[self.i] == "=":
                self.i += 1
                value = self._bare_item()
            params[key] = value
        return params

    def _bare_item(self) -> _BareItem:
        s = self.s
        if self.i >= len(s):
            raise _SFError("unexpected end of field")
        first = s[self.i]
        if first == "-" or first.isdigit():
            return self._number()
        if first == '"':
            match = _SF_STRING_RE.match(s, self.i)
            if match is None:
                raise _SFError(f"invalid string at character {self.i + 1}")
            self.i = match.end()
            return _SF_ESCAPE_RE.sub(r"\1", match.group(1))
        if first == ":":
            match = _SF_BYTES_RE.match(s, self.i)
            if match is None:
                raise _SFError(f"invalid byte sequence at character {self.i + 1}")
            self.i = match.end()
            try:
                return base64.b64decode(match.group(1), validate=True)
            except ValueError:  # binascii.Error is one
                raise _SFError("byte sequence is not valid base64") from None
        if first == "?":
            flag = s[self.i + 1 : self.i + 2]
            if flag not in ("0", "1"):
                raise _SFError(f"invalid boolean at character {self.i + 1}")
            self.i += 2
            return flag == "1"
        match = _SF_TOKEN_RE.match(s, self.i)
        if match is None:
            raise _SFError(f"unexpected character {first!r} at character {self.i + 1}")
        self.i = match.end()
        return _Token(match.group())

    def _number(self) -> int | float:
        match = _SF_NUMBER_RE.match(self.s, self.i)
        if match is None:
            raise _SFError(f"invalid number at character {self.i + 1}")
        integer, fraction = match.groups()
        if fraction is None:
            if len(integer) > 15:
                raise _SFError("integer has more than 15 digits")
        elif len(integer) > 12 or len(fraction) > 3:
            raise _SFError("decimal is out of range")
        self.i = match.end()
        return int(match.group()) if fraction is None else float(match.group())


def _serialize_bare(value: _BareItem) -> str:
    if isinstance(value, bool):
        return "?1" if value else "?0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = f"{round(value, 3):.3f}".rstrip("0")
        return text + "0" if text.endswith(".") else text
    if isinstance(value, _Token):
        return str(value)
    if isinstance(value, str):
        return '"' + _quote(value) + '"'
    return f":{_b64(value)}:"


def _serialize_params(params: _Params) -> str:
    return "".join(
        f";{key}" if value is True else f";{key}={_serialize_bare(value)}" for key, value in params.items()
    )


def _serialize_signature_params(components: _InnerList, params: _Params) -> str:
    # RFC 9421 section 2.3: the canonical serialization of the inner list, parameters in the
    # order received, which is what the signer had to sign whatever whitespace it sent.
    inner = " ".join(_serialize_bare(item) + _serialize_params(p) for item, p in components)
    return f"({inner}){_serialize_params(params)}"
