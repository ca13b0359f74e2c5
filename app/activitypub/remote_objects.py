"""Posts read from their origin on demand: one that never reached us, named by its URL (to reply
to it, boost it or like it), fetched, checked and kept like any other remote post."""

from __future__ import annotations

from app.activitypub.fetcher import Fetcher, FetchError
from app.activitypub.parsers import InvalidObject, authority, compute_visibility, parse_note, same_origin
from app.activitypub.resolver import ActorResolver, ResolveError
from app.context import AppContext
from app.models import Post
from app.services.accounts import AccountService
from app.services.remote_posts import RemotePostService


class RemotePostError(ValueError):
    """The post could not be read, or its server may not speak for it; the message says which."""


async def fetch_remote_post(context: AppContext, url: str) -> Post:
    """The post at `url`, fetched as the instance actor and stored (in nobody's timeline)."""
    signer = await AccountService(context).instance_actor()
    try:
        fetched = await Fetcher(context, signer=signer).fetch(url)
        note = parse_note(fetched.document)
        # A server speaks for its own posts and actors only, and the server that spoke is the
        # one the redirects ended on: otherwise a redirect from `url` to another host would
        # let that host serve a post in the name of `url`'s server.
        if (
            authority(note.uri) != authority(url)
            or authority(note.uri) != authority(fetched.url)
            or not same_origin(note.attributed_to, note.uri)
        ):
            raise RemotePostError(f"{url} names a post or author on another server")
        author = await ActorResolver(context).fetch_actor(note.attributed_to)
    except (FetchError, ResolveError, InvalidObject) as error:
        raise RemotePostError(f"could not read the post at {url}: {error}") from None
    if author.is_local:
        raise RemotePostError(f"{url} claims an author of this server")
    visibility = compute_visibility(note.to, note.cc, author.followers_url)
    return await RemotePostService(context).store(note, author, visibility, delivered=False)
