"""/api/v1/conversations: direct-message conversations, read and removed as Mastodon does."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import ApiCaller, scoped
from app.api.entities.conversation import conversation_entities
from app.api.ids import path_id
from app.api.pagination import link_header, page_request
from app.context import AppContext
from app.dependencies import get_context
from app.services.conversations import ConversationService

router = APIRouter(prefix="/api/v1/conversations")
read_conversations = scoped("read", "read:statuses", user=True)
write_conversations = scoped("write", "write:conversations", user=True)


@router.get("")
async def conversations(
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(read_conversations),
) -> JSONResponse:
    found = await ConversationService(context, caller.viewer).page(page_request(request))
    return JSONResponse(
        await conversation_entities(context, caller.viewer, found),
        headers=link_header(
            request, context.settings.base_url, [conversation.last_post.id for conversation in found]
        ),
    )


@router.post("/{conversation_id}/read")
async def mark_read(
    conversation_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(write_conversations),
) -> JSONResponse:
    read = await ConversationService(context, caller.viewer).mark_read(path_id(conversation_id))
    return JSONResponse((await conversation_entities(context, caller.viewer, [read]))[0])


@router.delete("/{conversation_id}")
async def remove(
    conversation_id: str,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(write_conversations),
) -> JSONResponse:
    await ConversationService(context, caller.viewer).remove(path_id(conversation_id))
    return JSONResponse({})


__all__ = ["router"]
