"""Add and Remove on an actor's featured collection (pinned posts)."""

from __future__ import annotations

from app.federation.handlers.base import Ignored, Inbound
from app.federation.handlers.posts import store_fetched_post
from app.services.remote_posts import RemotePostService


async def handle_add(inbound: Inbound) -> None:
    await _featured(inbound, add=True)


async def handle_remove(inbound: Inbound) -> None:
    await _featured(inbound, add=False)


async def _featured(inbound: Inbound, *, add: bool) -> None:
    activity = inbound.activity
    actor = await inbound.actor()
    if activity.target_id is None or activity.target_id != actor.featured_url:
        raise Ignored(
            f"{activity.type} on {activity.target_id!r}, which is not the actor's featured collection"
        )
    post_uri = activity.object_id
    if post_uri is None:
        raise Ignored(f"{activity.type} of nothing")
    posts = RemotePostService(inbound.context)
    if not add:
        if not await posts.unpin(actor, post_uri):
            raise Ignored(f"{post_uri} was not pinned")
        return
    if await posts.find(post_uri) is None:
        if not await posts.has_local_followers(actor):
            raise Ignored("nobody here follows the account")
        await store_fetched_post(inbound, await inbound.object_document(on_actor_origin=True))
    if not await posts.pin(actor, post_uri):
        raise Ignored(f"{post_uri} is not a post of {actor.uri}")
