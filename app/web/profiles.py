"""The public HTML profile page of a local account (served at its actor URL to browsers)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from app.context import AppContext
from app.http_errors import NotFound
from app.i18n import N_
from app.models import Account
from app.services.profiles import ProfileService
from app.services.viewer import Viewer
from app.web.post_views import build_cards
from app.web.session import page_state
from app.web.templating import render, translate

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
