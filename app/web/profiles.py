"""The public HTML profile page of a local account, at /@NAME (its actor URL redirects browsers here)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from app.activitypub.negotiation import wants_activity_json
from app.activitypub.routes import VARY, Gone, page_number
from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import NotFound
from app.i18n import N_
from app.models import Account
from app.public_cache import PAGE_SECONDS, account_tag, cache_publicly, follows_tag, post_tag
from app.services.accounts import INSTANCE_ACTOR_USERNAME
from app.services.profiles import ProfileService
from app.services.viewer import Viewer
from app.web.post_views import build_cards
from app.web.session import page_state
from app.web.templating import render, translate

router = APIRouter()

PROFILE_MAX_AGE = 60


async def render_profile_page(request: Request, context: AppContext, account: Account, page: int) -> Response:
    viewer = await page_state(request, context)
    if account.suspended_at is not None:
        raise NotFound(translate(request, N_("There is no account with this name here.")))
    profiles = ProfileService(context)
    who = viewer or Viewer.nobody()
    posts = await profiles.posts(account, page, who)
    posts_count, followers_count, following_count = await profiles.counts(account)
    pinned = await profiles.pinned_posts(account, who) if page == 1 else []
    pinned_ids = {post.id for post in pinned}
    if viewer is None:
        shown = [*posts.items, *pinned]
        cache_publicly(
            request,
            [
                account_tag(account.id),
                follows_tag(account.id),
                *(post_tag(post.id) for post in shown),
                *(post_tag(post.reblog_of_id) for post in shown if post.reblog_of_id),
                *(account_tag(post.account_id) for post in shown),
            ],
            seconds=PAGE_SECONDS,
        )
    return render(
        request,
        "profile.html",
        {
            "account": account,
            "handle": account.handle(context.settings.local_domain),
            "posts": posts,
            "cards": await build_cards(
                context, [post for post in posts.items if post.id not in pinned_ids], viewer
            ),
            "pinned": await build_cards(context, pinned, viewer),
            "posts_count": posts_count,
            "followers_count": followers_count,
            "following_count": following_count,
        },
        public_max_age=PROFILE_MAX_AGE,
        headers={"Vary": "Accept"},
    )


@router.get("/@{username}")
async def profile(request: Request, username: str, context: AppContext = Depends(get_context)) -> Response:
    account = await ProfileService(context).local_account(username, include_deleted=True)
    if account is None or account.username == INSTANCE_ACTOR_USERNAME:
        raise NotFound(f"no account named {username!r} here")
    if wants_activity_json(request.headers.get("accept")):
        return RedirectResponse(account.uri, status_code=302, headers=VARY)
    if account.deleted_at is not None:
        raise Gone(f"{username} has deleted their account")
    # The page's own Vary (Accept, plus the language and cookie it depends on) is kept.
    return await render_profile_page(request, context, account, page_number(request) or 1)
