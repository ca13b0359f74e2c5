"""Follow of a local account; Accept and Reject of the Follows our accounts sent."""

from __future__ import annotations

from app.federation.handlers.base import Ignored, Inbound, local_account
from app.services.follow_requests import FollowRequestService
from app.services.remote_posts import forget_followers


async def handle_follow(inbound: Inbound) -> None:
    activity = inbound.activity
    followee = await local_account(inbound.context, activity.object_id)
    if followee is None:
        raise Ignored(f"{activity.object_id} is not an account of this server")
    follower = await inbound.actor()
    state = await FollowRequestService(inbound.context).receive_follow(follower, followee, activity.id)
    if state is None:
        raise Ignored(f"{followee.uri} does not accept follows from {follower.uri}; a Reject was sent")


async def handle_accept(inbound: Inbound) -> None:
    await _answered(inbound, accepted=True)


async def handle_reject(inbound: Inbound) -> None:
    await _answered(inbound, accepted=False)


async def _answered(inbound: Inbound, *, accepted: bool) -> None:
    activity = inbound.activity
    follower_uri = None
    if activity.object is not None:
        if activity.object_type != "Follow":
            raise Ignored(f"{activity.type} of a {activity.object_type!r} is not about a follow")
        follower_uri = activity.object_actor
    followee = await inbound.actor()
    matched = await FollowRequestService(inbound.context).our_follow_answered(
        followee, accepted=accepted, follow_uri=activity.object_id, follower_uri=follower_uri
    )
    if not matched:
        raise Ignored(f"no follow of ours matches this {activity.type}")
    if inbound.cache is not None:
        # The batch read who follows this actor before this Accept was applied.
        forget_followers(inbound.cache, followee.id)
