"""/api/v1/timelines/tag/:hashtag — public posts with a hashtag (`any[]`, `all[]`, `none[]`,
`local`, `remote`, `only_media`), paged as the other timelines."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import ApiCaller, scoped
from app.api.entities.status import statuses
from app.api.pagination import link_header, page_request
from app.api.params import WrongType
from app.context import AppContext
from app.dependencies import get_context
from app.services.paged_lists import tag_posts

router = APIRouter(prefix="/api/v1/timelines")

# Mastodon takes at most four extra tags in each of any/all/none.
MAX_EXTRA_TAGS = 4
MAX_TAG_LENGTH = 255


def _flag(request: Request, name: str) -> bool:
    return (request.query_params.get(name) or "").lower() in ("true", "1", "on", "yes")


def _tag_name(value: str, field: str) -> str:
    name = value.strip().removeprefix("#").lower()
    if not name or len(name) > MAX_TAG_LENGTH:
        raise WrongType(f"{field}: is not a hashtag")
    return name


def _tags(request: Request, field: str) -> list[str]:
    values = request.query_params.getlist(f"{field}[]") + request.query_params.getlist(field)
    if len(values) > MAX_EXTRA_TAGS:
        raise WrongType(f"{field}: at most {MAX_EXTRA_TAGS} hashtags")
    return [_tag_name(value, field) for value in values]


@router.get("/tag/{hashtag}")
async def tag(
    hashtag: str,
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:statuses", optional=True)),
) -> JSONResponse:
    posts = await tag_posts(
        context,
        caller.viewer,
        page_request(request),
        _tag_name(hashtag, "hashtag"),
        any_of=_tags(request, "any"),
        all_of=_tags(request, "all"),
        none_of=_tags(request, "none"),
        local=_flag(request, "local"),
        remote=_flag(request, "remote"),
        only_media=_flag(request, "only_media"),
    )
    return JSONResponse(
        await statuses(context, caller.viewer, posts, filter_context="public"),
        headers=link_header(request, context.settings.base_url, [post.id for post in posts]),
    )


__all__ = ["router"]
