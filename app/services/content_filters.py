"""Content filters (Mastodon's filters v2): what an account keeps out of its timelines.

A filter names contexts (home, notifications, public, thread, account), an action and what it
matches: keywords (case-insensitive; `whole_word` keeps "cat" from matching "category", with
Mastodon's rule that a boundary applies only on a side where the keyword starts or ends with a
word character) and single posts. The read model asks `ActiveFilters.match` for each post of a
page it loads in a context: `hide` removes the post from the page, `warn` (and `blur`) keep it
with the matches, which the API shows as the status's `filtered`. An account's own posts are
never filtered, and an expired filter no longer applies; both as on Mastodon.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.context import AppContext
from app.models import (
    ContentFilter,
    FilterAction,
    FilterContext,
    FilterKeyword,
    FilterStatus,
    MediaAttachment,
    Post,
)
from app.models.base import utcnow
from app.services import events
from app.services.errors import Invalid, NotFound
from app.services.viewer import Viewer

CONTEXTS = tuple(context.value for context in FilterContext)
ACTIONS = tuple(action.value for action in FilterAction)
MAX_FILTERS = 100
MAX_KEYWORDS = 100
MAX_TITLE = 255
MAX_KEYWORD = 255
_TAGS = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class FilterMatch:
    """Why a post matched a filter: the keywords found, or that the post itself is filtered."""

    filter: ContentFilter
    keyword_matches: tuple[str, ...] | None = None
    status_matches: tuple[str, ...] | None = None

    @property
    def hides(self) -> bool:
        return self.filter.action == FilterAction.HIDE


@dataclass
class FilterDetails:
    """A filter with its keywords and posts, as the API shows it."""

    filter: ContentFilter
    keywords: list[FilterKeyword] = field(default_factory=list)
    statuses: list[FilterStatus] = field(default_factory=list)


@dataclass(frozen=True)
class KeywordInput:
    keyword: str
    whole_word: bool = True
    # Updating: the keyword changed (None: a new one), or removed with `destroy`.
    id: int | None = None
    destroy: bool = False


def keyword_pattern(keyword: str, whole_word: bool) -> str:
    escaped = re.escape(keyword)
    if not whole_word:
        return escaped
    start = r"\b" if re.match(r"\w", keyword) else ""
    end = r"\b" if re.search(r"\w$", keyword) else ""
    return f"{start}{escaped}{end}"


def searchable_text(post: Post, media: Sequence[MediaAttachment] = ()) -> str:
    """What keywords are looked for in: the content warning, the text, the media descriptions."""
    text = html.unescape(_TAGS.sub(" ", post.content_html or ""))
    parts = [post.summary or "", text, *(attachment.description or "" for attachment in media)]
    return "\n\n".join(part for part in parts if part)


class ActiveFilters:
    """An account's filters for one context, compiled once per page."""

    def __init__(self, details: Sequence[FilterDetails]) -> None:
        self._keywords: list[tuple[ContentFilter, re.Pattern[str], list[str]]] = []
        self._posts: dict[int, list[tuple[ContentFilter, int]]] = {}
        for found in details:
            if found.keywords:
                pattern = re.compile(
                    "|".join(f"({keyword_pattern(k.keyword, k.whole_word)})" for k in found.keywords),
                    re.IGNORECASE,
                )
                self._keywords.append((found.filter, pattern, [k.keyword for k in found.keywords]))
            for status in found.statuses:
                self._posts.setdefault(status.post_id, []).append((found.filter, status.id))

    def __bool__(self) -> bool:
        return bool(self._keywords or self._posts)

    def match(self, post: Post, media: Sequence[MediaAttachment] = ()) -> list[FilterMatch]:
        matches: dict[int, FilterMatch] = {}
        if self._keywords:
            text = searchable_text(post, media)
            for content_filter, pattern, keywords in self._keywords:
                found = pattern.search(text)
                if found is None:
                    continue
                hit = {keywords[index] for index, group in enumerate(found.groups()) if group is not None}
                # Every keyword of the filter that occurs anywhere, not only the first match.
                for match in pattern.finditer(text):
                    hit |= {
                        keywords[index] for index, group in enumerate(match.groups()) if group is not None
                    }
                matches[content_filter.id] = FilterMatch(content_filter, keyword_matches=tuple(sorted(hit)))
        for content_filter, status_id in self._posts.get(post.id, []):
            earlier = matches.get(content_filter.id)
            matches[content_filter.id] = FilterMatch(
                content_filter,
                keyword_matches=earlier.keyword_matches if earlier else None,
                status_matches=(str(post.id),),
            )
            del status_id
        return list(matches.values())


async def kept_active_filters(
    app: AppContext, session: AsyncSession, account_id: int, context: str, *, fresh: bool
) -> ActiveFilters:
    """`active_filters`, kept in the process (app.services.kept_filters) when `fresh`: the caller
    has taken in the other processes' events just before."""
    kept = app.filters
    if fresh:
        found: ActiveFilters | None = kept.get((account_id, context))
        if found is not None:
            return found
    ticket = kept.ticket()
    chosen = await _unexpired(session, account_id, context)
    compiled = ActiveFilters(await _details(session, chosen) if chosen else [])
    if fresh:
        ends = [row.expires_at for row in chosen if row.expires_at is not None]
        kept.put((account_id, context), compiled, min(ends) if ends else None, ticket)
    return compiled


async def active_filters(session: AsyncSession, account_id: int, context: str) -> ActiveFilters:
    """The account's unexpired filters for `context`, with their keywords and posts (three queries)."""
    chosen = await _unexpired(session, account_id, context)
    if not chosen:
        return ActiveFilters([])
    return ActiveFilters(await _details(session, chosen))


async def _unexpired(session: AsyncSession, account_id: int, context: str) -> list[ContentFilter]:
    """The account's filters for `context` that have not expired."""
    rows = (
        await session.scalars(
            select(ContentFilter).where(
                col(ContentFilter.account_id) == account_id,
                or_(col(ContentFilter.expires_at).is_(None), col(ContentFilter.expires_at) > utcnow()),
            )
        )
    ).all()
    return [row for row in rows if context in row.contexts]


async def _details(session: AsyncSession, filters: Sequence[ContentFilter]) -> list[FilterDetails]:
    ids = [row.id for row in filters]
    keywords = (
        await session.scalars(
            select(FilterKeyword).where(col(FilterKeyword.filter_id).in_(ids)).order_by(col(FilterKeyword.id))
        )
    ).all()
    statuses = (
        await session.scalars(
            select(FilterStatus).where(col(FilterStatus.filter_id).in_(ids)).order_by(col(FilterStatus.id))
        )
    ).all()
    details = {row.id: FilterDetails(row) for row in filters}
    for keyword in keywords:
        details[keyword.filter_id].keywords.append(keyword)
    for status in statuses:
        details[status.filter_id].statuses.append(status)
    return [details[row.id] for row in filters]


def _title(value: str | None) -> str:
    title = (value or "").strip()
    if not title:
        raise Invalid("title: must not be blank")
    if len(title) > MAX_TITLE:
        raise Invalid(f"title: at most {MAX_TITLE} characters")
    return title


def _contexts(values: Iterable[str]) -> list[str]:
    chosen = list(dict.fromkeys(values))
    if not chosen:
        raise Invalid("context: name at least one of " + ", ".join(CONTEXTS))
    for value in chosen:
        if value not in CONTEXTS:
            raise Invalid(f"context: unknown context {value[:40]!r}")
    return chosen


def _action(value: str | None) -> str:
    if value is None or value == "":
        return FilterAction.WARN
    if value not in ACTIONS:
        raise Invalid("filter_action: must be warn, hide or blur")
    return value


def _expiry(expires_in: int | None) -> datetime | None:
    if expires_in is None:
        return None
    if expires_in <= 0 or expires_in > 10 * 365 * 24 * 3600:
        raise Invalid("expires_in: must be a positive number of seconds")
    return utcnow() + timedelta(seconds=expires_in)


def _keyword(value: str) -> str:
    keyword = value.strip()
    if not keyword:
        raise Invalid("keyword: must not be blank")
    if len(keyword) > MAX_KEYWORD:
        raise Invalid(f"keyword: at most {MAX_KEYWORD} characters")
    return keyword


# Leaving a field out of an update keeps it; this marks "not given" apart from None (no expiry).
KEEP: object = object()


class FilterService:
    """The viewer's own filters (another account's are not found)."""

    def __init__(self, context: AppContext, viewer: Viewer) -> None:
        self.context = context
        self.viewer = viewer

    def _owner_id(self) -> int:
        if self.viewer.account is None:
            raise NotFound("Record not found")
        return self.viewer.account.id

    def _changed(self, session: AsyncSession) -> None:
        """Every write of the owner's filters: their apps hear `filters_changed` once it commits."""
        events.announce(session, [events.FiltersChanged(self._owner_id())])

    async def all(self) -> list[FilterDetails]:
        owner = self._owner_id()
        async with self.context.sessions() as session:
            rows = (
                await session.scalars(
                    select(ContentFilter)
                    .where(col(ContentFilter.account_id) == owner)
                    .order_by(col(ContentFilter.id))
                )
            ).all()
            return await _details(session, rows) if rows else []

    async def get(self, filter_id: int) -> FilterDetails:
        owner = self._owner_id()
        async with self.context.sessions() as session:
            row = await session.get(ContentFilter, filter_id)
            if row is None or row.account_id != owner:
                raise NotFound("Record not found")
            return (await _details(session, [row]))[0]

    async def create(
        self,
        *,
        title: str | None,
        contexts: Iterable[str],
        action: str | None,
        expires_in: int | None,
        keywords: Sequence[KeywordInput] = (),
    ) -> FilterDetails:
        owner = self._owner_id()
        row = ContentFilter(
            account_id=owner,
            title=_title(title),
            contexts=_contexts(contexts),
            action=_action(action),
            expires_at=_expiry(expires_in),
        )
        if len(keywords) > MAX_KEYWORDS:
            raise Invalid(f"keywords_attributes: at most {MAX_KEYWORDS}")
        new_keywords = [
            FilterKeyword(filter_id=row.id, keyword=_keyword(k.keyword), whole_word=k.whole_word)
            for k in keywords
            if not k.destroy
        ]
        async with self.context.sessions() as session:
            count = len(
                (
                    await session.scalars(
                        select(ContentFilter.id).where(col(ContentFilter.account_id) == owner)
                    )
                ).all()
            )
            if count >= MAX_FILTERS:
                raise Invalid(f"at most {MAX_FILTERS} filters")
            session.add(row)
            await session.flush()
            session.add_all(new_keywords)
            self._changed(session)
            await session.commit()
        return await self.get(row.id)

    async def update(
        self,
        filter_id: int,
        *,
        title: str | None = None,
        contexts: Sequence[str] | None = None,
        action: str | None = None,
        expires_in: int | object | None = KEEP,
        keywords: Sequence[KeywordInput] = (),
    ) -> FilterDetails:
        current = await self.get(filter_id)
        async with self.context.sessions() as session:
            row = await session.get(ContentFilter, current.filter.id)
            assert row is not None
            if title is not None:
                row.title = _title(title)
            if contexts is not None:
                row.contexts = _contexts(contexts)
            if action is not None:
                row.action = _action(action)
            if expires_in is not KEEP:
                row.expires_at = _expiry(expires_in if isinstance(expires_in, int) else None)
            session.add(row)
            own_keywords = {keyword.id for keyword in current.keywords}
            for change in keywords:
                if change.id is not None and change.id not in own_keywords:
                    raise NotFound("Record not found")
                if change.id is None:
                    if not change.destroy:
                        session.add(
                            FilterKeyword(
                                filter_id=row.id,
                                keyword=_keyword(change.keyword),
                                whole_word=change.whole_word,
                            )
                        )
                    continue
                stored = await session.get(FilterKeyword, change.id)
                assert stored is not None
                if change.destroy:
                    await session.delete(stored)
                else:
                    stored.keyword = _keyword(change.keyword) if change.keyword else stored.keyword
                    stored.whole_word = change.whole_word
                    session.add(stored)
            self._changed(session)
            await session.commit()
        return await self.get(filter_id)

    async def delete(self, filter_id: int) -> None:
        current = await self.get(filter_id)
        async with self.context.sessions() as session:
            await session.execute(
                delete(FilterKeyword).where(col(FilterKeyword.filter_id) == current.filter.id)
            )
            await session.execute(
                delete(FilterStatus).where(col(FilterStatus.filter_id) == current.filter.id)
            )
            await session.execute(delete(ContentFilter).where(col(ContentFilter.id) == current.filter.id))
            self._changed(session)
            await session.commit()

    # Keywords and posts one at a time (the API's /keywords and /statuses sub-resources) ------

    async def add_keyword(self, filter_id: int, keyword: str, whole_word: bool) -> FilterKeyword:
        current = await self.get(filter_id)
        if len(current.keywords) >= MAX_KEYWORDS:
            raise Invalid(f"keyword: at most {MAX_KEYWORDS} per filter")
        row = FilterKeyword(filter_id=current.filter.id, keyword=_keyword(keyword), whole_word=whole_word)
        async with self.context.sessions() as session:
            session.add(row)
            self._changed(session)
            await session.commit()
            await session.refresh(row)
        return row

    async def keyword(self, keyword_id: int) -> tuple[FilterKeyword, ContentFilter]:
        owner = self._owner_id()
        async with self.context.sessions() as session:
            row = await session.get(FilterKeyword, keyword_id)
            parent = await session.get(ContentFilter, row.filter_id) if row is not None else None
        if row is None or parent is None or parent.account_id != owner:
            raise NotFound("Record not found")
        return row, parent

    async def update_keyword(
        self, keyword_id: int, keyword: str | None, whole_word: bool | None
    ) -> FilterKeyword:
        row, _ = await self.keyword(keyword_id)
        async with self.context.sessions() as session:
            stored = await session.get(FilterKeyword, row.id)
            assert stored is not None
            if keyword is not None:
                stored.keyword = _keyword(keyword)
            if whole_word is not None:
                stored.whole_word = whole_word
            session.add(stored)
            self._changed(session)
            await session.commit()
            await session.refresh(stored)
            return stored

    async def delete_keyword(self, keyword_id: int) -> None:
        row, _ = await self.keyword(keyword_id)
        async with self.context.sessions() as session:
            await session.execute(delete(FilterKeyword).where(col(FilterKeyword.id) == row.id))
            self._changed(session)
            await session.commit()

    async def add_status(self, filter_id: int, post: Post) -> FilterStatus:
        """`post` is one the viewer may see (the caller looked it up with the visibility rule)."""
        current = await self.get(filter_id)
        if any(status.post_id == post.id for status in current.statuses):
            raise Invalid("status_id: this post is in the filter already")
        row = FilterStatus(filter_id=current.filter.id, post_id=post.id)
        async with self.context.sessions() as session:
            session.add(row)
            self._changed(session)
            await session.commit()
            await session.refresh(row)
        return row

    async def status(self, status_id: int) -> FilterStatus:
        owner = self._owner_id()
        async with self.context.sessions() as session:
            row = await session.get(FilterStatus, status_id)
            parent = await session.get(ContentFilter, row.filter_id) if row is not None else None
        if row is None or parent is None or parent.account_id != owner:
            raise NotFound("Record not found")
        return row

    async def delete_status(self, status_id: int) -> None:
        row = await self.status(status_id)
        async with self.context.sessions() as session:
            await session.execute(delete(FilterStatus).where(col(FilterStatus.id) == row.id))
            self._changed(session)
            await session.commit()


__all__ = [
    "ACTIONS",
    "CONTEXTS",
    "KEEP",
    "ActiveFilters",
    "FilterDetails",
    "FilterMatch",
    "FilterService",
    "KeywordInput",
    "active_filters",
    "keyword_pattern",
    "searchable_text",
]
