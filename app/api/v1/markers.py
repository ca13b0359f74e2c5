"""/api/v1/markers: where the person stopped reading home and notifications, shared by their apps."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import ApiCaller, scoped
from app.api.entities.common import api_id, api_time
from app.api.form_values import nested
from app.api.params import Params, WrongType, request_params
from app.context import AppContext
from app.dependencies import get_context
from app.models import Marker
from app.services.markers import TIMELINES, Markers

router = APIRouter(prefix="/api/v1/markers")
MAX_ID = 2**63 - 1


def _markers(rows: list[Marker]) -> dict[str, Any]:
    return {
        row.timeline: {
            "last_read_id": api_id(row.last_read_id),
            "version": row.version,
            "updated_at": api_time(row.updated_at),
        }
        for row in rows
    }


@router.get("")
async def read(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("read", "read:statuses", user=True)),
) -> JSONResponse:
    names = request.query_params.getlist("timeline[]") + request.query_params.getlist("timeline")
    return JSONResponse(_markers(await Markers(context, caller.viewer).read(names or TIMELINES)))


def _position(params: Params, name: str) -> int | None:
    """`home[last_read_id]` from a form, or `{"home": {"last_read_id": …}}` from JSON."""
    value = nested(params, name, "last_read_id")
    if value is None:
        return None
    text = str(value)
    if not text.isdigit() or int(text) > MAX_ID:
        raise WrongType(f"{name}[last_read_id]: must be an id (a string of digits)")
    return int(text)


@router.post("")
async def save(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(scoped("write", "write:statuses", user=True)),
) -> JSONResponse:
    params = await request_params(request)
    positions = {name: found for name in TIMELINES if (found := _position(params, name)) is not None}
    if not positions:
        raise WrongType("home[last_read_id] or notifications[last_read_id]: one is required")
    return JSONResponse(_markers(await Markers(context, caller.viewer).save(positions)))


__all__ = ["router"]
