"""/api/v1/push/subscription: the Web Push subscription of the token that calls it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import ApiCaller, bearer_token, scoped
from app.api.entities.common import api_id
from app.api.form_values import nested, truthy
from app.api.params import Params, WrongType, request_params
from app.context import AppContext
from app.dependencies import get_context
from app.models import PushSubscription
from app.services.web_push import (
    ALERTS,
    PushSubscriptionService,
    SubscriptionRequest,
    subscription_alerts,
    vapid_public_key,
)

router = APIRouter(prefix="/api/v1/push")


def _text(params: Params, *path: str) -> str | None:
    value = nested(params, *path)
    if value is None or isinstance(value, str):
        return value
    raise WrongType(f"{path[0]}{''.join(f'[{key}]' for key in path[1:])}: must be a string")


def _alerts(params: Params) -> dict[str, bool] | None:
    found = {name: nested(params, "data", "alerts", name) for name in ALERTS}
    given = {name: truthy(value) for name, value in found.items() if value is not None}
    sent = nested(params, "data", "alerts")
    if isinstance(sent, dict):
        unknown = set(sent) - set(ALERTS)
        given.update({name: truthy(sent[name]) for name in unknown})
    return given or None


async def _entity(context: AppContext, row: PushSubscription) -> dict[str, Any]:
    return {
        "id": api_id(row.id),
        "endpoint": row.endpoint,
        "standard": row.standard,
        "alerts": subscription_alerts(row),
        "policy": row.policy,
        "server_key": await vapid_public_key(context),
    }


def _token_id(caller: ApiCaller) -> int:
    assert caller.holder is not None
    return caller.holder.token.id


@router.post("/subscription")
async def subscribe(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("push", user=True)),
) -> JSONResponse:
    params = await request_params(request)
    endpoint = _text(params, "subscription", "endpoint")
    p256dh = _text(params, "subscription", "keys", "p256dh")
    auth = _text(params, "subscription", "keys", "auth")
    missing = [
        name
        for name, value in (
            ("subscription[endpoint]", endpoint),
            ("subscription[keys][p256dh]", p256dh),
            ("subscription[keys][auth]", auth),
        )
        if not value
    ]
    if missing:
        raise WrongType(f"{', '.join(missing)}: missing")
    assert endpoint is not None and p256dh is not None and auth is not None
    row = await PushSubscriptionService(context, caller.viewer).subscribe(
        _token_id(caller),
        bearer_token(request) or "",
        SubscriptionRequest(
            endpoint=endpoint,
            p256dh=p256dh,
            auth=auth,
            alerts=_alerts(params) or {},
            policy=_text(params, "data", "policy") or "all",
            standard=truthy(nested(params, "subscription", "standard")),
        ),
    )
    return JSONResponse(await _entity(context, row))


@router.get("/subscription")
async def current(
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("push", user=True)),
) -> JSONResponse:
    row = await PushSubscriptionService(context, caller.viewer).current(_token_id(caller))
    return JSONResponse(await _entity(context, row))


@router.put("/subscription")
async def change(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("push", user=True)),
) -> JSONResponse:
    params = await request_params(request)
    row = await PushSubscriptionService(context, caller.viewer).change(
        _token_id(caller), alerts=_alerts(params), policy=_text(params, "data", "policy")
    )
    return JSONResponse(await _entity(context, row))


@router.delete("/subscription")
async def remove(
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("push", user=True)),
) -> JSONResponse:
    await PushSubscriptionService(context, caller.viewer).remove(_token_id(caller))
    return JSONResponse({})


__all__ = ["router"]
