"""Who an API request speaks for: the bearer token turned into the services' Viewer, and the
scope checks Mastodon makes (401 without a valid token, 403 outside its scopes)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import Depends, Request

from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import Forbidden, HttpError, Unauthorized
from app.models import OAuthApplication
from app.services import errors as service_errors
from app.services.oauth import OAuthService, TokenHolder, secret_hash
from app.services.viewer import Viewer, person_viewer

INVALID_TOKEN = "The access token is invalid"  # noqa: S105 (a message, not a secret)
OUTSIDE_SCOPES = "This action is outside the authorized scopes"


class UserRequired(HttpError):
    status_code = 422


@dataclass(frozen=True)
class ApiCaller:
    """The viewer the services get, and the token behind it (None: no token was sent)."""

    viewer: Viewer
    holder: TokenHolder | None = None

    @property
    def application(self) -> OAuthApplication | None:
        return self.holder.application if self.holder is not None else None


def bearer_token(request: Request) -> str | None:
    """`Authorization: Bearer …`, or the `access_token` query parameter (streaming clients send it so)."""
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return request.query_params.get("access_token") or None


async def api_caller(request: Request, context: AppContext = Depends(get_context)) -> ApiCaller:
    """The caller; anonymous without a token, 401 with one that is not (or no longer) valid."""
    token = bearer_token(request)
    if token is None:
        return ApiCaller(Viewer.nobody())
    caller = await caller_of_token(context, token)
    if caller is None:
        raise Unauthorized(INVALID_TOKEN)
    return caller


async def caller_of_token(context: AppContext, token: str) -> ApiCaller | None:
    """Who `token` speaks for, or None when it is not (or no longer) valid.

    Kept in the process once resolved (app.services.kept_callers), and taken from there only
    after this process has heard every change the others had announced: a revoked token, a
    suspended account, a disabled login are refused at once in every process."""
    if not token or len(token) > 200:
        return None
    kept = context.callers
    token_hash = secret_hash(token)
    channel = context.channel
    caught_up = channel is not None and await channel.catch_up()
    if caught_up:
        found: ApiCaller | None = kept.get(token_hash)
        if found is not None:
            return found
    ticket = kept.ticket()
    holder = await OAuthService(context).token_holder(token)
    if holder is None:
        return None
    if holder.user is None or holder.own_account is None:
        caller = ApiCaller(Viewer(scopes=holder.scopes), holder)
    else:
        try:
            viewer = await person_viewer(
                context,
                holder.user,
                holder.own_account,
                acting_as=holder.acting_account,
                scopes=holder.scopes,
            )
        except service_errors.Forbidden:
            # The organisation's team no longer includes this person: the token is dead.
            return None
        caller = ApiCaller(viewer, holder)
    if caught_up:
        accounts = {
            account.id for account in (holder.own_account, holder.acting_account) if account is not None
        }
        kept.put(token_hash, caller, frozenset(accounts | caller.viewer.acting_ids), ticket)
    return caller


def scoped(*scopes: str, user: bool = False, optional: bool = False) -> Callable[..., Awaitable[ApiCaller]]:
    """A dependency: a valid token holding any of `scopes` (with `user`, one acting for a person).
    With `optional`, anonymous requests pass too (public reads), but a token must hold a scope."""

    async def dependency(caller: ApiCaller = Depends(api_caller)) -> ApiCaller:
        if caller.holder is None:
            if optional:
                return caller
            raise Unauthorized(INVALID_TOKEN)
        if scopes and not any(caller.viewer.has_scope(scope) for scope in scopes):
            raise Forbidden(OUTSIDE_SCOPES)
        if user and caller.viewer.user is None:
            raise UserRequired("This method requires an authenticated user")
        return caller

    return dependency


__all__ = [
    "INVALID_TOKEN",
    "OUTSIDE_SCOPES",
    "ApiCaller",
    "api_caller",
    "bearer_token",
    "caller_of_token",
    "scoped",
]
