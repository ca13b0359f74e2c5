"""Attachments: uploads by local accounts, processed (at once for small pictures, by the worker for
the rest), described, and claimed by a post under the same rules for the web UI and the client API.

A file is checked before anything is stored: its kind is read from its bytes (never from its
name or declared type), pictures are refused over the pixel limit before they are decoded, video
and audio are probed against an allowlist. A refused upload leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.context import AppContext
from app.models import Account, InstanceSetting, MediaAttachment, MediaState, Post
from app.models.base import new_id
from app.services.errors import NotFound
from app.services.image_processing import (
    IMAGE_MATRIX_LIMIT,
    IMAGE_SIZE_LIMIT,
    IMAGE_TYPES,
    MediaInvalid,
    ProcessedImage,
    is_animated,
    open_checked,
    process_image,
    sniff_image_format,
)
from app.services.jobs import MEDIA_CLEANUP, MEDIA_PROCESS, ensure_queued, queue_job
from app.services.media_store import SCRATCH_FOLDER, MediaStore
from app.services.video_processing import (
    AUDIO_TYPES,
    VIDEO_FRAME_RATE_LIMIT,
    VIDEO_MATRIX_LIMIT,
    VIDEO_SIZE_LIMIT,
    VIDEO_TYPES,
    ProcessedMedia,
    checked_streams,
    ffmpeg_available,
    looks_like_audio_or_video,
    probe,
    process_av,
)
from app.services.viewer import Viewer

MAX_ATTACHMENTS = 4
MAX_DESCRIPTION = 1500
# Pictures up to this size are processed during the request (POST /api/v2/media answers 200);
# larger ones, and every video, go to the worker (202, then 206 until ready).
PROCESS_AT_ONCE_BYTES = 4 * 1024 * 1024
UPLOAD_LIMIT = VIDEO_SIZE_LIMIT
REQUIRE_DESCRIPTIONS_KEY = "require_media_descriptions"
ALONE_KINDS = ("video", "gifv", "audio")
CLEANUP_DELAY = timedelta(hours=1)


@dataclass(frozen=True)
class Focus:
    x: float = 0.0
    y: float = 0.0


def parse_focus(value: str | None) -> Focus | None:
    """Mastodon's `focus` parameter: "x,y", each from -1.0 to 1.0 (0,0 is the centre)."""
    if value is None or not value.strip():
        return None
    parts = value.split(",")
    try:
        x, y = (float(part) for part in parts)
    except ValueError:
        raise MediaInvalid('focus: must be two numbers between -1 and 1, as "x,y"') from None
    if not (-1.0 <= x <= 1.0 and -1.0 <= y <= 1.0):
        raise MediaInvalid("focus: both numbers must be between -1 and 1")
    return Focus(x, y)


def _description(value: str | None) -> str | None:
    if value is None:
        return None
    text = value.strip()
    if len(text) > MAX_DESCRIPTION:
        raise MediaInvalid(f"the description may have at most {MAX_DESCRIPTION} characters")
    return text or None


@dataclass
class _Outcome:
    """What processing produced, ready to be stored."""

    kind: str
    content_type: str
    extension: str
    data: bytes | None
    path: Path | None
    preview: ProcessedImage | None
    preview_data: bytes | None
    preview_extension: str | None
    width: int | None
    height: int | None
    blurhash: str | None
    meta: dict[str, Any]
    media: ProcessedMedia | None = None

    def cleanup(self) -> None:
        if self.media is not None:
            self.media.cleanup()


def _head(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(64)


def precheck(path: Path, size: int) -> str:
    """What the upload is ("image", "gif", "video" or "audio"), checked as far as can be without
    converting it.
    Blocking."""
    if size == 0:
        raise MediaInvalid("the file is empty")
    head = _head(path)
    image_format = sniff_image_format(head)
    if image_format is not None:
        if size > IMAGE_SIZE_LIMIT:
            raise MediaInvalid(f"pictures may be at most {IMAGE_SIZE_LIMIT // (1024 * 1024)} MB")
        data = path.read_bytes()
        open_checked(data).close()
        if image_format == "GIF" and is_animated(data):
            if not ffmpeg_available():
                raise MediaInvalid("animated GIFs are not accepted on this server")
            return "gif"
        return "image"
    if looks_like_audio_or_video(head):
        if not ffmpeg_available():
            raise MediaInvalid("video and audio files are not accepted on this server")
        if size > VIDEO_SIZE_LIMIT:
            raise MediaInvalid(f"files may be at most {VIDEO_SIZE_LIMIT // (1024 * 1024)} MB")
        _container, video, _audio, _duration = checked_streams(probe(path))
        return "video" if video is not None else "audio"
    if head.lstrip()[:1] == b"<":
        raise MediaInvalid("SVG and other markup are not accepted; upload a JPEG, PNG, GIF or WebP picture")
    raise MediaInvalid(
        "the file is not a picture, video or audio file in a supported format "
        "(JPEG, PNG, GIF, WebP, HEIC, AVIF, MP4, WebM, MOV, MP3, Ogg)"
    )


def process_file(path: Path, what: str) -> _Outcome:
    """Convert an upload that passed `precheck`. Blocking: run in a thread or the worker."""
    if what == "image":
        image = process_image(path.read_bytes())
        return _image_outcome(image)
    media = process_av(path)
    poster = media.poster
    return _Outcome(
        kind=media.kind,
        content_type=media.content_type,
        extension=media.extension,
        data=None,
        path=media.path,
        preview=poster,
        preview_data=poster.preview if poster else None,
        preview_extension=poster.preview_extension if poster else None,
        width=media.width,
        height=media.height,
        blurhash=poster.blurhash if poster else None,
        meta=media.meta,
        media=media,
    )


def _image_outcome(image: ProcessedImage) -> _Outcome:
    return _Outcome(
        kind="image",
        content_type=image.content_type,
        extension=image.extension,
        data=image.data,
        path=None,
        preview=image,
        preview_data=image.preview,
        preview_extension=image.preview_extension,
        width=image.width,
        height=image.height,
        blurhash=image.blurhash,
        meta=dict(image.meta),
    )


async def store_outcome(store: MediaStore, outcome: _Outcome, folder: str) -> dict[str, Any]:
    """Write a processed file and its preview under fresh unguessable keys; the row's new values."""
    token = secrets.token_hex(16)
    key = store.new_key(folder, outcome.extension, token=token)
    preview_key = None
    try:
        if outcome.data is not None:
            size = len(outcome.data)
            await store.put(key, outcome.data)
        elif outcome.path is not None:
            source = outcome.path
            size = await asyncio.to_thread(lambda: source.stat().st_size)
            await store.put_file(key, source)
        else:
            raise MediaInvalid("processing produced no file")
        if outcome.preview_data is not None and outcome.preview_extension is not None:
            preview_key = store.new_key(folder, outcome.preview_extension, token=token, suffix="-small")
            await store.put(preview_key, outcome.preview_data)
    except BaseException:
        # Nothing half-stored: the file stays no longer than its preview could be written.
        await store.delete(key, preview_key)
        raise
    finally:
        await asyncio.to_thread(outcome.cleanup)
    return {
        "kind": outcome.kind,
        "media_type": outcome.content_type,
        "file_path": key,
        "preview_path": preview_key,
        "url": store.url(key),
        "preview_url": store.url(preview_key) if preview_key else None,
        "file_size": size,
        "width": outcome.width,
        "height": outcome.height,
        "blurhash": outcome.blurhash,
        "meta": outcome.meta,
        "state": MediaState.READY,
        "processing_error": None,
    }


def stored_keys(attachments: Iterable[MediaAttachment]) -> list[str]:
    """The store's keys of these attachments' files (uploads, or cached copies of remote ones)."""
    return [key for media in attachments for key in (media.file_path, media.preview_path) if key]


async def stored_keys_of_posts(session: AsyncSession, *post_conditions: Any) -> list[str]:
    """The keys of the files of the posts matching `post_conditions`, read before they are deleted
    (their rows go with the posts, ON DELETE CASCADE), to be removed from the store after the commit."""
    attachments = await session.scalars(
        select(MediaAttachment).where(
            col(MediaAttachment.post_id).in_(select(Post.id).where(*post_conditions)),
            or_(col(MediaAttachment.file_path).is_not(None), col(MediaAttachment.preview_path).is_not(None)),
        )
    )
    return stored_keys(attachments.all())


def with_focus(meta: dict[str, Any], media: MediaAttachment) -> dict[str, Any]:
    """`meta` as Mastodon answers it: the stored sizes and the focal point."""
    shown = dict(meta)
    if media.kind in ("image", "gifv", "video", "") and (media.width or meta.get("original")):
        shown["focus"] = {"x": media.focus_x, "y": media.focus_y}
    return shown


def media_limits() -> dict[str, Any]:
    """What uploads may be, from the constants the media pipeline enforces (video and audio only
    where ffmpeg is installed)."""
    types = list(IMAGE_TYPES.values())
    if ffmpeg_available():
        types += [*VIDEO_TYPES, *AUDIO_TYPES]
    return {
        "supported_mime_types": list(dict.fromkeys(types)),
        "description_limit": MAX_DESCRIPTION,
        "image_size_limit": IMAGE_SIZE_LIMIT,
        "image_matrix_limit": IMAGE_MATRIX_LIMIT,
        "video_size_limit": VIDEO_SIZE_LIMIT,
        "video_frame_rate_limit": VIDEO_FRAME_RATE_LIMIT,
        "video_matrix_limit": VIDEO_MATRIX_LIMIT,
    }


class MediaService:
    """Every method checks that the viewer may act as the account owning the attachment."""

    def __init__(self, context: AppContext, viewer: Viewer | None = None) -> None:
        self.context = context
        self.viewer = viewer if viewer is not None else Viewer.system()
        self.store = context.media

    def scratch_dir(self) -> Path:
        return self.store.scratch_dir()

    async def upload(
        self,
        owner: Account,
        source: Path,
        *,
        description: str | None = None,
        focus: str | None = None,
        wait: bool = False,
    ) -> MediaAttachment:
        """Take over `source` (an upload in the scratch folder) as a new attachment of `owner`.

        With `wait`, it is processed before this returns; otherwise small pictures are, and the
        rest is left to a `media.process` job (the row says "processing" until it is done)."""
        self.viewer.require_act_as(owner)
        # Uploads never attached are dropped by the daily cleanup: it exists from the first upload on.
        await ensure_queued(self.context, MEDIA_CLEANUP, after=CLEANUP_DELAY)
        try:
            described = _description(description)
            focal = parse_focus(focus) or Focus()
            size = await asyncio.to_thread(lambda: source.stat().st_size)
            if size > UPLOAD_LIMIT:
                raise MediaInvalid(f"files may be at most {UPLOAD_LIMIT // (1024 * 1024)} MB")
            what = await asyncio.to_thread(precheck, source, size)
            media = MediaAttachment(
                id=new_id(),
                account_id=owner.id,
                description=described,
                focus_x=focal.x,
                focus_y=focal.y,
                state=MediaState.PROCESSING,
                # Known before processing, so that apps show the right placeholder meanwhile.
                kind="gifv" if what == "gif" else what,
            )
            if wait or (what == "image" and size <= PROCESS_AT_ONCE_BYTES):
                outcome = await asyncio.to_thread(process_file, source, "image" if what == "image" else "av")
                for name, value in (await store_outcome(self.store, outcome, "attachments")).items():
                    setattr(media, name, value)
                async with self.context.sessions() as session:
                    session.add(media)
                    await session.commit()
                    await session.refresh(media)
                # The raw upload is of no use once converted (and may hold the GPS position).
                await asyncio.to_thread(_unlink, source)
                return media
        except BaseException:
            await asyncio.to_thread(_unlink, source)
            raise
        # The raw upload waits in the local scratch folder for the worker (in both stores: ffmpeg
        # and Pillow read files).
        if source.parent != self.scratch_dir():
            waiting = self.store.scratch_path(f"upload-{secrets.token_hex(16)}")
            await asyncio.to_thread(shutil.move, str(source), str(waiting))
            source = waiting
        media.upload_path = f"{SCRATCH_FOLDER}/{source.name}"
        async with self.context.sessions() as session:
            session.add(media)
            queue_job(self.context, session, MEDIA_PROCESS, {"media_id": media.id, "what": what})
            await session.commit()
            await session.refresh(media)
        return media

    async def process_queued(self, media_id: int, what: str) -> None:
        """The worker's half of an upload: convert the waiting file and mark the row ready (or failed,
        with the reason, when the file cannot be converted)."""
        async with self.context.sessions() as session:
            media = await session.get(MediaAttachment, media_id)
        if media is None or media.state != MediaState.PROCESSING or not media.upload_path:
            return
        source = self.store.scratch_path(media.upload_path.removeprefix(f"{SCRATCH_FOLDER}/"))
        values: dict[str, Any]
        try:
            # The worker's conversion: nobody waits on a request for it (app.ops.background_cpu).
            outcome = await self.context.background_cpu.run(
                process_file, source, "image" if what == "image" else "av"
            )
            values = await store_outcome(self.store, outcome, "attachments")
        except MediaInvalid as error:
            values = {"state": MediaState.FAILED, "processing_error": str(error)[:1000]}
        values["upload_path"] = None
        async with self.context.sessions() as session:
            stored = await session.get(MediaAttachment, media_id)
            if stored is None:
                await self.store.delete(values.get("file_path"), values.get("preview_path"))
            else:
                for name, value in values.items():
                    setattr(stored, name, value)
                session.add(stored)
                await session.commit()
        await asyncio.to_thread(_unlink, source)

    async def own(self, owner: Account, media_id: int) -> MediaAttachment:
        """An attachment of `owner`'s; NotFound for any other (another account's ids do not exist)."""
        self.viewer.require_act_as(owner)
        async with self.context.sessions() as session:
            media = await session.get(MediaAttachment, media_id)
        if media is None or media.account_id != owner.id:
            raise NotFound("Record not found")
        return media

    async def attached_to(self, owner: Account, post_id: int) -> list[MediaAttachment]:
        """The attachments of a post of `owner`'s, in their order."""
        self.viewer.require_act_as(owner)
        async with self.context.sessions() as session:
            found = await session.scalars(
                select(MediaAttachment)
                .where(col(MediaAttachment.post_id) == post_id, col(MediaAttachment.account_id) == owner.id)
                .order_by(col(MediaAttachment.position))
            )
            return list(found.all())

    async def update(
        self,
        owner: Account,
        media_id: int,
        *,
        description: str | None = None,
        focus: str | None = None,
        thumbnail: Path | None = None,
    ) -> MediaAttachment:
        """Change the description, the focal point or the preview picture (a video's poster)."""
        media = await self.own(owner, media_id)
        values: dict[str, Any] = {}
        if description is not None:
            values["description"] = _description(description)
        focal = parse_focus(focus)
        if focal is not None:
            values["focus_x"], values["focus_y"] = focal.x, focal.y
        old_preview = None
        if thumbnail is not None:
            try:
                size = await asyncio.to_thread(lambda: thumbnail.stat().st_size)
                if size > IMAGE_SIZE_LIMIT or size == 0:
                    raise MediaInvalid("the thumbnail must be a picture of at most 16 MB")
                image = await asyncio.to_thread(lambda: process_image(thumbnail.read_bytes()))
            finally:
                await asyncio.to_thread(_unlink, thumbnail)
            key = self.store.new_key("attachments", image.preview_extension, suffix="-small")
            await self.store.put(key, image.preview)
            old_preview = media.preview_path
            values.update(preview_path=key, preview_url=self.store.url(key), blurhash=image.blurhash)
        async with self.context.sessions() as session:
            stored = await session.get(MediaAttachment, media.id)
            if stored is None:
                raise NotFound("Record not found")
            for name, value in values.items():
                setattr(stored, name, value)
            session.add(stored)
            await session.commit()
            await session.refresh(stored)
        if old_preview and old_preview != stored.preview_path:
            await self.store.delete(old_preview)
        return stored

    async def descriptions_required(self) -> bool:
        async with self.context.sessions() as session:
            row = await session.get(InstanceSetting, REQUIRE_DESCRIPTIONS_KEY)
        return row is not None and row.value == "1"


async def claim_for_post(
    session: AsyncSession,
    author: Account,
    media_ids: Sequence[str | int],
    post_id: int,
) -> list[MediaAttachment]:
    """Attach the attachments named (in that order) to the post `post_id`, within the caller's
    transaction; Invalid, naming the problem, unless every rule holds: at most four, the author's
    own, not attached to another post, processed, a video or audio file alone, and described when
    the administrators require it."""
    wanted: list[int] = []
    for raw in media_ids:
        try:
            wanted.append(int(str(raw).strip()))
        except ValueError:
            raise MediaInvalid(f"media_ids: {str(raw)[:40]!r} is not an attachment id") from None
    wanted = list(dict.fromkeys(wanted))
    if len(wanted) > MAX_ATTACHMENTS:
        raise MediaInvalid(f"a post may carry at most {MAX_ATTACHMENTS} attachments")
    if not wanted:
        return []
    rows = await session.scalars(
        select(MediaAttachment).where(col(MediaAttachment.id).in_(wanted)).with_for_update()
    )
    found = {media.id: media for media in rows.all()}
    for media_id in wanted:
        media = found.get(media_id)
        if media is None or media.account_id != author.id:
            raise MediaInvalid(f"attachment {media_id} does not exist or is not yours")
        if media.post_id is not None and media.post_id != post_id:
            raise MediaInvalid(f"attachment {media_id} is already attached to another post")
        if media.state == MediaState.PROCESSING:
            raise MediaInvalid(f"attachment {media_id} is still being processed; try again in a moment")
        if media.state != MediaState.READY:
            raise MediaInvalid(
                f"attachment {media_id} could not be processed: {media.processing_error or 'unknown error'}"
            )
    chosen = [found[media_id] for media_id in wanted]
    if len(chosen) > 1 and any(media.kind in ALONE_KINDS for media in chosen):
        raise MediaInvalid("a video or audio file must be the post's only attachment")
    required = await session.get(InstanceSetting, REQUIRE_DESCRIPTIONS_KEY)
    if required is not None and required.value == "1" and any(not media.description for media in chosen):
        raise MediaInvalid("every picture, video and audio file needs a description on this server")
    for position, media in enumerate(chosen):
        media.post_id = post_id
        media.position = position
        session.add(media)
    return chosen


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


__all__ = [
    "MAX_ATTACHMENTS",
    "MAX_DESCRIPTION",
    "REQUIRE_DESCRIPTIONS_KEY",
    "UPLOAD_LIMIT",
    "Focus",
    "MediaService",
    "claim_for_post",
    "media_limits",
    "parse_focus",
    "process_file",
    "store_outcome",
    "stored_keys",
    "stored_keys_of_posts",
    "with_focus",
]
