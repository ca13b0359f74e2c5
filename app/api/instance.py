"""Mastodon's client API, instance part: what other servers' tools read about this one."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from app.context import AppContext
from app.dependencies import get_context
from app.services.domain_blocks import DomainBlockService

router = APIRouter(prefix="/api/v1/instance")


@router.get("/domain_blocks")
async def domain_blocks(context: AppContext = Depends(get_context)) -> JSONResponse:
    """The public list of moderated servers, in Mastodon's shape (fediverse block-list tools read it)."""
    rows = await DomainBlockService(context).blocks()
    return JSONResponse(
        [
            {
                "domain": row.domain,
                "digest": hashlib.sha256(row.domain.encode()).hexdigest(),
                "severity": row.severity,
                "comment": row.public_comment or "",
            }
            for row in rows
        ],
        headers={"Cache-Control": "public, max-age=300", "Access-Control-Allow-Origin": "*"},
    )
