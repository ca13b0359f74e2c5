"""Health checks for load balancers and orchestrators.

`GET /health` (liveness) answers from the process alone: a database outage must not make an
orchestrator restart every web process. `GET /health/ready` (readiness) says whether this process
can do its work: the database answers, its schema is the one this code expects (a deploy that
forgot `herold migrate` is not ready), and a worker has beaten recently (without one, nothing is
delivered or processed). 503 names the check that failed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from app.context import AppContext
from app.models.base import utcnow
from app.ops.heartbeat import HEARTBEAT_STALE, worker_beats

router = APIRouter()

# A readiness probe that hangs is worse than one that fails: each check gets this long.
CHECK_TIMEOUT = 5.0


@dataclass
class SchemaHead:
    """The newest migration this code ships, read from alembic/versions once per instance."""

    _head: str | None = field(default=None)

    def get(self) -> str | None:
        if self._head is None:
            from alembic.script import ScriptDirectory

            from app.migrations import alembic_config

            self._head = ScriptDirectory.from_config(alembic_config()).get_current_head()
        return self._head


async def _database_revision(context: AppContext) -> str | None:
    async with context.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))
        has_table = await connection.run_sync(lambda sync: sync.dialect.has_table(sync, "alembic_version"))
        if not has_table:
            return None
        return (await connection.execute(text("SELECT version_num FROM alembic_version"))).scalar()


async def readiness(context: AppContext, head: SchemaHead) -> tuple[bool, dict[str, Any]]:
    checks: dict[str, Any] = {}
    try:
        revision = await asyncio.wait_for(_database_revision(context), CHECK_TIMEOUT)
    except Exception as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        checks["database"] = {"ok": False, "error": f"the database does not answer: {reason}"[:300]}
        return False, checks
    checks["database"] = {"ok": True}
    expected = await asyncio.to_thread(head.get)
    if revision != expected:
        checks["migrations"] = {
            "ok": False,
            "error": f"the database is at migration {revision}, this code expects {expected}: "
            "run `herold migrate`",
        }
    else:
        checks["migrations"] = {"ok": True, "revision": revision}
    try:
        beats = await asyncio.wait_for(worker_beats(context), CHECK_TIMEOUT)
    except Exception:
        # The table is missing when migrations are behind; that check has said so already.
        beats = []
    latest = beats[0][1] if beats else None
    if latest is None:
        checks["worker"] = {"ok": False, "error": "no worker is running (herold worker, or EMBEDDED_WORKER)"}
    else:
        age = (utcnow() - latest).total_seconds()
        if age > HEARTBEAT_STALE.total_seconds():
            checks["worker"] = {
                "ok": False,
                "error": f"no worker has reported for {age:.0f} s",
                "last_heartbeat_age_seconds": round(age, 1),
            }
        else:
            checks["worker"] = {
                "ok": True,
                "workers": len(beats),
                "last_heartbeat_age_seconds": round(age, 1),
            }
    return all(check["ok"] for check in checks.values()), checks


@router.get("/health", include_in_schema=False)
async def health() -> JSONResponse:
    return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})


@router.get("/health/ready", include_in_schema=False)
async def health_ready(request: Request) -> JSONResponse:
    context: AppContext = request.app.state.context
    head: SchemaHead = request.app.state.schema_head
    ready, checks = await readiness(context, head)
    failed = [name for name, check in checks.items() if not check["ok"]]
    body: dict[str, Any] = {"status": "ok" if ready else "unavailable", "checks": checks}
    if failed:
        body["failed"] = failed
    return JSONResponse(body, status_code=200 if ready else 503, headers={"Cache-Control": "no-store"})
