"""/api/v1/media and /api/v2/media: uploading attachments, reading their state, describing them.

The body is read as a stream (app.http_uploads): the file goes to disk as it arrives and the
upload is cut off at the limit. Everything else is MediaService's, as for the web compose form.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from app.api.auth import ApiCaller, scoped
from app.api.entities.media import media_entity
from app.api.ids import path_id
from app.api.params import WrongType, request_params
from app.context import AppContext
from app.dependencies import get_context
from app.http_uploads import ReceivedForm, UploadedFile, receive_multipart
from app.models import Account, MediaState
from app.services.media import UPLOAD_LIMIT, MediaService

router = APIRouter()
write_media = scoped("write", "write:media", user=True)


def _acting(caller: ApiCaller) -> Account:
    assert caller.viewer.account is not None  # scoped(user=True) lets only a person's token through
    return caller.viewer.account


def _file(form: ReceivedForm, name: str) -> UploadedFile | None:
    return next((upload for upload in form.files if upload.field == name), None)


async def _upload(request: Request, context: AppContext, caller: ApiCaller, *, wait: bool) -> JSONResponse:
    service = MediaService(context, caller.viewer)
    form = await receive_multipart(request, service.scratch_dir(), UPLOAD_LIMIT)
    try:
        upload = _file(form, "file")
        if upload is None:
            raise WrongType("file: an uploaded file is required")
        form.files.remove(upload)
        media = await service.upload(
            _acting(caller),
            upload.path,
            description=form.first("description"),
            focus=form.first("focus"),
            wait=wait,
        )
        thumbnail = _file(form, "thumbnail")
        if thumbnail is not None:
            form.files.remove(thumbnail)
            media = await service.update(_acting(caller), media.id, thumbnail=thumbnail.path)
    finally:
        form.discard()
    status = 200 if media.state == MediaState.READY else 202
    return JSONResponse(media_entity(media), status_code=status)


@router.post("/api/v2/media")
async def upload_v2(
    request: Request, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(write_media)
) -> JSONResponse:
    """200 with the attachment when it was processed at once, 202 while the worker processes it."""
    return await _upload(request, context, caller, wait=False)


@router.post("/api/v1/media")
async def upload_v1(
    request: Request, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(write_media)
) -> JSONResponse:
    """The older endpoint answers once the file is processed, whatever its size."""
    return await _upload(request, context, caller, wait=True)


@router.get("/api/v1/media/{media_id}")
async def show(
    media_id: str, context: AppContext = Depends(get_context), caller: ApiCaller = Depends(write_media)
) -> JSONResponse:
    media = await MediaService(context, caller.viewer).own(_acting(caller), path_id(media_id))
    if media.state == MediaState.FAILED:
        return JSONResponse({"error": media.processing_error or "the file could not be processed"}, 422)
    return JSONResponse(media_entity(media), status_code=206 if media.state == MediaState.PROCESSING else 200)


@router.put("/api/v1/media/{media_id}")
async def update(
    media_id: str,
    request: Request,
    context: AppContext = Depends(get_context),
    caller: ApiCaller = Depends(write_media),
) -> JSONResponse:
    service = MediaService(context, caller.viewer)
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await receive_multipart(request, service.scratch_dir(), UPLOAD_LIMIT)
        try:
            thumbnail = _file(form, "thumbnail")
            if thumbnail is not None:
                form.files.remove(thumbnail)
            media = await service.update(
                _acting(caller),
                path_id(media_id),
                description=form.first("description"),
                focus=form.first("focus"),
                thumbnail=thumbnail.path if thumbnail else None,
            )
        finally:
            form.discard()
    else:
        params = await request_params(request)
        media = await service.update(
            _acting(caller),
            path_id(media_id),
            description=params.text("description"),
            focus=params.text("focus"),
        )
    return JSONResponse(media_entity(media))


__all__ = ["router"]
