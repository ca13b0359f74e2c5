"""Mastodon's paging parameters in, `Link` headers out (keeping the request's other parameters)."""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlencode

from fastapi import Request

from app.api.params import WrongType
from app.services.paged_lists import PageRequest

MAX_ID = 2**63 - 1


def _id(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    if value is None or value == "":
        return None
    if not value.isdigit() or int(value) > MAX_ID:
        raise WrongType(f"{name}: must be an id (a string of digits)")
    return int(value)


def page_request(request: Request, *, default_limit: int = 20, max_limit: int = 40) -> PageRequest:
    raw = request.query_params.get("limit")
    if raw is None or raw == "":
        limit = default_limit
    elif raw.isdigit():
        # Mastodon clamps the limit rather than refusing it.
        limit = max(1, min(int(raw), max_limit))
    else:
        raise WrongType("limit: must be a number")
    return PageRequest(
        limit=limit,
        max_id=_id(request, "max_id"),
        since_id=_id(request, "since_id"),
        min_id=_id(request, "min_id"),
    )


def link_header(request: Request, base_url: str, ids: Sequence[int]) -> dict[str, str]:
    """`next` (older: max_id) and `prev` (newer: min_id) links, as Mastodon sends them; none for
    an empty page, so a client paging on never loops."""
    if not ids:
        return {}
    kept = [
        (key, value)
        for key, value in request.query_params.multi_items()
        if key not in ("max_id", "min_id", "since_id")
    ]
    # The public address, not the one a reverse proxy connected to.
    base = f"{base_url}{request.url.path}"

    def link(name: str, value: int, rel: str) -> str:
        return f'<{base}?{urlencode([*kept, (name, str(value))])}>; rel="{rel}"'

    return {"Link": ", ".join([link("max_id", min(ids), "next"), link("min_id", max(ids), "prev")])}


__all__ = ["link_header", "page_request"]
