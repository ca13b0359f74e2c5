"""Mastodon's Tag, FeaturedTag, List, Filter (v1 and v2), FilterKeyword, FilterStatus and
FilterResult entities."""

from __future__ import annotations

from typing import Any

from app.api.entities.common import api_id, api_time
from app.context import AppContext
from app.models import ContentFilter, FilterAction, FilterKeyword, FilterStatus, Tag, UserList
from app.services.content_filters import FilterDetails, FilterMatch
from app.services.hashtags import FeaturedTagView


def tag_entity(context: AppContext, tag: Tag, *, following: bool | None = None) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "id": api_id(tag.id),
        "name": tag.name,
        "url": context.urls.tag(tag.name),
        # Herold keeps no daily usage counts yet: an honest empty history.
        "history": [],
    }
    if following is not None:
        entity["following"] = following
    return entity


def featured_tag_entity(context: AppContext, featured: FeaturedTagView) -> dict[str, Any]:
    return {
        "id": api_id(featured.featured.id),
        "name": featured.name,
        "url": context.urls.tag(featured.name),
        "statuses_count": str(featured.posts_count),
        "last_status_at": featured.last_post_at.date().isoformat() if featured.last_post_at else None,
    }


def list_entity(found: UserList) -> dict[str, Any]:
    return {
        "id": api_id(found.id),
        "title": found.title,
        "replies_policy": found.replies_policy,
        "exclusive": found.exclusive,
    }


def keyword_entity(keyword: FilterKeyword) -> dict[str, Any]:
    return {"id": api_id(keyword.id), "keyword": keyword.keyword, "whole_word": keyword.whole_word}


def filter_status_entity(status: FilterStatus) -> dict[str, Any]:
    return {"id": api_id(status.id), "status_id": api_id(status.post_id)}


def _filter_fields(row: ContentFilter) -> dict[str, Any]:
    return {
        "id": api_id(row.id),
        "title": row.title,
        "context": list(row.contexts),
        "expires_at": api_time(row.expires_at),
        "filter_action": row.action,
    }


def filter_entity(details: FilterDetails) -> dict[str, Any]:
    return {
        **_filter_fields(details.filter),
        "keywords": [keyword_entity(keyword) for keyword in details.keywords],
        "statuses": [filter_status_entity(status) for status in details.statuses],
    }


def filter_result_entity(match: FilterMatch) -> dict[str, Any]:
    # Mastodon leaves the filter's keywords and statuses out of a result.
    return {
        "filter": _filter_fields(match.filter),
        "keyword_matches": list(match.keyword_matches) if match.keyword_matches is not None else None,
        "status_matches": list(match.status_matches) if match.status_matches is not None else None,
    }


def filter_v1_entity(keyword: FilterKeyword, row: ContentFilter) -> dict[str, Any]:
    """The v1 view of a v2 filter: one entry per keyword, named by the keyword's id."""
    return {
        "id": api_id(keyword.id),
        "phrase": keyword.keyword,
        "context": list(row.contexts),
        "whole_word": keyword.whole_word,
        "expires_at": api_time(row.expires_at),
        "irreversible": row.action == FilterAction.HIDE,
    }


__all__ = [
    "featured_tag_entity",
    "filter_entity",
    "filter_result_entity",
    "filter_status_entity",
    "filter_v1_entity",
    "keyword_entity",
    "list_entity",
    "tag_entity",
]
