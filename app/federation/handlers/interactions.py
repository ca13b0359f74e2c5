"""Announce (boosts), Like, EmojiReact, and Undo of any of them or of a Follow or Block."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from app.activitypub.parsers import (
    ActivityData,
    InvalidObject,
    compute_visibility,
    first_id,
    first_type,
    parse_activity,
    same_origin,
)
from app.federation.handlers.base import MAX_NESTING, Ignored, Inbound
from app.federation.handlers.posts import store_fetched_post
from app.models import Post
from app.services.follow_requests import FollowRequestService
from app.services.remote_accounts import RemoteAccountService
from app.services.remote_interactions import RemoteInteractionService
from app.services.remote_posts import RemotePostService

# Activities that a group actor (Lemmy, some relays) wraps in an Announce.
WRAPPED_ACTIVITIES = frozenset(
    {
        "Create",
        "Update",
        "Delete",
        "Like",
        "Dislike",
        "Undo",
        "Add",
        "Remove",
        "Block",
        "Flag",
        "Follow",
        "Lock",
    }
)
_SHORTCODE_RE = re.compile(r"^:([A-Za-z0-9_@.+-]{1,100}):$")

# How a relayed activity is handled: the dispatcher, passed in by the dispatcher itself (it
# imports this module, so this module does not import it).
Relay = Callable[[Inbound], Awaitable[None]]


async def handle_announce(inbound: Inbound, relay: Relay) -> None:
    activity = inbound.activity
    embedded = activity.object
    object_uri = activity.object_id
    if embedded is not None and first_type(embedded.get("type")) in WRAPPED_ACTIVITIES:
        try:
            inner = parse_activity(embedded)
        except InvalidObject as error:
            raise Ignored(f"unusable announced activity: {error}") from None
        if inner.type != "Create":
            await _announced_activity(inbound, inner, embedded, relay)
            return
        # A group sharing a post into its community reads, for us, as the group boosting the post.
        embedded, object_uri = inner.object, inner.object_id
    if object_uri is None:
        raise Ignored("Announce of nothing")
    if activity.id is None:
        raise Ignored("an Announce without an id cannot be undone, so it is not kept")

    announcer = await inbound.actor()
    posts = RemotePostService(inbound.context, inbound.cache)
    followed = await posts.has_local_followers(announcer)
    original = await posts.find(object_uri)
    if original is None:
        if not followed:
            raise Ignored("nobody here follows the booster, and the post is not ours")
        if (
            embedded is not None
            and embedded.get("id") == object_uri
            and same_origin(object_uri, inbound.signer)
        ):
            document = embedded
        else:
            document = await inbound.fetch(object_uri)
        original = await store_fetched_post(inbound, document)
    elif not original.local and not followed:
        raise Ignored("nobody here follows the booster, and the post is not ours")
    boost = await RemoteInteractionService(inbound.context, inbound.cache).plan_boost(
        announcer,
        original,
        uri=activity.id,
        published=activity.published,
        to=activity.to,
        cc=activity.cc,
        visibility=compute_visibility(activity.to, activity.cc, announcer.followers_url),
    )
    if boost is None:
        raise Ignored(f"{original.uri} may not be boosted")
    inbound.writes.posts.append(boost)


async def _announced_activity(
    inbound: Inbound, inner: ActivityData, document: dict[str, Any], relay: Relay
) -> None:
    """Another activity relayed by a group: handled as if delivered by its own actor, when the
    group's server is also that actor's server (it could not vouch for anyone else's)."""
    if inbound.nesting >= MAX_NESTING:
        raise Ignored("activities nested too deep")
    if inner.id is None or not (
        same_origin(inner.id, inbound.signer) and same_origin(inner.actor, inbound.signer)
    ):
        raise Ignored(f"the announced {inner.type} is from another server than the group's")
    await relay(
        Inbound(
            context=inbound.context,
            activity=inner,
            document=document,
            signer=inner.actor,
            recipient_account_id=inbound.recipient_account_id,
            nesting=inbound.nesting + 1,
            writes=inbound.writes,
            cache=inbound.cache,
        )
    )


async def _local_post(inbound: Inbound) -> Post:
    uri = inbound.activity.object_id
    post = await RemotePostService(inbound.context, inbound.cache).find_cached(uri) if uri else None
    if post is None or not post.local:
        raise Ignored(f"{uri} is not a post of this server")
    return post


async def handle_like(inbound: Inbound) -> None:
    post = await _local_post(inbound)
    account = await inbound.actor()
    rows = await RemoteInteractionService(inbound.context, inbound.cache).plan_like(
        account, post, inbound.activity.id
    )
    if rows is None:
        raise Ignored(f"{post.uri} is not a post of this server")
    inbound.writes.favourites.append(rows)


async def handle_emoji_react(inbound: Inbound) -> None:
    activity = inbound.activity
    content = (activity.content or "").strip()
    emoji_url = None
    shortcode = _SHORTCODE_RE.match(content)
    if shortcode:
        emoji_url = next(
            (emoji["url"] for emoji in activity.emojis if emoji.get("shortcode") == shortcode.group(1)), None
        )
        if emoji_url is None:
            raise Ignored(f"the custom emoji {content} comes without its image")
    elif not content or len(content) > 16 or any(character.isalnum() for character in content):
        # A reaction is one emoji (with its modifiers); anything else is text posing as one.
        raise Ignored(f"{content!r} is not an emoji")
    post = await _local_post(inbound)
    account = await inbound.actor()
    reacted = await RemoteInteractionService(inbound.context).react(
        account, post, content=content, emoji_url=emoji_url, uri=activity.id
    )
    if not reacted:
        raise Ignored("already reacted with this emoji")


async def handle_undo(inbound: Inbound) -> None:
    activity = inbound.activity
    inner = activity.object
    if inner is not None and activity.object_actor not in (None, activity.actor):
        raise Ignored(f"{activity.actor} cannot undo an activity of {activity.object_actor}")
    inner_type = activity.object_type
    inner_id = activity.object_id
    inner_object = first_id(inner.get("object")) if inner is not None else None
    actor = await inbound.actor()
    context = inbound.context
    interactions = RemoteInteractionService(context)
    if inner_type == "Follow":
        done = await FollowRequestService(context).undo_follow(
            actor, followee_uri=inner_object, follow_uri=inner_id
        )
    elif inner_type == "Like":
        done = await interactions.unlike(actor, uri=inner_id, post_uri=inner_object)
    elif inner_type == "EmojiReact":
        content = inner.get("content") if inner is not None else None
        done = await interactions.unreact(
            actor, uri=inner_id, post_uri=inner_object, content=content if isinstance(content, str) else None
        )
    elif inner_type == "Announce":
        done = bool(inner_id) and await interactions.unboost(actor, inner_id or "")
    elif inner_type == "Block":
        done = await RemoteAccountService(context).unblocked_by(actor, uri=inner_id, target_uri=inner_object)
    elif inner_type is None and inner_id:
        # Only the id of what is undone: try each kind of thing an id can name.
        done = (
            await FollowRequestService(context).undo_follow(actor, followee_uri=None, follow_uri=inner_id)
            or await interactions.unlike(actor, uri=inner_id, post_uri=None)
            or await interactions.unreact(actor, uri=inner_id, post_uri=None, content=None)
            or await interactions.unboost(actor, inner_id)
            or await RemoteAccountService(context).unblocked_by(actor, uri=inner_id, target_uri=None)
        )
    else:
        raise Ignored(f"Undo of a {inner_type!r} has no meaning here")
    if not done:
        raise Ignored("nothing here to undo")
