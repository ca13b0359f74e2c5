"""Mastodon's streams: their names, the scopes that open them, and the label each message carries.

A stream is named as in Mastodon's WebSocket protocol (`user`, `public:local`, `hashtag` with a
`tag`, `list` with a `list`); the Server-Sent Events paths map onto the same names.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.services.viewer import Viewer

# Which scopes open each stream (any one of them), as Mastodon's streaming server checks them.
STREAM_SCOPES: dict[str, tuple[str, ...]] = {
    "user": ("read", "read:statuses"),
    "user:notification": ("read", "read:notifications"),
    "public": ("read", "read:statuses"),
    "public:media": ("read", "read:statuses"),
    "public:local": ("read", "read:statuses"),
    "public:local:media": ("read", "read:statuses"),
    "public:remote": ("read", "read:statuses"),
    "public:remote:media": ("read", "read:statuses"),
    "hashtag": ("read", "read:statuses"),
    "hashtag:local": ("read", "read:statuses"),
    "list": ("read", "read:lists"),
    "direct": ("read", "read:statuses"),
}
PUBLIC_STREAMS = frozenset(name for name in STREAM_SCOPES if name.startswith("public"))
HASHTAG_STREAMS = frozenset({"hashtag", "hashtag:local"})
# Streams about one's own account: they need a token that acts for a person.
PERSONAL_STREAMS = frozenset({"user", "user:notification", "list", "direct"})
MAX_TAG_LENGTH = 100


class StreamRefused(Exception):
    """A stream that cannot be opened; `status` as Mastodon answers (400 unknown, 401, 403)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class Stream:
    name: str
    tag: str | None = None
    list_id: int | None = None

    @property
    def label(self) -> list[str]:
        """The `stream` field of each WebSocket message: the name, then the tag or list id."""
        if self.tag is not None:
            return [self.name, self.tag]
        if self.list_id is not None:
            return [self.name, str(self.list_id)]
        return [self.name]

    @property
    def only_media(self) -> bool:
        return self.name.endswith(":media")

    @property
    def local_only(self) -> bool:
        return self.name.startswith(("public:local", "hashtag:local"))

    @property
    def remote_only(self) -> bool:
        return self.name.startswith("public:remote")


def stream_for(
    viewer: Viewer, name: str | None, *, tag: str | None = None, list_id: str | None = None
) -> Stream:
    """The stream `viewer` asked for, or StreamRefused saying why it cannot be opened."""
    if not name or name not in STREAM_SCOPES:
        raise StreamRefused(f"Unknown stream type: {name or '(none)'}")
    if viewer.scopes is None and viewer.account is None:
        raise StreamRefused("Missing access token", 401)
    if not any(viewer.has_scope(scope) for scope in STREAM_SCOPES[name]):
        raise StreamRefused("Access token does not have the required scopes", 401)
    if name in PERSONAL_STREAMS and viewer.account is None:
        raise StreamRefused("This stream requires an access token of a user", 401)
    if name in HASHTAG_STREAMS:
        cleaned = (tag or "").strip().lstrip("#").lower()
        if not cleaned or len(cleaned) > MAX_TAG_LENGTH:
            raise StreamRefused("No tag for stream provided")
        return Stream(name, tag=cleaned)
    if name == "list":
        if not list_id or not list_id.isdigit() or len(list_id) > 19:
            raise StreamRefused("No list for stream provided")
        return Stream(name, list_id=int(list_id))
    return Stream(name)


__all__ = ["PUBLIC_STREAMS", "STREAM_SCOPES", "Stream", "StreamRefused", "stream_for"]
