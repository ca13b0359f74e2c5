"""Content negotiation between ActivityStreams JSON and HTML on the same URL."""

from __future__ import annotations

ACTIVITY_JSON = "application/activity+json"
LD_JSON_PROFILE = 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"'
AS2_MEDIA_TYPES = frozenset({"application/activity+json", "application/ld+json"})
JSON_MEDIA_TYPES = frozenset({"application/json", "application/jrd+json"})
HTML_MEDIA_TYPES = frozenset({"text/html", "application/xhtml+xml"})


def _parse_accept(accept: str) -> list[tuple[str, dict[str, str], float]]:
    entries = []
    for part in accept.split(","):
        pieces = [piece.strip() for piece in part.split(";")]
        media_type = pieces[0].lower()
        if not media_type:
            continue
        params: dict[str, str] = {}
        quality = 1.0
        for piece in pieces[1:]:
            if "=" not in piece:
                continue
            name, value = piece.split("=", 1)
            name = name.strip().lower()
            value = value.strip().strip('"')
            if name == "q":
                try:
                    quality = max(0.0, min(1.0, float(value)))
                except ValueError:
                    quality = 0.0
            else:
                params[name] = value
        entries.append((media_type, params, quality))
    return entries


def _best_quality(entries: list[tuple[str, dict[str, str], float]], wanted: frozenset[str]) -> float:
    return max((quality for media_type, _params, quality in entries if media_type in wanted), default=0.0)


def wants_activity_json(accept: str | None) -> bool:
    """True when the client prefers ActivityStreams to HTML.

    Mastodon sends `application/activity+json, application/ld+json`, Pleroma adds `profile=`,
    Misskey lists both with q-values; browsers send `text/html,...,*/*;q=0.8`. A plain
    `application/json` is treated as AS2 too, as Mastodon does, since no browser asks for it first.
    """
    if not accept:
        return False
    entries = _parse_accept(accept)
    as2 = max(
        _best_quality(entries, AS2_MEDIA_TYPES), _best_quality(entries, frozenset({"application/json"}))
    )
    html = _best_quality(entries, HTML_MEDIA_TYPES)
    return as2 > 0 and as2 >= html


def prefers_json(accept: str | None) -> bool:
    """For error pages: JSON unless the client asked for HTML at least as much."""
    if not accept:
        return True
    entries = _parse_accept(accept)
    html = _best_quality(entries, HTML_MEDIA_TYPES)
    json_quality = max(
        _best_quality(entries, AS2_MEDIA_TYPES | JSON_MEDIA_TYPES), _best_quality(entries, frozenset({"*/*"}))
    )
    return html == 0 or json_quality > html
