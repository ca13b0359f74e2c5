"""Request dependencies shared by every surface (web pages, ActivityPub, discovery, the client API).

Outside app/web/ so that no other surface imports the web package for them.
"""

from __future__ import annotations

from fastapi import Request

from app.context import AppContext


async def get_context(request: Request) -> AppContext:
    # Async although it awaits nothing: FastAPI runs a plain function dependency on its thread
    # pool, and that round trip (a thread woken, the loop woken back) cost every request more
    # than the lookup itself.
    context: AppContext = request.app.state.context
    return context
