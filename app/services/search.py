"""Search: accounts (known here, or resolved from elsewhere), posts and hashtags.

One service for the web search page and the client API's /api/v2/search: both resolve a remote
`@user@domain` or URL through the same guarded resolver (WebFinger and actor fetches go through
the one SSRF policy of the fetcher), and both show only what the viewer may see at the found
thing's own URL (the visibility rule; deleted and suspended accounts are never found).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import func
from sqlmodel import col, select

from app.activitypub.remote_objects import RemotePostError, fetch_remote_post
from app.activitypub.resolver import ActorResolver, ResolveError
from app.context import AppContext
from app.models import Account, Follow, FollowState, Post, Tag
from app.services.accounts import INSTANCE_ACTOR_USERNAME
from app.services.errors import Invalid
from app.services.post_access import PostAccess
from app.services.viewer import Viewer
from app.services.visibility import can_see, visible_to

log = logging.getLogger(__name__)

MAX_QUERY = 2048
MAX_LIMIT = 40


@dataclass
class SearchResults:
    accounts: list[Account] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)
    tags: list[Tag] = field(default_factory=list)


@dataclass(frozen=True)
class SearchRequest:
    query: str
    # None: every kind; otherwise "accounts", "statuses" or "hashtags" (Mastodon's names).
    kind: str | None = None
    limit: int = 20
    offset: int = 0
    resolve: bool = False
    following: bool = False
    account_id: int | None = None
    max_id: int | None = None
    min_id: int | None = None

    def wants(self, kind: str) -> bool:
        return self.kind is None or self.kind == kind


class SearchError(Invalid):
    """A remote account or post could not be looked up; the message says why."""


def looks_remote(query: str) -> bool:
    """A URL, or a handle naming a domain (`@user@domain`, `user@domain`)."""
    return query.startswith(("http://", "https://")) or query.lstrip("@").count("@") == 1


class SearchService:
    def __init__(self, context: AppContext, viewer: Viewer) -> None:
        self.context = context
        self.viewer = viewer

    async def resolve_account(self, handle_or_url: str) -> Account:
        """A remote (or local) account by handle or URL, fetched when not known or stale.

        ResolveError passes through (the web page words its message); other trouble reaching a
        server is a SearchError, not a crash: the input is the user's."""
        try:
            return await ActorResolver(self.context).resolve(handle_or_url)
        except ResolveError:
            raise
        except Exception as unexpected:
            log.info("resolving %r failed: %s", handle_or_url, unexpected)
            raise SearchError(f"{handle_or_url} could not be looked up right now") from None

    async def local_accounts(self, query: str, limit: int = 20, offset: int = 0) -> list[Account]:
        """Accounts of this server whose name or display name contains `query`."""
        return await self._matching_accounts(query, limit=limit, offset=offset, local_only=True)

    async def search(self, request: SearchRequest) -> SearchResults:
        query = request.query.strip()
        if not query:
            return SearchResults()
        if len(query) > MAX_QUERY:
            raise Invalid(f"q: at most {MAX_QUERY} characters")
        results = SearchResults()
        # Resolving reaches out to other servers: only for a person who asked, as on Mastodon.
        resolve = request.resolve and self.viewer.account is not None
        if request.wants("accounts") and request.account_id is None:
            results.accounts = await self._accounts(query, request, resolve)
        if request.wants("statuses"):
            results.posts = await self._posts(query, request, resolve)
        if request.wants("hashtags") and request.account_id is None:
            results.tags = await self._tags(query, request)
        return results

    async def _accounts(self, query: str, request: SearchRequest, resolve: bool) -> list[Account]:
        found: list[Account] = []
        if looks_remote(query) and request.offset == 0:
            account = await self._exact_account(query, resolve)
            if account is not None:
                found.append(account)
        if not query.startswith(("http://", "https://")):
            name = query.lstrip("@")
            if looks_remote(query):
                name = name.split("@", 1)[0]
            found += await self._matching_accounts(
                name, limit=request.limit, offset=request.offset, local_only=False
            )
        unique = list({account.id: account for account in found}.values())
        if request.following and unique:
            unique = await self._followed(unique)
        return unique[: request.limit]

    async def _exact_account(self, query: str, resolve: bool) -> Account | None:
        if resolve:
            try:
                return _shown(await self.resolve_account(query))
            except (ResolveError, SearchError):
                return None
        if query.startswith(("http://", "https://")):
            cached = await ActorResolver(self.context).cached_actor(query)
            return _shown(cached) if cached is not None else None
        name, _, domain = query.lstrip("@").partition("@")
        settings = self.context.settings
        if domain.lower() in (settings.local_domain, settings.web_domain):
            locals_ = await self._matching_accounts(name, limit=1, offset=0, local_only=True, exact=True)
            return locals_[0] if locals_ else None
        cached = await ActorResolver(self.context).cached_handle(name, domain.lower())
        return _shown(cached) if cached is not None else None

    async def _matching_accounts(
        self, query: str, *, limit: int, offset: int, local_only: bool, exact: bool = False
    ) -> list[Account]:
        text = query.strip().lstrip("@")
        if not text:
            return []
        if exact:
            condition = func.lower(Account.username) == text.lower()
        else:
            pattern = "%" + text.replace("\\", "").replace("%", "\\%").replace("_", "\\_") + "%"
            condition = col(Account.username).ilike(pattern, escape="\\") | col(Account.display_name).ilike(
                pattern, escape="\\"
            )
        statement = select(Account).where(
            condition,
            col(Account.deleted_at).is_(None),
            col(Account.suspended_at).is_(None),
            Account.username != INSTANCE_ACTOR_USERNAME,
        )
        if local_only or exact:
            statement = statement.where(col(Account.domain).is_(None))
        # Local accounts first, then by how many follow them (Mastodon's ranking, simplified).
        statement = (
            statement.order_by(
                col(Account.domain).is_not(None), col(Account.followers_count).desc(), col(Account.username)
            )
            .offset(offset)
            .limit(limit)
        )
        async with self.context.sessions() as session:
            return list((await session.scalars(statement)).all())

    async def _followed(self, accounts: list[Account]) -> list[Account]:
        if self.viewer.account is None:
            return []
        async with self.context.sessions() as session:
            followed = set(
                (
                    await session.scalars(
                        select(Follow.followee_id).where(
                            col(Follow.follower_id) == self.viewer.account.id,
                            col(Follow.state) == FollowState.ACCEPTED,
                            col(Follow.followee_id).in_([account.id for account in accounts]),
                        )
                    )
                ).all()
            )
        return [account for account in accounts if account.id in followed]

    async def _posts(self, query: str, request: SearchRequest, resolve: bool) -> list[Post]:
        if query.startswith(("http://", "https://")):
            if request.offset:
                return []
            post = await PostAccess(self.context, self.viewer).find_post(query)
            if post is None and resolve:
                try:
                    post = await fetch_remote_post(self.context, query)
                except RemotePostError as error:
                    log.info("search could not fetch %s: %s", query, error)
                    return []
            if (
                post is None
                or post.reblog_of_id is not None
                or not await can_see(self.context, self.viewer, post)
            ):
                return []
            if request.account_id is not None and post.account_id != request.account_id:
                return []
            return [post]
        if self.viewer.account is None:
            # Mastodon searches post text for signed-in people only.
            return []
        pattern = "%" + query.replace("\\", "").replace("%", "\\%").replace("_", "\\_") + "%"
        statement = select(Post).where(
            col(Post.reblog_of_id).is_(None),
            col(Post.content_html).ilike(pattern, escape="\\")
            | col(Post.summary).ilike(pattern, escape="\\"),
            visible_to(self.viewer),
        )
        if request.account_id is not None:
            statement = statement.where(col(Post.account_id) == request.account_id)
        if request.max_id is not None:
            statement = statement.where(col(Post.id) < request.max_id)
        if request.min_id is not None:
            statement = statement.where(col(Post.id) > request.min_id)
        statement = statement.order_by(col(Post.id).desc()).offset(request.offset).limit(request.limit)
        async with self.context.sessions() as session:
            return list((await session.scalars(statement)).all())

    async def _tags(self, query: str, request: SearchRequest) -> list[Tag]:
        name = query.lstrip("#").strip().lower()
        if not name or " " in name:
            return []
        pattern = name.replace("\\", "").replace("%", "\\%").replace("_", "\\_") + "%"
        statement = (
            select(Tag)
            .where(col(Tag.name).ilike(pattern, escape="\\"))
            .order_by(func.length(Tag.name), col(Tag.name))
            .offset(request.offset)
            .limit(request.limit)
        )
        async with self.context.sessions() as session:
            return list((await session.scalars(statement)).all())


def _shown(account: Account) -> Account | None:
    if account.deleted_at is not None or account.suspended_at is not None:
        return None
    if account.domain is None and account.username == INSTANCE_ACTOR_USERNAME:
        return None
    return account


__all__ = ["MAX_LIMIT", "SearchError", "SearchRequest", "SearchResults", "SearchService", "looks_remote"]
