"""Lists of accounts and of an account's posts, paged with Link headers as Mastodon pages them:
an account's statuses, followers and following; the token's account's follow requests (with
authorize and reject), blocks, mutes and hidden domains."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import ApiCaller, scoped
from app.api.entities.common import api_time
from app.api.entities.relationship import relationship_entity
from app.api.entities.status import statuses
from app.api.form_values import truthy
from app.api.ids import path_id
from app.api.pagination import link_header, page_request
from app.api.params import WrongType, request_params
from app.api.v1.account_params import acting
from app.api.v1.account_views import account_entities
from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import NotFound
from app.services.account_lookup import account_by_id
from app.services.account_moderation import AccountModerationService
from app.services.account_posts import AccountPostFilter, account_posts
from app.services.follow_requests import FollowRequestService
from app.services.relationships import (
    AccountPage,
    blocked_by_viewer,
    blocks_viewer,
    follow_requests_to,
    followers_of,
    following_of,
    hidden_domains_of,
    muted_by_viewer,
    relationship,
)

router = APIRouter(prefix="/api/v1")
public_read = scoped("read", "read:accounts", optional=True)
MAX_TAG = 100


def _flag(request: Request, name: str) -> bool:
    return truthy(request.query_params.get(name))


async def _accounts(request: Request, context: AppContext, page: AccountPage) -> JSONResponse:
    return JSONResponse(
        await account_entities(context, page.accounts),
        headers=link_header(request, context.settings.base_url, page.ids),
    )


@router.get("/accounts/{account_id}/statuses")
async def account_statuses(
    account_id: str,
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:statuses", optional=True)),
) -> JSONResponse:
    account = await account_by_id(context, caller.viewer, path_id(account_id))
    tagged = (request.query_params.get("tagged") or "").strip().removeprefix("#") or None
    if tagged is not None and len(tagged) > MAX_TAG:
        raise WrongType("tagged: too long")
    wanted = AccountPostFilter(
        pinned=_flag(request, "pinned"),
        exclude_replies=_flag(request, "exclude_replies"),
        exclude_reblogs=_flag(request, "exclude_reblogs"),
        only_media=_flag(request, "only_media"),
        tagged=tagged,
    )
    posts = await account_posts(context, caller.viewer, account, page_request(request), wanted)
    return JSONResponse(
        await statuses(context, caller.viewer, posts, filter_context="account"),
        # Pinned posts come in one page: no Link, so a client does not page on.
        headers={}
        if wanted.pinned
        else link_header(request, context.settings.base_url, [post.id for post in posts]),
    )


@router.get("/accounts/{account_id}/followers")
async def followers(
    account_id: str,
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(public_read),
) -> JSONResponse:
    account = await account_by_id(context, caller.viewer, path_id(account_id))
    wanted = page_request(request, default_limit=40)
    if await blocks_viewer(context, caller.viewer, account):
        return await _accounts(request, context, AccountPage())
    return await _accounts(request, context, await followers_of(context, account, wanted))


@router.get("/accounts/{account_id}/following")
async def following(
    account_id: str,
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(public_read),
) -> JSONResponse:
    account = await account_by_id(context, caller.viewer, path_id(account_id))
    wanted = page_request(request, default_limit=40)
    if await blocks_viewer(context, caller.viewer, account):
        return await _accounts(request, context, AccountPage())
    return await _accounts(request, context, await following_of(context, account, wanted))


@router.get("/follow_requests")
async def follow_requests(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:follows", user=True)),
) -> JSONResponse:
    page = await follow_requests_to(context, caller.viewer, page_request(request, default_limit=40))
    return await _accounts(request, context, page)


async def _answer_request(
    context: AppContext, caller: ApiCaller, account_id: str, *, approve: bool
) -> JSONResponse:
    follower = await account_by_id(context, caller.viewer, path_id(account_id))
    if not (await relationship(context, caller.viewer, follower)).requested_by:
        # As on Mastodon: only a waiting request can be answered (reject never drops a follower here).
        raise NotFound("Record not found")
    requests = FollowRequestService(context, caller.viewer)
    # The same calls as the web's notification page.
    await (requests.approve if approve else requests.reject)(acting(caller), follower)
    return JSONResponse(relationship_entity(await relationship(context, caller.viewer, follower)))


@router.post("/follow_requests/{account_id}/authorize")
async def authorize_request(
    account_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:follows", user=True)),
) -> JSONResponse:
    return await _answer_request(context, caller, account_id, approve=True)


@router.post("/follow_requests/{account_id}/reject")
async def reject_request(
    account_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:follows", user=True)),
) -> JSONResponse:
    return await _answer_request(context, caller, account_id, approve=False)


@router.get("/blocks")
async def blocks(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:blocks", user=True)),
) -> JSONResponse:
    page = await blocked_by_viewer(context, caller.viewer, page_request(request, default_limit=40))
    return await _accounts(request, context, page)


@router.get("/mutes")
async def mutes(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:mutes", user=True)),
) -> JSONResponse:
    page = await muted_by_viewer(context, caller.viewer, page_request(request, default_limit=40))
    entities = await account_entities(context, [account for account, _ in page.entries])
    return JSONResponse(
        [
            {**entity, "mute_expires_at": api_time(mute.expires_at)}
            for entity, (_, mute) in zip(entities, page.entries, strict=True)
        ],
        headers=link_header(request, context.settings.base_url, page.ids),
    )


@router.get("/domain_blocks")
async def domain_blocks(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:blocks", user=True)),
) -> JSONResponse:
    domains, ids = await hidden_domains_of(context, caller.viewer, page_request(request, default_limit=40))
    return JSONResponse(domains, headers=link_header(request, context.settings.base_url, ids))


async def _hide_domain(
    request: Request, context: AppContext, caller: ApiCaller, *, hide: bool
) -> JSONResponse:
    params = await request_params(request)
    domain = (params.text("domain") or "").strip()
    if not domain:
        raise WrongType("domain: missing")
    await AccountModerationService(context, caller.viewer).hide_domain(acting(caller), domain, hide=hide)
    return JSONResponse({})


@router.post("/domain_blocks")
async def block_domain(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:blocks", user=True)),
) -> JSONResponse:
    return await _hide_domain(request, context, caller, hide=True)


@router.delete("/domain_blocks")
async def unblock_domain(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:blocks", user=True)),
) -> JSONResponse:
    return await _hide_domain(request, context, caller, hide=False)


__all__ = ["router"]
