"""OAuth 2 endpoints apps call directly: registering (POST /api/v1/apps), the token and revocation
endpoints, and the RFC 8414 metadata. The authorize page is a web page (app/web/oauth_pages.py)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import ApiCaller, scoped
from app.api.params import Params, request_params
from app.context import AppContext
from app.dependencies import get_context
from app.models import OAuthApplication
from app.services.oauth import SCOPES_SUPPORTED, GrantRefused, IssuedToken, OAuthService
from app.services.web_push import vapid_public_key

router = APIRouter()


def application_entity(application: OAuthApplication, vapid_key: str) -> dict[str, Any]:
    """Mastodon's Application entity (4.3+: with redirect_uris as an array); `vapid_key` is the
    instance's Web Push key, which apps pass to the push service when they subscribe."""
    return {
        "id": str(application.id),
        "name": application.name,
        "website": application.website,
        "scopes": application.scopes.split(),
        "redirect_uri": "\n".join(application.redirect_uris),
        "redirect_uris": list(application.redirect_uris),
        "vapid_key": vapid_key,
    }


def _grant_error(error: GrantRefused) -> JSONResponse:
    status = 401 if error.code == "invalid_client" else 400
    return JSONResponse({"error": error.code, "error_description": error.message}, status_code=status)


def _token_entity(issued: IssuedToken) -> dict[str, Any]:
    return {
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "scope": " ".join(issued.scopes),
        # Mastodon sends seconds since the epoch here, unlike everywhere else.
        "created_at": int(issued.created_at.timestamp()),
    }


def _client_credentials(request: Request, params: Params) -> tuple[str | None, str | None]:
    """client_secret_post, or client_secret_basic (RFC 6749 2.3.1)."""
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            client_id, _, secret = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None, None
        return client_id, secret
    return params.text("client_id"), params.text("client_secret")


@router.post("/api/v1/apps")
async def create_app(request: Request, context: AppContext = Depends(get_context)) -> JSONResponse:
    params = await request_params(request)
    registered = await OAuthService(context).register_app(
        params.text("client_name") or "",
        params.texts("redirect_uris"),
        scopes=params.text("scopes"),
        website=params.text("website"),
    )
    entity = application_entity(registered.application, await vapid_public_key(context))
    entity.update(
        client_id=registered.application.client_id,
        client_secret=registered.client_secret,
        client_secret_expires_at=0,
    )
    return JSONResponse(entity)


@router.get("/api/v1/apps/verify_credentials")
async def verify_app(
    context: AppContext = Depends(get_context), caller: ApiCaller = Depends(scoped())
) -> JSONResponse:
    assert caller.application is not None  # scoped() lets no request without a token through
    return JSONResponse(application_entity(caller.application, await vapid_public_key(context)))


@router.post("/oauth/token")
async def token(request: Request, context: AppContext = Depends(get_context)) -> JSONResponse:
    params = await request_params(request)
    client_id, client_secret = _client_credentials(request, params)
    service = OAuthService(context)
    grant_type = params.text("grant_type")
    try:
        if grant_type == "authorization_code":
            issued = await service.exchange_code(
                client_id=client_id,
                client_secret=client_secret,
                code=params.text("code"),
                redirect_uri=params.text("redirect_uri"),
                code_verifier=params.text("code_verifier"),
            )
        elif grant_type == "client_credentials":
            issued = await service.client_credentials(
                client_id=client_id, client_secret=client_secret, scope=params.text("scope")
            )
        else:
            # Mastodon removed the password grant; nothing else is offered either.
            raise GrantRefused(
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server.",
            )
    except GrantRefused as error:
        return _grant_error(error)
    return JSONResponse(_token_entity(issued), headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@router.post("/oauth/revoke")
async def revoke(request: Request, context: AppContext = Depends(get_context)) -> JSONResponse:
    params = await request_params(request)
    client_id, client_secret = _client_credentials(request, params)
    try:
        await OAuthService(context).revoke(
            client_id=client_id, client_secret=client_secret, token=params.text("token")
        )
    except GrantRefused as error:
        return _grant_error(error)
    return JSONResponse({})


@router.get("/.well-known/oauth-authorization-server")
async def authorization_server_metadata(context: AppContext = Depends(get_context)) -> JSONResponse:
    base = context.settings.base_url
    return JSONResponse(
        {
            "issuer": f"{base}/",
            "service_documentation": "https://docs.joinmastodon.org/",
            "authorization_endpoint": f"{base}/oauth/authorize",
            "token_endpoint": f"{base}/oauth/token",
            "revocation_endpoint": f"{base}/oauth/revoke",
            "app_registration_endpoint": f"{base}/api/v1/apps",
            "scopes_supported": list(SCOPES_SUPPORTED),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code", "client_credentials"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
        }
    )


__all__ = ["application_entity", "router"]
