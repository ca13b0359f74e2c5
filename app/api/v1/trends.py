"""/api/v1/trends/{tags,statuses,links}, /api/v2/suggestions (and v1), and the instance's
peers, activity, extended description and privacy policy: simple, honest, possibly empty."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import ApiCaller, scoped
from app.api.entities.account import account_entity
from app.api.entities.discovery import tag_entity
from app.api.entities.status import statuses
from app.api.form_values import integer
from app.api.ids import path_id
from app.api.params import request_params
from app.context import AppContext
from app.dependencies import get_context
from app.services.hashtags import HashtagService
from app.services.instance import InstanceService
from app.services.text_format import render_plain_text
from app.services.trends import TrendsService
from app.services.viewer import Viewer

router = APIRouter()
public_read = scoped("read", optional=True)


async def _window(request: Request, default: int, maximum: int) -> tuple[int, int]:
    params = await request_params(request)
    limit = max(1, min(integer(params, "limit", maximum=2**31) or default, maximum))
    return limit, integer(params, "offset", maximum=10_000) or 0


@router.get("/api/v1/trends/tags")
@router.get("/api/v1/trends")
async def trending_tags(
    request: Request, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(public_read)
) -> JSONResponse:
    limit, offset = await _window(request, 10, 20)
    found = await TrendsService(context, caller.viewer).tags(limit=limit, offset=offset)
    followed = await HashtagService(context, caller.viewer).followed_ids(item.tag.id for item in found)
    body = []
    for item in found:
        entity = tag_entity(
            context, item.tag, following=(item.tag.id in followed) if caller.viewer.account else None
        )
        entity["history"] = [
            {"day": str(int(day.day.timestamp())), "uses": str(day.uses), "accounts": str(day.accounts)}
            for day in item.history
        ]
        body.append(entity)
    return JSONResponse(body)


@router.get("/api/v1/trends/statuses")
async def trending_statuses(
    request: Request, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(public_read)
) -> JSONResponse:
    limit, offset = await _window(request, 20, 40)
    posts = await TrendsService(context, caller.viewer).posts(limit=limit, offset=offset)
    return JSONResponse(await statuses(context, caller.viewer, posts, filter_context="public"))


@router.get("/api/v1/trends/links")
async def trending_links(_caller: ApiCaller = Depends(public_read)) -> JSONResponse:
    # No link previews are kept, so no links trend.
    return JSONResponse([])


@router.get("/api/v2/suggestions")
async def suggestions_v2(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:accounts", user=True)),
) -> JSONResponse:
    limit, _ = await _window(request, 40, 80)
    found = await TrendsService(context, caller.viewer).suggested_accounts(limit=limit)
    return JSONResponse(
        [
            {"source": "global", "sources": ["most_followed"], "account": account_entity(context, account)}
            for account in found
        ]
    )


@router.get("/api/v1/suggestions")
async def suggestions_v1(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:accounts", user=True)),
) -> JSONResponse:
    limit, _ = await _window(request, 40, 80)
    found = await TrendsService(context, caller.viewer).suggested_accounts(limit=limit)
    return JSONResponse([account_entity(context, account) for account in found])


@router.delete("/api/v1/suggestions/{account_id}")
async def dismiss_suggestion(
    account_id: str, _caller: ApiCaller = Depends(scoped("read", "read:accounts", user=True))
) -> JSONResponse:
    # Suggestions are computed, not stored per person: there is nothing to dismiss.
    path_id(account_id)
    return JSONResponse({})


@router.get("/api/v1/instance/peers")
async def peers(context: AppContext = Depends(get_context)) -> JSONResponse:
    return JSONResponse(await TrendsService(context, Viewer.nobody()).peers())


@router.get("/api/v1/instance/activity")
async def activity(context: AppContext = Depends(get_context)) -> JSONResponse:
    weeks = await TrendsService(context, Viewer.nobody()).activity()
    return JSONResponse(
        [
            {
                "week": str(int(week.week.timestamp())),
                "statuses": str(week.statuses),
                "logins": str(week.logins),
                "registrations": str(week.registrations),
            }
            for week in weeks
        ]
    )


def _prose(context: AppContext, text: str) -> str:
    return render_plain_text(text, mention_hrefs={}, hashtag_href=context.urls.tag) if text else ""


@router.get("/api/v1/instance/extended_description")
async def extended_description(context: AppContext = Depends(get_context)) -> JSONResponse:
    about = await InstanceService(context).about()
    return JSONResponse({"updated_at": None, "content": _prose(context, about.description)})


@router.get("/api/v1/instance/privacy_policy")
async def privacy_policy(context: AppContext = Depends(get_context)) -> JSONResponse:
    about = await InstanceService(context).about()
    return JSONResponse({"updated_at": None, "content": _prose(context, about.privacy_policy)})


__all__ = ["router"]
