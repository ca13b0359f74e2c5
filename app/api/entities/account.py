"""Mastodon's Account entity (and CredentialAccount with `source`, for the account's own token)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.api.entities.common import api_id, api_time
from app.api.entities.custom_emoji import custom_emoji_entity
from app.context import AppContext
from app.models import Account, ActorType
from app.services.html_sanitizer import html_to_plain_text
from app.services.profile_settings import POSTING_PRIVACY
from app.services.read_model import accounts_by_id
from app.services.remote_emojis import profile_emojis

# Herold's audiences → Mastodon's names for them.
PRIVACY_NAMES = {herold: mastodon for mastodon, herold in POSTING_PRIVACY.items()}


def _picture(context: AppContext, url: str | None, default: str) -> str:
    # Never null: Ivory and Ice Cubes fail on a missing avatar; serve our default picture.
    return url or f"{context.settings.base_url}/static/{default}"


# What context.renderings keeps of an account: its entity (dropped by AccountChanged and the other
# events that change what it shows; see app.services.renderings).
ACCOUNT_RENDERING = "api-account"


async def kept_account_entities(
    context: AppContext, session: AsyncSession, account_ids: Iterable[int]
) -> dict[int, dict[str, Any]]:
    """The entities of these accounts: those kept, and the others read in one query and kept.
    Shared by every page that shows them: never change one."""
    store = context.renderings.accounts
    # Taken before the rows are read: an entity made from a row that changed meanwhile is not kept.
    ticket = store.ticket()
    found: dict[int, dict[str, Any]] = {}
    missing = set()
    for account_id in account_ids:
        kept = store.get(ACCOUNT_RENDERING, account_id)
        if kept is None:
            missing.add(account_id)
        else:
            found[account_id] = kept
    if missing:
        for account in (await accounts_by_id(session, missing)).values():
            found[account.id] = account_entity(context, account)
            store.put(ACCOUNT_RENDERING, account.id, found[account.id], ticket)
    return found


async def account_entities(context: AppContext, account_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """kept_account_entities in a session of its own (it connects only when one is not kept),
    after taking in what other processes announced; an account without a row is left out."""
    if context.channel is not None and len(context.renderings.accounts):
        await context.channel.catch_up()
    async with context.sessions() as session:
        return await kept_account_entities(context, session, account_ids)


def kept_account_entity(context: AppContext, account: Account) -> dict[str, Any]:
    """The account's entity: the kept one when there is one (as valid as the row at hand), or made
    from the row. Shared: never change it."""
    kept: dict[str, Any] | None = context.renderings.accounts.get(ACCOUNT_RENDERING, account.id)
    return kept if kept is not None else account_entity(context, account)


def account_entity(context: AppContext, account: Account) -> dict[str, Any]:
    avatar = _picture(context, account.avatar_shown, "default-avatar.png")
    header = _picture(context, account.header_shown, "default-header.png")
    return {
        "id": api_id(account.id),
        "username": account.username,
        # Bare for local accounts, as Mastodon sends it.
        "acct": account.acct,
        "display_name": account.display_name,
        "locked": account.manually_approves_followers,
        "bot": account.actor_type in (ActorType.SERVICE, ActorType.APPLICATION),
        "discoverable": account.discoverable,
        "indexable": account.indexable,
        "group": account.actor_type == ActorType.GROUP,
        # Mastodon reports the day an account was made, at midnight.
        "created_at": api_time(account.created_at.replace(hour=0, minute=0, second=0, microsecond=0)),
        "note": account.summary_html,
        "url": account.url or account.uri,
        "uri": account.uri,
        "avatar": avatar,
        "avatar_static": avatar,
        "header": header,
        "header_static": header,
        "followers_count": account.followers_count,
        "following_count": account.following_count,
        "statuses_count": account.posts_count,
        "last_status_at": account.last_post_at.date().isoformat() if account.last_post_at else None,
        "hide_collections": False,
        "noindex": not account.indexable,
        "emojis": [custom_emoji_entity(emoji) for emoji in profile_emojis(account)],
        "roles": [],
        "fields": [
            {
                "name": str(item.get("name", "")),
                "value": str(item.get("value", "")),
                "verified_at": item.get("verified_at"),
            }
            for item in account.fields
        ],
        "limited": account.silenced_at is not None,
        **({"suspended": True} if account.suspended_at is not None else {}),
    }


@dataclass(frozen=True)
class CredentialSource:
    """What `source` tells an app about the login behind a token: its posting defaults and how
    many follow requests wait."""

    privacy: str = "public"
    sensitive: bool = False
    language: str | None = None
    follow_requests_count: int = 0


def credential_account_entity(
    context: AppContext, account: Account, source: CredentialSource
) -> dict[str, Any]:
    """The account a token acts as, with `source` (what its settings form edits)."""
    entity = account_entity(context, account)
    entity["source"] = {
        "privacy": PRIVACY_NAMES.get(source.privacy, "public"),
        "sensitive": source.sensitive,
        "language": source.language,
        "note": html_to_plain_text(account.summary_html or ""),
        "fields": [
            {
                "name": field["name"],
                "value": html_to_plain_text(field["value"]),
                "verified_at": field["verified_at"],
            }
            for field in entity["fields"]
        ],
        "follow_requests_count": source.follow_requests_count,
        "hide_collections": False,
        "discoverable": account.discoverable,
        "indexable": account.indexable,
        "attribution_domains": [],
    }
    entity["role"] = {"id": "-99", "name": "", "permissions": "0", "color": "", "highlighted": False}
    return entity


__all__ = [
    "ACCOUNT_RENDERING",
    "CredentialSource",
    "account_entities",
    "account_entity",
    "credential_account_entity",
    "kept_account_entities",
    "kept_account_entity",
]
