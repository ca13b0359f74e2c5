"""Writing a post: the composer, its preview, and publishing as the account chosen."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from app.context import AppContext
from app.dependencies import get_context
from app.http_errors import NotFound
from app.i18n import N_, supported
from app.models import Post, Visibility
from app.services.errors import RateLimited
from app.services.posting import PostingError, PostingService, visible_length
from app.services.staff import StaffService
from app.services.text_format import render_plain_text
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
    status_code: int = 200,
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
            "preview": preview,
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


@router.post("/compose")
async def compose(
    request: Request,
    text: str = Form(""),
    spoiler_text: str = Form(""),
    visibility: str = Form("public"),
    language: str = Form(""),
    author: str = Form(""),
    in_reply_to: str = Form(""),
    action: str = Form("publish"),
    context: AppContext = Depends(get_context),
    viewer: Viewer = Depends(current_user),
) -> Response:
    values = {
        "text": text,
        "spoiler_text": spoiler_text,
        "visibility": visibility,
        "language": language,
        "author": author,
        "in_reply_to": in_reply_to,
    }

    async def refused(message: str, status_code: int, headers: dict[str, str] | None = None) -> Response:
        # Whatever is refused, the form comes back with what was typed in it.
        page = await _compose_page(
            request, context, viewer, values=values, reply_to=reply_to, error=message, status_code=status_code
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
    if action == "preview":
        preview = render_plain_text(text.strip(), mention_hrefs={}, hashtag_href=context.urls.tag)
        return await _compose_page(
            request, context, viewer, values=values, reply_to=reply_to, preview=preview
        )
    try:
        post = await PostingService(context, viewer).create(
            chosen,
            text,
            visibility=visibility,
            spoiler_text=spoiler_text or None,
            language=language or None,
            in_reply_to=str(reply_to.id) if reply_to else None,
        )
    except RateLimited as error:
        return await refused(
            translate(request, N_("Too many posts from this account. Wait a while, then try again.")),
            429,
            error.headers,
        )
    except PostingError as error:
        return await refused(str(error), 400)
    return redirect(f"/posts/{post.id}", "posted")
