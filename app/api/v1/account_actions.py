"""/api/v1/accounts: what the token's account does about another account — follow, unfollow,
remove from followers, block, mute, a private note — and what lies between them (relationships,
familiar followers).

Each action calls the same service the web pages call, so it federates as the web UI does (a
Follow, Undo, Block or Reject to a remote account's server; mutes and notes stay here). Each
answers with the Relationship after the change, as Mastodon does.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import ApiCaller, scoped
from app.api.entities.relationship import relationship_entity
from app.api.form_values import flag, truthy
from app.api.ids import path_id
from app.api.params import Params, WrongType, request_params
from app.api.v1.account_params import acting, id_list
from app.api.v1.account_views import account_entities
from app.context import AppContext
from app.dependencies import get_context
from app.models import Account
from app.services.account_lookup import account_by_id, accounts_by_ids
from app.services.account_moderation import AccountModerationService
from app.services.follow_requests import FollowRequestService
from app.services.following import FollowingService, FollowOptions
from app.services.relationships import (
    familiar_followers,
    relationship,
    relationships,
    set_note,
)
from app.services.viewer import Viewer

router = APIRouter(prefix="/api/v1/accounts")


async def _relationship_answer(context: AppContext, viewer: Viewer, target: Account) -> JSONResponse:
    return JSONResponse(relationship_entity(await relationship(context, viewer, target)))


@router.get("/relationships")
async def show_relationships(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:follows", user=True)),
) -> JSONResponse:
    with_suspended = truthy(request.query_params.get("with_suspended"))
    found = await relationships(context, caller.viewer, id_list(request), with_suspended=with_suspended)
    return JSONResponse([relationship_entity(item) for item in found])


@router.get("")
async def several_accounts(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:accounts", optional=True)),
) -> JSONResponse:
    """`GET /api/v1/accounts?id[]=…`: several accounts at once, unknown ones left out (Mastodon 4.3)."""
    accounts = await accounts_by_ids(context, caller.viewer, id_list(request))
    return JSONResponse(await account_entities(context, accounts))


@router.get("/familiar_followers")
async def show_familiar_followers(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:follows", user=True)),
) -> JSONResponse:
    found = await familiar_followers(context, caller.viewer, id_list(request))
    return JSONResponse(
        [
            {"id": str(target_id), "accounts": await account_entities(context, accounts)}
            for target_id, accounts in found.items()
        ]
    )


async def _target(context: AppContext, caller: ApiCaller, account_id: str) -> Account:
    return await account_by_id(context, caller.viewer, path_id(account_id))


@router.post("/{account_id}/follow")
async def follow(
    account_id: str,
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:follows", user=True)),
) -> JSONResponse:
    params = await request_params(request)
    target = await _target(context, caller, account_id)
    languages = params.texts("languages") if ("languages" in params or "languages[]" in params) else None
    options = FollowOptions(
        show_reblogs=flag(params, "reblogs", None), notify=flag(params, "notify", None), languages=languages
    )
    await FollowingService(context, caller.viewer).follow_account(acting(caller), target, options)
    return await _relationship_answer(context, caller.viewer, target)


@router.post("/{account_id}/unfollow")
async def unfollow(
    account_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:follows", user=True)),
) -> JSONResponse:
    target = await _target(context, caller, account_id)
    await FollowingService(context, caller.viewer).unfollow_account(acting(caller), target)
    return await _relationship_answer(context, caller.viewer, target)


@router.post("/{account_id}/remove_from_followers")
async def remove_from_followers(
    account_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:follows", user=True)),
) -> JSONResponse:
    target = await _target(context, caller, account_id)
    # The web UI's "reject": a remote follower's server gets a Reject of its Follow.
    await FollowRequestService(context, caller.viewer).reject(acting(caller), target)
    return await _relationship_answer(context, caller.viewer, target)


@router.post("/{account_id}/block")
async def block(
    account_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:blocks", user=True)),
) -> JSONResponse:
    target = await _target(context, caller, account_id)
    await AccountModerationService(context, caller.viewer).block(acting(caller), target)
    return await _relationship_answer(context, caller.viewer, target)


@router.post("/{account_id}/unblock")
async def unblock(
    account_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:blocks", user=True)),
) -> JSONResponse:
    target = await _target(context, caller, account_id)
    await AccountModerationService(context, caller.viewer).unblock(acting(caller), target)
    return await _relationship_answer(context, caller.viewer, target)


def _duration(params: Params) -> int | None:
    raw = params.text("duration")
    if raw is None or raw == "":
        return None
    if not raw.isdigit():
        raise WrongType("duration: must be a number of seconds")
    return int(raw)


@router.post("/{account_id}/mute")
async def mute(
    account_id: str,
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:mutes", user=True)),
) -> JSONResponse:
    params = await request_params(request)
    target = await _target(context, caller, account_id)
    await AccountModerationService(context, caller.viewer).mute(
        acting(caller),
        target,
        notifications=bool(flag(params, "notifications", True)),
        duration=_duration(params),
    )
    return await _relationship_answer(context, caller.viewer, target)


@router.post("/{account_id}/unmute")
async def unmute(
    account_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:mutes", user=True)),
) -> JSONResponse:
    target = await _target(context, caller, account_id)
    await AccountModerationService(context, caller.viewer).mute(acting(caller), target, mute=False)
    return await _relationship_answer(context, caller.viewer, target)


@router.post("/{account_id}/note")
async def note(
    account_id: str,
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:accounts", user=True)),
) -> JSONResponse:
    params = await request_params(request)
    target = await _target(context, caller, account_id)
    await set_note(context, caller.viewer, target, params.text("comment") or "")
    return await _relationship_answer(context, caller.viewer, target)


__all__ = ["router"]
