"""Who a post is addressed to, and what a Note carries besides the post row: shared by the services
that store posts and the renderers that put them on the wire."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.models import Account, MediaAttachment, Visibility

AS_PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


@dataclass(frozen=True)
class NoteParts:
    """What a Note carries besides the post row itself: its mentions, hashtags and media."""

    mentions: Sequence[Account] = ()
    # Lower-cased hashtag names, as stored.
    tags: Sequence[str] = ()
    attachments: Sequence[MediaAttachment] = ()


def address_post(
    visibility: str, followers_url: str | None, mentioned: Sequence[str]
) -> tuple[list[str], list[str]]:
    """`to` and `cc` for a post, exactly as Mastodon addresses each visibility."""
    followers = [followers_url] if followers_url else []
    mentions = list(dict.fromkeys(mentioned))
    if visibility == Visibility.PUBLIC:
        return [AS_PUBLIC], followers + mentions
    if visibility == Visibility.UNLISTED:
        return followers, [AS_PUBLIC, *mentions]
    if visibility == Visibility.FOLLOWERS:
        return followers, mentions
    return mentions, []
