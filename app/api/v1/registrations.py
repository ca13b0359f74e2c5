"""POST /api/v1/accounts: an app signs a person up (REGISTRATIONS=approval or open), with an app
token from the client_credentials grant, through the same RegistrationService as the sign-up page.
It answers with a token for the new account (unusable until an administrator approves, under
approval), and a refusal names the field in `error` and in Mastodon's `details`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import ApiCaller, scoped
from app.api.form_values import flag
from app.api.params import request_params
from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import Forbidden
from app.services.oauth import OAuthService
from app.services.registrations import RegistrationError, RegistrationService, SignUp

router = APIRouter(prefix="/api/v1")

# What Mastodon's apps show for each kind of refusal.
ERROR_CODES = {"agreement": "ERR_ACCEPTED", "username": "ERR_INVALID", "email": "ERR_INVALID"}


@router.post("/accounts")
async def create_account(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:accounts")),
) -> JSONResponse:
    application = caller.application
    if application is None or caller.viewer.user is not None:
        # As Mastodon: a person's token cannot sign up someone else; an app's own token can.
        raise Forbidden("This method requires an app token (client_credentials)")
    params = await request_params(request)
    client = request.client
    try:
        created = await RegistrationService(context).sign_up(
            SignUp(
                username=params.text("username") or "",
                email=params.text("email") or "",
                password=params.text("password") or "",
                agreement=bool(flag(params, "agreement", False)),
                locale=params.text("locale"),
                reason=params.text("reason"),
            ),
            address=client.host if client is not None else "unknown",
        )
    except RegistrationError as error:
        field, _, description = error.message.partition(": ")
        code = "ERR_TAKEN" if "taken" in description else ERROR_CODES.get(field, "ERR_INVALID")
        return JSONResponse(
            {
                "error": f"Validation failed: {error.message}",
                "details": {field: [{"error": code, "description": description}]},
            },
            status_code=422,
        )
    # The new account's token gets the scopes the app's token was granted, as on Mastodon.
    scopes = caller.holder.token.scopes.split() if caller.holder is not None else ["read"]
    issued = await OAuthService(context).issue_sign_up_token(application, created.user, scopes)
    return JSONResponse(
        {
            "access_token": issued.access_token,
            "token_type": "Bearer",
            "scope": " ".join(issued.scopes),
            "created_at": int(issued.created_at.timestamp()),
        }
    )


__all__ = ["router"]
