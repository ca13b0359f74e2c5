"""Writing a post: the composer, its preview, and publishing as the account chosen."""

from __future__ import annotations

import asyncio
import secrets
import shutil
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData
from starlette.datastructures import UploadFile as StarletteUpload

from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import NotFound
from app.i18n import N_, supported
from app.models import Account, MediaAttachment, Post, Visibility
from app.services.errors import RateLimited
from app.services.image_processing import MediaInvalid
from app.services.media import MAX_DESCRIPTION, MediaService, media_limits
from app.services.posting import PostingError, PostingService, visible_length
from app.services.staff import StaffService
from app.services.text_format import render_plain_text
from app.web.ids import parse_id
from app.web.notices import redirect
from app.web.post_views import account_by_id, build_cards
from app.web.session import Viewer, current_user
from app.web.staff_common import visible_post
from app.web.templating import render, request_locale, translate

router = APIRouter()


# Languages offered in the composer (ISO 639-1), by their own names.
POST_LANGUAGES = {
    "en": "English",
    "de": "Deutsch",
    "fr": "Français",
    "es": "Español",
    "it": "Italiano",
    "nl": "Nederlands",
    "pl": "Polski",
    "pt": "Português",
    "da": "Dansk",
    "sv": "Svenska",
    "nb": "Norsk bokmål",
    "fi": "Suomi",
    "cs": "Čeština",
    "tr": "Türkçe",
    "uk": "Українська",
    "ru": "Русский",
    "el": "Ελληνικά",
    "ar": "العربية",
    "ja": "日本語",
    "zh": "中文",
    "ko": "한국어",
}
VISIBILITIES = [v.value for v in Visibility]


def _default_language(request: Request) -> str:
    return supported(request_locale(request)) or "en"


async def _compose_page(
    request: Request,
    context: AppContext,
    viewer: Viewer,
    *,
    values: dict[str, str],
    reply_to: Post | None,
    error: str | None = None,
    preview: str | None = None,
    warning: str | None = None,
    status_code: int = 200,
    slots: list[MediaSlot] | None = None,
) -> Response:
    accounts = await StaffService(context).postable_accounts(viewer.user)
    reply_card = None
    if reply_to is not None:
        cards = await build_cards(context, [reply_to], viewer)
        reply_card = cards[0] if cards else None
    return render(
        request,
        "staff/compose.html",
        {
            "values": values,
            "accounts": accounts,
            "reply_card": reply_card,
            "error": error,
            "warning": warning,
            "preview": preview,
            "slots": slots if slots is not None else with_blank_slots([]),
            "accepted_types": accepted_types(),
            "descriptions_required": await MediaService(context).descriptions_required(),
            "preview_length": visible_length(values.get("text", "")) + len(values.get("spoiler_text", "")),
            "languages": POST_LANGUAGES,
            "visibilities": VISIBILITIES,
        },
        status_code=status_code,
    )


# From the widest audience to the narrowest.
AUDIENCE_ORDER = {"public": 0, "unlisted": 1, "followers": 2, "direct": 3}


@router.get("/compose")
async def compose_form(
    request: Request,
    reply_to: str | None = None,
    mention: str | None = None,
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    values = {
        "text": "",
        "spoiler_text": "",
        # The login's posting defaults (set from an app: update_credentials' source[…]).
        "visibility": viewer.user.default_privacy
        if viewer.user.default_privacy in VISIBILITIES
        else "public",
        "language": viewer.user.default_language or _default_language(request),
        "author": viewer.account.username,
        "in_reply_to": "",
    }
    target = None
    if reply_to:
        target = await visible_post(context, viewer, reply_to)
        author = await account_by_id(context, target.account_id)
        if author is not None and author.id != viewer.account.id:
            values["text"] = f"@{author.username}{'@' + author.domain if author.domain else ''} "
        values["in_reply_to"] = str(target.id)
        values["spoiler_text"] = target.summary or ""
        # A reply is never more public than what it answers.
        if AUDIENCE_ORDER.get(target.visibility, 0) > AUDIENCE_ORDER.get(values["visibility"], 0):
            values["visibility"] = target.visibility
    elif mention:
        values["text"] = f"@{mention.strip().lstrip('@')[:300]} "
    return await _compose_page(request, context, viewer, values=values, reply_to=target)


MEDIA_SLOTS = 4
# Flagged before publishing (a post or an edit) where descriptions are not required.
UNDESCRIBED_WARNING = N_(
    "Some attachments have no description. Readers who cannot see them learn nothing "
    "about them; add a description, or confirm that you publish without."
)


@dataclass
class MediaSlot:
    """One of the composer's four attachment places: a file chosen now, or one uploaded earlier in
    this form (kept when the form comes back after a preview or an error)."""

    index: int
    media: MediaAttachment | None = None
    description: str = ""
    focus: str = "0.00,0.00"


async def upload_slots(
    request: Request, context: AppContext, viewer: Viewer, owner: Account, form: FormData
) -> list[MediaSlot]:
    """Upload the files of this form (and re-read, with their new description and focal point,
    those of an earlier round or already on the post); a place whose "remove" box is ticked is
    left empty. MediaInvalid names the picture that was refused."""
    service = MediaService(context, viewer)
    slots = []
    for index in range(MEDIA_SLOTS):
        if form.get(f"remove_{index}"):
            continue
        slot = MediaSlot(
            index,
            description=str(form.get(f"description_{index}") or "")[: MAX_DESCRIPTION + 1],
            focus=str(form.get(f"focus_{index}") or "0.00,0.00")[:40],
        )
        upload = form.get(f"file_{index}")
        earlier = str(form.get(f"media_id_{index}") or "")
        try:
            if isinstance(upload, StarletteUpload) and upload.filename and (upload.size or 0) > 0:
                path = await _to_scratch(service, upload)
                slot.media = await service.upload(
                    owner, path, description=slot.description, focus=slot.focus, wait=True
                )
            elif (media_id := parse_id(earlier)) is not None:
                slot.media = await service.update(
                    owner, media_id, description=slot.description, focus=slot.focus
                )
        except MediaInvalid as error:
            message = translate(request, N_("Picture %(number)s: %(problem)s"))
            raise MediaInvalid(message % {"number": index + 1, "problem": error.message}) from None
        except NotFound:
            continue
        slots.append(slot)
    return slots


def slots_of(attachments: list[MediaAttachment]) -> list[MediaSlot]:
    """A post's attachments in their places, the free places after them."""
    return with_blank_slots([MediaSlot(index, media=media) for index, media in enumerate(attachments)])


def accepted_types() -> str:
    """The file inputs' `accept`: the types the media pipeline takes."""
    return ",".join(media_limits()["supported_mime_types"])


async def _to_scratch(service: MediaService, upload: StarletteUpload) -> Path:
    """The form parser's spooled copy, moved to the media scratch folder under a name of ours."""
    path = service.scratch_dir() / f"upload-{secrets.token_hex(16)}"

    def copy() -> None:
        upload.file.seek(0)
        with path.open("wb") as target:
            shutil.copyfileobj(upload.file, target, 1024 * 1024)

    await asyncio.to_thread(copy)
    return path


def with_blank_slots(slots: list[MediaSlot]) -> list[MediaSlot]:
    taken = {slot.index for slot in slots if slot.media is not None}
    return sorted(
        [slot for slot in slots if slot.media is not None]
        + [MediaSlot(index) for index in range(MEDIA_SLOTS) if index not in taken],
        key=lambda slot: slot.index,
    )


@router.post("/compose")
async def compose(
    request: Request,
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    # Read here rather than as Form() parameters: the files come as uploads in the same form.
    form = await request.form()

    def field(name: str, default: str = "") -> str:
        value = form.get(name)
        return value if isinstance(value, str) else default

    text = field("text")
    visibility = field("visibility", "public")
    author = field("author")
    in_reply_to = field("in_reply_to")
    action = field("action", "publish")
    values = {
        "text": text,
        "spoiler_text": field("spoiler_text"),
        "visibility": visibility,
        "language": field("language"),
        "author": author,
        "in_reply_to": in_reply_to,
        "sensitive": "1" if field("sensitive") else "",
    }
    slots: list[MediaSlot] = []

    async def refused(
        message: str, status_code: int, headers: dict[str, str] | None = None, *, warning: bool = False
    ) -> Response:
        # Whatever is refused, the form comes back with what was typed in it and what was uploaded.
        page = await _compose_page(
            request,
            context,
            viewer,
            values=values,
            reply_to=reply_to,
            error=None if warning else message,
            warning=message if warning else None,
            status_code=status_code,
            slots=with_blank_slots(slots),
        )
        page.headers.update(headers or {})
        return page

    reply_to = None
    if in_reply_to:
        try:
            reply_to = await visible_post(context, viewer, in_reply_to)
        except NotFound:
            values["in_reply_to"] = ""
            return await refused(
                translate(request, N_("The post you are replying to does not exist or was deleted.")), 404
            )
    accounts = await StaffService(context).postable_accounts(viewer.user)
    chosen = next((account for account in accounts if account.username == author), None)
    if chosen is None:
        return await refused(translate(request, N_("You may not post as this account.")), 403)
    if visibility not in VISIBILITIES:
        return await refused(translate(request, N_("Choose who can see the post.")), 400)
    try:
        slots = await upload_slots(request, context, viewer, chosen, form)
    except MediaInvalid as error:
        return await refused(error.message, 422)
    attached = [slot.media for slot in slots if slot.media is not None]
    if action == "preview":
        preview = render_plain_text(text.strip(), mention_hrefs={}, hashtag_href=context.urls.tag)
        return await _compose_page(
            request,
            context,
            viewer,
            values=values,
            reply_to=reply_to,
            preview=preview,
            slots=with_blank_slots(slots),
        )
    undescribed = [media for media in attached if not media.description]
    required = await MediaService(context).descriptions_required()
    # Where descriptions are required, PostingService refuses the post; elsewhere the author confirms.
    if undescribed and not required and not field("without_descriptions"):
        # Flagged before posting: the author confirms, or adds what is missing.
        return await refused(translate(request, UNDESCRIBED_WARNING), 400, warning=True)
    try:
        post = await PostingService(context, viewer).create(
            chosen,
            text,
            visibility=visibility,
            spoiler_text=values["spoiler_text"] or None,
            sensitive=bool(values["sensitive"]),
            language=values["language"] or None,
            in_reply_to=str(reply_to.id) if reply_to else None,
            media_ids=[media.id for media in attached],
        )
    except RateLimited as error:
        return await refused(
            translate(request, N_("Too many posts from this account. Wait a while, then try again.")),
            429,
            error.headers,
        )
    except PostingError as error:
        return await refused(str(error), 400)
    except MediaInvalid as error:
        return await refused(error.message, 422)
    return redirect(f"/posts/{post.id}", "posted")
