"""What apps read at login: /api/v1/instance, /api/v2/instance, and the small lists they ask for
next (custom emojis, preferences, announcements), empty where Herold has none yet.

The version: apps decide features from it. Mastodon.py cuts at the first space and refuses
endpoints newer than the number; Ice Cubes reads the first three characters as a number (editing
from 3.5, filters from 4, grouped notifications from 4.3); `api_versions.mastodon` 7 is what 4.5
reports. "4.5.0 (compatible; Herold X)" satisfies them all, the way GoToSocial and Takahē name
themselves; NodeInfo keeps the honest software name (so Phanpy's NodeInfo-based checks see Herold).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse

from app import __version__
from app.api.auth import ApiCaller, scoped
from app.api.entities.account import account_entity
from app.context import AppContext
from app.dependencies import get_context
from app.services.account_lookup import account_by_acct
from app.services.errors import NotFound
from app.services.instance import InstanceService
from app.services.media import MAX_ATTACHMENTS, media_limits
from app.services.viewer import Viewer
from app.services.web_push import vapid_public_key

router = APIRouter()

MASTODON_VERSION = "4.5.0"
MASTODON_API_VERSION = 7


def version_string() -> str:
    return f"{MASTODON_VERSION} (compatible; Herold {__version__})"


async def _contact(context: AppContext, username: str) -> dict[str, Any] | None:
    if not username:
        return None
    try:
        return account_entity(context, await account_by_acct(context, Viewer.nobody(), username))
    except NotFound:
        return None


def _configuration(context: AppContext, vapid_key: str) -> dict[str, Any]:
    settings = context.settings
    return {
        "urls": {"streaming": f"{'wss' if settings.https else 'ws'}://{settings.web_domain}", "status": None},
        "vapid": {"public_key": vapid_key},
        "accounts": {"max_featured_tags": 10, "max_pinned_statuses": 5},
        "statuses": {
            "max_characters": settings.max_post_chars,
            "max_media_attachments": MAX_ATTACHMENTS,
            "characters_reserved_per_url": 23,
        },
        "media_attachments": media_limits(),
        "polls": {
            "max_options": 4,
            "max_characters_per_option": 50,
            "min_expiration": 300,
            "max_expiration": 2_629_746,
        },
        "translation": {"enabled": False},
        "timelines_access": {
            "live_feeds": {"local": "public", "remote": "public"},
            "hashtag_feeds": {"local": "public", "remote": "public"},
            "trending_link_feeds": {"local": "public", "remote": "public"},
        },
        "limited_federation": settings.limited_federation,
    }


@router.get("/api/v2/instance")
async def instance_v2(context: AppContext = Depends(get_context)) -> JSONResponse:
    settings = context.settings
    service = InstanceService(context)
    about = await service.about()
    usage = await service.usage()
    return JSONResponse(
        {
            "domain": settings.local_domain,
            "title": about.name,
            "version": version_string(),
            "description": about.description,
            "usage": {"users": {"active_month": usage.users_active_month}},
            "thumbnail": {"url": f"{settings.base_url}/static/default-header.png"},
            "icon": [],
            "languages": ["en", "de"],
            "configuration": _configuration(context, await vapid_public_key(context)),
            # Closed by default: accounts are made by administrators (REGISTRATIONS, see the README).
            "registrations": {
                "enabled": settings.registrations != "closed",
                "approval_required": settings.registrations == "approval",
                "message": None,
                "url": None,
            },
            "api_versions": {"mastodon": MASTODON_API_VERSION},
            "contact": {
                "email": about.contact_email,
                "account": await _contact(context, about.contact_account),
            },
            "rules": [
                {"id": str(index), "text": rule, "hint": ""} for index, rule in enumerate(about.rules, 1)
            ],
        }
    )


@router.get("/api/v1/instance")
async def instance_v1(context: AppContext = Depends(get_context)) -> JSONResponse:
    settings = context.settings
    service = InstanceService(context)
    about = await service.about()
    usage = await service.usage()
    configuration = _configuration(context, await vapid_public_key(context))
    return JSONResponse(
        {
            # toot reads `uri` as the instance's domain.
            "uri": settings.local_domain,
            "title": about.name,
            "short_description": about.description,
            "description": about.description,
            "email": about.contact_email,
            "version": version_string(),
            "urls": {"streaming_api": configuration["urls"]["streaming"]},
            "stats": {"user_count": usage.users_total, "status_count": usage.local_posts, "domain_count": 0},
            "thumbnail": f"{settings.base_url}/static/default-header.png",
            "languages": ["en", "de"],
            "registrations": settings.registrations != "closed",
            "approval_required": settings.registrations == "approval",
            "invites_enabled": False,
            "configuration": {
                "accounts": configuration["accounts"],
                "statuses": configuration["statuses"],
                "media_attachments": configuration["media_attachments"],
                "polls": configuration["polls"],
            },
            "contact_account": await _contact(context, about.contact_account),
            "rules": [
                {"id": str(index), "text": rule, "hint": ""} for index, rule in enumerate(about.rules, 1)
            ],
        }
    )


@router.get("/api/v1/instance/rules")
async def rules(context: AppContext = Depends(get_context)) -> JSONResponse:
    about = await InstanceService(context).about()
    return JSONResponse(
        [{"id": str(index), "text": rule, "hint": ""} for index, rule in enumerate(about.rules, 1)]
    )


@router.get("/api/v1/custom_emojis")
async def custom_emojis() -> JSONResponse:
    return JSONResponse([])


@router.get("/api/v1/preferences")
async def preferences(
    caller: ApiCaller = Depends(scoped("read", "read:accounts", user=True)),
) -> JSONResponse:
    locale = caller.viewer.user.locale if caller.viewer.user else None
    return JSONResponse(
        {
            "posting:default:visibility": "public",
            "posting:default:sensitive": False,
            "posting:default:language": locale,
            "posting:default:quote_policy": "public",
            "reading:expand:media": "default",
            "reading:expand:spoilers": False,
            "reading:autoplay:gifs": False,
        }
    )


__all__ = ["MASTODON_API_VERSION", "router", "version_string"]
