"""create_app(settings): wiring only. Each call builds an independent instance."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from app import __version__
from app.activitypub.object_routes import router as object_router
from app.activitypub.routes import router as activitypub_router
from app.api.middleware import ClientApiMiddleware
from app.api.routes import routers as api_routers
from app.api.streaming.hub import StreamingHub
from app.api.streaming.routes import StreamingSocketEntrance
from app.cache_middleware import PublicCacheMiddleware
from app.config import Settings
from app.context import AppContext, build_context
from app.federation.inbox import InboxEntrance
from app.federation.worker import build_worker
from app.http_errors import install_error_handlers
from app.ops.first_start import prepare_instance
from app.ops.health import SchemaHead
from app.ops.health import router as health_router
from app.ops.logs import RequestLogMiddleware
from app.ops.metrics import router as metrics_router
from app.web.install import install_web
from app.web.routes import router as web_router
from app.wellknown.routes import router as wellknown_router

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = Path(__file__).resolve().parent / "static"


def create_app(
    settings: Settings,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
    setup_token: str | None = None,
) -> FastAPI:
    """A Herold instance. `transport` replaces the network (the test lab routes between instances with it).

    `setup_token`: one of several web processes of `herold serve` (app.ops.supervisor), which
    has printed the setup line itself and hands every process the same token.
    """
    context = build_context(settings, transport=transport)
    if setup_token is not None:
        context.setup_token = setup_token

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Before anything is answered: what other processes commit reaches this one's listeners.
        await context.open_channel("worker" if settings.embedded_worker else "web")
        await prepare_instance(context, announce=setup_token is None)
        worker_task = None
        if settings.embedded_worker:
            worker_task = asyncio.create_task(build_worker(context).run(), name="herold-worker")
        try:
            yield
        finally:
            await streaming.aclose()
            if worker_task is not None:
                worker_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker_task
            await context.aclose()

    app = FastAPI(
        title="Herold",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        # FastAPI's own OpenTelemetry hooks looked up the tracer provider (through os.environ) on
        # every request, some 4 % of a web process's CPU under deliveries; Herold's metrics are
        # its Prometheus ones (app/ops/metrics.py).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.context = context
    app.state.schema_head = SchemaHead()
    # The open streaming connections and the events they wait for (app/api/streaming).
    streaming = app.state.streaming = StreamingHub(context)
    install_error_handlers(app)
    # Innermost of the middleware (added first): deliveries skip FastAPI's routing, not the app's
    # own layers around it.
    app.add_middleware(InboxEntrance)
    install_web(app, context, TEMPLATES_DIR)
    app.add_middleware(ClientApiMiddleware)
    # Outermost but for the public cache: every request gets its id before anything logs.
    app.add_middleware(RequestLogMiddleware, observe=context.metrics.request_observer(context.engine))
    # Outermost of all: a hit costs a fifth of what the access log and the request metrics cost
    # (the proxy logs it; herold_public_cache_hits_total counts it). A miss passes through both,
    # and the security headers are in what was kept.
    app.add_middleware(PublicCacheMiddleware, context=context)
    # Outside even that, for what holds on longest: the streaming API's WebSockets go straight to
    # their handler, and an idle connection keeps no middleware waiting (one comparison for the rest).
    app.add_middleware(StreamingSocketEntrance)
    app.include_router(health_router)
    app.include_router(metrics_router)
    app.include_router(wellknown_router)
    app.include_router(activitypub_router)
    app.include_router(object_router)
    for api_router in api_routers:
        app.include_router(api_router)
    app.include_router(web_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def app_context(app: FastAPI) -> AppContext:
    context: AppContext = app.state.context
    return context
