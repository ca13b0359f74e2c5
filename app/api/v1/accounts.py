"""/api/v1/accounts: the token's own account (with source), lookup and one account by id."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import ApiCaller, scoped
from app.api.entities.account import account_entity, credential_account_entity
from app.api.ids import path_id
from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import BadRequest
from app.services.account_lookup import account_by_acct, account_by_id

router = APIRouter(prefix="/api/v1/accounts")
public_read = scoped("read", "read:accounts", optional=True)


@router.get("/verify_credentials")
async def verify_credentials(
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:accounts", "profile", user=True)),
) -> JSONResponse:
    viewer = caller.viewer
    assert viewer.account is not None and viewer.user is not None
    # For an organisation token: the organisation account, which everything the token does acts as.
    return JSONResponse(credential_account_entity(context, viewer.account, language=viewer.user.locale))


@router.get("/lookup")
async def lookup(
    request: Request, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(public_read)
) -> JSONResponse:
    acct = request.query_params.get("acct", "")
    if not acct.strip() or len(acct) > 600:
        raise BadRequest("acct: missing")
    return JSONResponse(account_entity(context, await account_by_acct(context, caller.viewer, acct)))


@router.get("/{account_id}")
async def show(
    account_id: str, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(public_read)
) -> JSONResponse:
    account = await account_by_id(context, caller.viewer, path_id(account_id))
    return JSONResponse(account_entity(context, account))


__all__ = ["router"]
