"""The public HTML profile page of a local account."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import Response

from app.context import AppContext
from app.models import Account
from app.services.profiles import ProfileService


async def render_profile_page(request: Request, context: AppContext, account: Account, page: int) -> Response:
    profiles = ProfileService(context)
    posts = await profiles.public_posts(account, page)
    posts_count, followers_count, following_count = await profiles.counts(account)
    templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        "profile.html",
        {
            "account": account,
            "handle": account.handle(context.settings.local_domain),
            "posts": posts,
            "pinned": await profiles.pinned_posts(account) if page == 1 else [],
            "posts_count": posts_count,
            "followers_count": followers_count,
            "following_count": following_count,
            "instance_name": context.settings.instance_name,
        },
        headers={"Cache-Control": "public, max-age=60"},
    )
