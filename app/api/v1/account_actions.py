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
from app.api.entities.account import account_entity
from app.api.entities.relationship import relationship_entity
from app.api.ids import MAX_ID, path_id
from app.api.params import Params, WrongType, request_params
from app.context import AppContext
from app.dependencies import get_context
from app.models import Account
from app.services.account_lookup import account_by_id, accounts_by_ids
from app.services.account_moderation import AccountModerationService
from app.services.follow_requests import FollowRequestService
from app.services.following import FollowingService, FollowOptions
from app.services.relationships import (
    MAX_RELATIONSHIPS,
    familiar_followers,
    relationship,
    relationships,
    set_note,
)
from app.services.viewer import Viewer

router = APIRouter(prefix="/api/v1/accounts")

TRUE_WORDS = ("true", "1", "on", "yes")
FALSE_WORDS = ("false", "0", "off", "no", "")


def flag(params: Params, name: str, default: bool | None = None) -> bool | None:
    """A boolean as apps send it (JSON true, "true", "1", "on"); `default` when absent."""
    value = params.get(name)
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = (params.text(name) or "").lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise WrongType(f"{name}: must be true or false")


def id_list(request: Request, name: str = "id") -> list[int]:
    """`id[]=1&id[]=2` (or `id=1`), as Mastodon's clients send account ids; at most 100."""
    values = request.query_params.getlist(f"{name}[]") + request.query_params.getlist(name)
    if len(values) > MAX_RELATIONSHIPS:
        raise WrongType(f"{name}: at most {MAX_RELATIONSHIPS} ids")
    ids = []
    for value in values:
        if not value.isdigit() or int(value) > MAX_ID:
            raise WrongType(f"{name}: {value[:40]!r} is not an id")
        ids.append(int(value))
    return ids


def acting(caller: ApiCaller) -> Account:
    assert caller.viewer.account is not None  # scoped(user=True) lets only a person's token through
    return caller.viewer.account


async def _relationship_answer(context: AppContext, viewer: Viewer, target: Account) -> JSONResponse:
    return JSONResponse(relationship_entity(await relationship(context, viewer, target)))


@router.get("/relationships")
async def show_relationships(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:follows", user=True)),
) -> JSONResponse:
    with_suspended = (request.query_params.get("with_suspended") or "").lower() in TRUE_WORDS
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
    return JSONResponse([account_entity(context, account) for account in accounts])


@router.get("/familiar_followers")
async def show_familiar_followers(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:follows", user=True)),
) -> JSONResponse:
    found = await familiar_followers(context, caller.viewer, id_list(request))
    return JSONResponse(
        [
            {"id": str(target_id), "accounts": [account_entity(context, account) for account in accounts]}
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
        show_reblogs=flag(params, "reblogs"), notify=flag(params, "notify"), languages=languages
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


__all__ = ["acting", "flag", "id_list", "router"]
