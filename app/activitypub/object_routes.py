"""Local posts as ActivityPub objects: the Note at its id, its Create at `…/activity`, its replies.

Content negotiation works as for actors: AS2 clients get JSON, browsers are sent to the post's
web page. A deleted post answers 410 with a Tombstone. Followers-only and direct posts are
served only to signed requests whose signer may see them (the author's accepted followers, or
the accounts mentioned); to anyone else they do not exist (404), as on Mastodon.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from app.activitypub.fetch_access import signed_viewer
from app.activitypub.negotiation import wants_activity_json
from app.activitypub.renderers import (
    AS_CONTEXT,
    OBJECT_CONTEXT,
    render_announce,
    render_create,
    render_note,
    render_tombstone,
)
from app.activitypub.routes import VARY, Gone, activity_response
from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import NotFound
from app.models import Account, Post, Visibility
from app.public_cache import account_tag, cache_publicly, post_tag
from app.services.posting import PostingService, PostView
from app.services.profiles import ProfileService
from app.services.viewer import Viewer
from app.services.visibility import can_see

router = APIRouter()


async def _local_post(context: AppContext, username: str, post_id: str) -> tuple[Account, Post]:
    missing = NotFound(f"no post {post_id} by {username} here")
    if not post_id.isdigit() or len(post_id) > 20:
        raise missing
    account = await ProfileService(context).local_account(username, include_deleted=True)
    post = await PostingService(context).find_post(int(post_id))
    if account is None or post is None or post.account_id != account.id or not post.local:
        raise missing
    return account, post


def signer_needed_for(post: Post) -> bool:
    return post.visibility not in (Visibility.PUBLIC, Visibility.UNLISTED)


async def _visible(request: Request, context: AppContext, username: str, post_id: str) -> PostView | Response:
    """The post to serve, or the response that replaces it (redirect, 410)."""
    account, post = await _local_post(context, username, post_id)
    as2 = wants_activity_json(request.headers.get("accept"))
    if post.deleted_at is not None or account.deleted_at is not None:
        if as2:
            return activity_response(
                render_tombstone(post.uri, post.object_type, post.deleted_at), status_code=410
            )
        raise Gone("this post was deleted")
    # Who asks matters only for a post not everyone may see.
    signer_needed = signer_needed_for(post)
    viewer = await signed_viewer(request, context, signer_needed=signer_needed) if as2 else Viewer.nobody()
    if not await can_see(context, viewer, post):
        raise NotFound(f"no post {post_id} by {username} here")
    if not as2:
        return RedirectResponse(post.url or post.uri, status_code=302, headers=VARY)
    return await PostingService(context).view(post)


@router.get("/users/{username}/statuses/{post_id}")
async def note(
    request: Request, username: str, post_id: str, context: AppContext = Depends(get_context)
) -> Response:
    found = await _visible(request, context, username, post_id)
    if isinstance(found, Response):
        return found
    if found.post.reblog_of_id is not None:
        # A boost is its Announce, which lives at …/activity.
        return RedirectResponse(found.post.uri, status_code=302, headers=VARY)
    if not signer_needed_for(found.post):
        # Everyone may see it, so every reader gets these bytes.
        cache_publicly(request, [post_tag(found.post.id), account_tag(found.author.id)])
    return activity_response(
        render_note(found.post, found.author, found.parts, urls=context.urls, with_context=True)
    )


@router.get("/users/{username}/statuses/{post_id}/activity")
async def activity(
    request: Request, username: str, post_id: str, context: AppContext = Depends(get_context)
) -> Response:
    found = await _visible(request, context, username, post_id)
    if isinstance(found, Response):
        return found
    post = found.post
    if post.reblog_of_id is not None:
        original = await PostingService(context).find_post(post.reblog_of_id)
        if original is None or original.deleted_at is not None:
            raise NotFound("the boosted post is gone")
        if not signer_needed_for(post):
            cache_publicly(request, [post_tag(post.id), post_tag(original.id), account_tag(post.account_id)])
        return activity_response(render_announce(post, found.author, original.uri))
    if not signer_needed_for(post):
        cache_publicly(request, [post_tag(post.id), account_tag(post.account_id)])
    return activity_response(render_create(post, found.author, found.parts, urls=context.urls))


@router.get("/users/{username}/statuses/{post_id}/replies")
async def replies(
    request: Request, username: str, post_id: str, context: AppContext = Depends(get_context)
) -> Response:
    found = await _visible(request, context, username, post_id)
    if isinstance(found, Response):
        return found
    collection_id = f"{found.post.uri}/replies"
    items = await PostingService(context).replies(found.post)
    page: dict[str, Any] = {"type": "CollectionPage", "partOf": collection_id, "items": items}
    if request.query_params.get("page") is not None:
        return activity_response({"@context": AS_CONTEXT, "id": f"{collection_id}?page=true", **page})
    return activity_response(
        {"@context": OBJECT_CONTEXT, "id": collection_id, "type": "Collection", "first": page}
    )
