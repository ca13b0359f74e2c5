"""Writing posts and acting on them: create, edit, delete here; boost, like, pin in
interactions.py; finding the post and checking the one acting in post_access.py.

PostingService is the one door for the CLI, the web UI and the client API. Each action commits the change,
its timeline entries and its delivery jobs in one transaction (the transactional outbox), so
what is committed is delivered even if the process dies right after.

What a post says on the wire, and who receives it, the publisher (app.federation.publisher)
decides; this module tells it what happened.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, insert, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.activitypub.addressing import NoteParts, address_post
from app.activitypub.resolver import ActorResolver, ResolveError
from app.db import write_session
from app.models import (
    Account,
    MediaAttachment,
    Mention,
    NotificationType,
    Pin,
    Post,
    PostEdit,
    PostTag,
    TimelineEntry,
    User,
    Visibility,
)
from app.models.base import new_id, new_ids, utcnow
from app.services import events
from app.services import idempotency as idempotency_keys
from app.services.accounts import INSTANCE_ACTOR_USERNAME, AccountService
from app.services.errors import RateLimited
from app.services.hashtags import tag_follower_ids
from app.services.idempotency import IdempotencyClaim
from app.services.interactions import MAX_PINS, PostInteractions
from app.services.media import claim_for_post, stored_keys_of_posts
from app.services.notifications import announces_to_followers, notify, notify_local_ids
from app.services.post_access import PostingError, PostNotFound, PostView, add_to_timelines
from app.services.text_format import URL_RE, extract_hashtags, extract_mentions, render_plain_text
from app.services.timelines import followers_refusing_language, hidden_from, local_follower_ids, tag_post
from app.services.visibility import can_see

# Mastodon counts every link as 23 characters, whatever its length.
URL_WEIGHT = 23
_LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(?:-[A-Za-z0-9]{2,8})*$")
_REMOTE_MENTION_RE = re.compile(r"(?<![=/\w@])(@[A-Za-z0-9_][A-Za-z0-9_.\-]*)@[\w.\-]*\w(?::[0-9]{1,5})?")
# Mentions are resolved a few at a time: each may be a WebFinger round trip and an actor fetch.
MENTION_LOOKUPS = 4


@dataclass(frozen=True)
class _ReplyTarget:
    post: Post
    author: Account | None


def visible_length(text: str) -> int:
    """Characters as Mastodon counts them: links weigh 23, remote mentions count without their domain."""
    text = URL_RE.sub("x" * URL_WEIGHT, text)
    return len(_REMOTE_MENTION_RE.sub(r"\1", text))


def conversation_tag(local_domain: str, post: Post) -> str:
    # Mastodon's form, which other servers keep as an opaque thread key.
    return f"tag:{local_domain},{post.published_at:%Y-%m-%d}:objectId={post.id}:objectType=Conversation"


class PostingService(PostInteractions):
    """Every action checks the viewer: it may act as the account named (its own, or an
    organisation it posts for), it may see the post acted on, and a person's posts are
    rate-limited per account. No viewer: the server itself or its operator (the command line)."""

    # ------------------------------------------------------------------------------------------
    # Writing

    async def create(
        self,
        author: Account,
        text: str,
        *,
        visibility: Visibility | str = Visibility.PUBLIC,
        spoiler_text: str | None = None,
        sensitive: bool = False,
        language: str | None = None,
        in_reply_to: str | None = None,
        written_by_user_id: int | None = None,
        media_ids: Sequence[str | int] = (),
        idempotency: IdempotencyClaim | None = None,
    ) -> Post:
        """Publish a post typed as plain text; returns it once it and its deliveries are committed.

        `written_by_user_id` defaults to the person asking: the post records who wrote it. With
        `idempotency`, a key this token used within the hour returns the post it made then.
        `media_ids` are the author's uploaded attachments to carry (app.services.media's rules).
        """
        self.viewer.require_act_as(author)
        if idempotency is not None:
            earlier = await self._earlier_post(idempotency)
            if earlier is not None:
                return earlier
        visibility = _visibility(visibility)
        text = text.strip()
        spoiler = (spoiler_text or "").strip() or None
        self._check_text(text, spoiler, with_media=bool(media_ids))
        language = _language(language)
        reply = await self._reply_target(author, in_reply_to) if in_reply_to else None
        self._count_post(author)
        if written_by_user_id is None and self.viewer.user is not None:
            written_by_user_id = self.viewer.user.id
        mentioned = await self._resolve_mentions(text)
        # A reply reaches the author replied to even when the text does not name them, as a script
        # replying with --reply-to expects; they are addressed and tagged, not written into the text.
        addressed = list(mentioned.values())
        if reply is not None and reply.author is not None and reply.author.id != author.id:
            if all(account.id != reply.author.id for account in addressed):
                addressed.append(reply.author)
        content_html = render_plain_text(
            text,
            mention_hrefs={key: account.url or account.uri for key, account in mentioned.items()},
            hashtag_href=self.urls.tag,
        )
        tag_names = list(dict.fromkeys(name.lower() for name in extract_hashtags(text)))[:100]

        post_id = new_id()
        now = utcnow()
        to, cc = address_post(visibility, author.followers_url, [account.uri for account in addressed])
        post = Post(
            id=post_id,
            uri=self.urls.post(author.username, post_id),
            url=self.urls.post_page(author.username, post_id),
            account_id=author.id,
            written_by_user_id=written_by_user_id,
            local=True,
            visibility=visibility,
            content_html=content_html,
            content_source=text,
            summary=spoiler,
            sensitive=sensitive or spoiler is not None,
            language=language,
            in_reply_to_uri=reply.post.uri if reply else None,
            in_reply_to_id=reply.post.id if reply else None,
            in_reply_to_account_id=reply.author.id if reply and reply.author else None,
            to=to,
            cc=cc,
            published_at=now,
            created_at=now,
        )
        post.conversation_uri = (reply.post.conversation_uri if reply else None) or conversation_tag(
            self.context.settings.local_domain, post
        )

        # Through `write_session`: on SQLite this transaction holds the one write lock from its first
        # statement to its commit, and with a thousand followers it writes a thousand delivery jobs;
        # on aiosqlite's threads every statement waited for the event loop to come round again.
        async with write_session(self.context.write_sessions) as session:
            session.add(post)
            await session.flush()
            attachments = await claim_for_post(session, author, media_ids, post.id)
            await _add_mentions(session, post, addressed)
            await tag_post(session, post.id, tag_names)
            audience = [author.id]
            if written_by_user_id is not None:
                # Whoever wrote it as the organisation finds it on their own home timeline, as its post.
                writer = await session.scalar(
                    select(User.account_id).where(col(User.id) == written_by_user_id)
                )
                audience += [writer] if writer is not None else []
            if visibility == Visibility.DIRECT:
                audience += [account.id for account in addressed if account.domain is None]
            else:
                refusing = await followers_refusing_language(session, author, language)
                audience += [
                    follower
                    for follower in await local_follower_ids(session, author)
                    if follower not in refusing
                ]
            if visibility == Visibility.PUBLIC:
                # Those following one of its hashtags find it at home, as on Mastodon.
                audience += await tag_follower_ids(session, tag_names)
            await add_to_timelines(session, post, author, audience)
            # Who blocks or mutes the author hears nothing of it (a mute may keep notifications).
            hidden = await hidden_from(session, author, notifications=True)
            reply_author_id = reply.author.id if reply is not None and reply.author is not None else None
            if announces_to_followers(visibility, reply_author_id, author.id):
                told = {account.id for account in addressed} | hidden
                notify_local_ids(
                    session,
                    [
                        follower
                        for follower in await local_follower_ids(session, author, notify=True)
                        if follower not in told
                    ],
                    from_account=author,
                    kind=NotificationType.STATUS,
                    post_id=post.id,
                )
            # Accounts here learn of it as they would from another server: a reply, a mention.
            for account in addressed:
                if account.id in hidden:
                    continue
                replied_to = reply is not None and reply.author is not None and reply.author.id == account.id
                kind = NotificationType.REPLY if replied_to else NotificationType.MENTION
                await notify(session, account=account, from_account=author, kind=kind, post_id=post.id)
            await session.execute(
                update(Account)
                .where(col(Account.id) == author.id)
                .values(posts_count=col(Account.posts_count) + 1, last_post_at=now)
            )
            if reply is not None:
                await session.execute(
                    update(Post)
                    .where(col(Post.id) == reply.post.id)
                    .values(replies_count=col(Post.replies_count) + 1)
                )
            parts = NoteParts(mentions=addressed, tags=tag_names, attachments=attachments)
            await self.publisher.post_created(session, post, author, parts)
            events.announce(
                session,
                [events.PostPublished(post.id, author.id, local=True, in_reply_to_id=post.in_reply_to_id)],
            )
            if idempotency is not None:
                await idempotency_keys.record(session, idempotency, post.id)
            try:
                await session.commit()
            except IntegrityError:
                if idempotency is None:
                    raise
                # The same key won a race with this request: nothing of this one was kept.
                await session.rollback()
                earlier = await self._earlier_post(idempotency)
                if earlier is None:
                    raise
                return earlier
        return post

    async def _earlier_post(self, claim: IdempotencyClaim) -> Post | None:
        async with self.context.sessions() as session:
            post_id = await idempotency_keys.earlier_post_id(session, claim)
            return await session.get(Post, post_id) if post_id is not None else None

    async def edit(
        self,
        author: Account,
        reference: str | int,
        text: str,
        *,
        spoiler_text: str | None = None,
        sensitive: bool | None = None,
        language: str | None = None,
        media_ids: Sequence[str | int] | None = None,
    ) -> Post:
        """Change a post's text (the previous version is kept) and send the Update. `media_ids`
        (None: unchanged) replaces the attachments; those left out are detached."""
        post = await self._own_post(author, reference)
        text = text.strip()
        spoiler = (spoiler_text or "").strip() or None
        self._check_text(text, spoiler, with_media=bool(media_ids))
        mentioned = await self._resolve_mentions(text)
        tag_names = list(dict.fromkeys(name.lower() for name in extract_hashtags(text)))[:100]
        now = utcnow()
        async with self.context.sessions() as session:
            stored = await session.get(Post, post.id, with_for_update=True)
            assert stored is not None
            previous = await _mentioned_accounts(session, stored)
            addressed = list(mentioned.values())
            reply_author = (
                await session.get(Account, stored.in_reply_to_account_id)
                if stored.in_reply_to_account_id
                else None
            )
            if reply_author is not None and reply_author.id != author.id:
                if all(account.id != reply_author.id for account in addressed):
                    addressed.append(reply_author)
            session.add(
                PostEdit(
                    post_id=stored.id,
                    content_html=stored.content_html,
                    summary=stored.summary,
                    sensitive=stored.sensitive,
                    created_at=stored.edited_at or stored.published_at,
                )
            )
            stored.content_source = text
            stored.content_html = render_plain_text(
                text,
                mention_hrefs={key: account.url or account.uri for key, account in mentioned.items()},
                hashtag_href=self.urls.tag,
            )
            stored.summary = spoiler
            stored.sensitive = (
                sensitive if sensitive is not None else stored.sensitive
            ) or spoiler is not None
            if language is not None:
                stored.language = _language(language)
            stored.edited_at = now
            stored.to, stored.cc = address_post(
                stored.visibility, author.followers_url, [account.uri for account in addressed]
            )
            session.add(stored)
            await session.execute(delete(Mention).where(col(Mention.post_id) == stored.id))
            await session.execute(delete(PostTag).where(col(PostTag.post_id) == stored.id))
            await session.flush()
            await _add_mentions(session, stored, addressed)
            await tag_post(session, stored.id, tag_names)
            if media_ids is not None:
                kept = await claim_for_post(session, author, media_ids, stored.id)
                await session.execute(
                    update(MediaAttachment)
                    .where(
                        col(MediaAttachment.post_id) == stored.id,
                        col(MediaAttachment.id).not_in([media.id for media in kept] or [0]),
                    )
                    .values(post_id=None)
                )
                await session.flush()
            attachments = await _attachments(session, [stored.id])
            parts = NoteParts(mentions=addressed, tags=tag_names, attachments=attachments.get(stored.id, []))
            # Everyone who had the old version gets the new one: mentions dropped by the edit included.
            await self.publisher.post_edited(session, stored, author, parts, previously_addressed=previous)
            events.announce(session, [events.PostEdited(stored.id, author.id)])
            await session.commit()
        return stored

    async def delete(self, author: Account, reference: str | int) -> Post:
        """Delete a post: its URL then answers 410, and everyone who received it gets the Delete."""
        post = await self._own_post(author, reference)
        async with self.context.sessions() as session:
            stored = await session.get(Post, post.id, with_for_update=True)
            assert stored is not None
            mentioned = await _mentioned_accounts(session, stored)
            reply_author = (
                await session.get(Account, stored.in_reply_to_account_id)
                if stored.in_reply_to_account_id
                else None
            )
            await self.publisher.post_deleted(
                session, stored, author, addressed=[*mentioned, *([reply_author] if reply_author else [])]
            )
            # The row stays so the URL can answer 410; what was said goes.
            stored.deleted_at = utcnow()
            stored.content_html = ""
            stored.content_source = None
            stored.summary = None
            session.add(stored)
            boosts = select(Post.id).where(col(Post.reblog_of_id) == stored.id)
            await session.execute(
                delete(TimelineEntry).where(
                    col(TimelineEntry.post_id).in_(boosts) | (col(TimelineEntry.post_id) == stored.id)
                )
            )
            # Boosts of a deleted post go with it; other servers drop theirs on the Delete.
            await session.execute(delete(Post).where(col(Post.reblog_of_id) == stored.id))
            events.announce(session, [events.PostDeleted(stored.id, author.id)])
            await session.execute(delete(Pin).where(col(Pin.post_id) == stored.id))
            # Its files go with it (the store deletes them after the commit).
            media_keys = await stored_keys_of_posts(session, col(Post.id) == stored.id)
            await session.execute(delete(MediaAttachment).where(col(MediaAttachment.post_id) == stored.id))
            await session.execute(delete(PostTag).where(col(PostTag.post_id) == stored.id))
            await session.execute(
                update(Account)
                .where(col(Account.id) == author.id, col(Account.posts_count) > 0)
                .values(posts_count=col(Account.posts_count) - 1)
            )
            if stored.in_reply_to_id is not None:
                await session.execute(
                    update(Post)
                    .where(col(Post.id) == stored.in_reply_to_id, col(Post.replies_count) > 0)
                    .values(replies_count=col(Post.replies_count) - 1)
                )
            await session.commit()
        await self.context.media.delete(*media_keys)
        return stored

    # ------------------------------------------------------------------------------------------
    # Helpers

    def _check_text(self, text: str, spoiler: str | None, *, with_media: bool = False) -> None:
        if not text and not with_media:
            raise PostingError("a post needs some text or an attachment")
        limit = self.context.settings.max_post_chars
        length = visible_length(text) + len(spoiler or "")
        if length > limit:
            raise PostingError(f"the post is {length} characters long; the limit is {limit}")

    def _count_post(self, author: Account) -> None:
        """A person's posts count against the account posted as (Mastodon's 300 in 3 hours)."""
        if not self.viewer.is_person:
            return
        rate = self.context.rate_limits.posts_per_account.hit(f"account:{author.id}")
        if not rate.allowed:
            raise RateLimited(
                "too many posts from this account; wait a while, then try again", headers=rate.headers()
            )

    async def _resolve_mentions(self, text: str) -> dict[tuple[str, str | None], Account]:
        """The accounts `@user` / `@user@domain` in `text` name; unresolvable ones stay plain text."""
        settings = self.context.settings
        resolver = ActorResolver(self.context)
        accounts = AccountService(self.context)
        limit = asyncio.Semaphore(MENTION_LOOKUPS)

        async def one(username: str, domain: str | None) -> Account | None:
            if domain is None or domain.lower() in (settings.local_domain, settings.web_domain):
                account = await accounts.get_local_account(username)
                if account is None or account.username == INSTANCE_ACTOR_USERNAME or account.deleted_at:
                    return None
                return account
            async with limit:
                try:
                    return await resolver.resolve_handle(f"{username}@{domain}")
                except ResolveError:
                    return None

        found = extract_mentions(text)
        resolved = await asyncio.gather(*(one(username, domain) for username, domain in found))
        return {key: account for key, account in zip(found, resolved, strict=True) if account is not None}

    async def _reply_target(self, replier: Account, reference: str) -> _ReplyTarget:
        post = await self._known_post(reference)
        # A person replies to what they may see; the operator's scripts reply to any post they name
        # (one fetched by its URL just now may carry no addressing at all).
        if not self.viewer.is_system and not await can_see(self.context, self._reader(replier), post):
            raise PostNotFound(f"no post {reference} is known here")
        async with self.context.sessions() as session:
            author = await session.get(Account, post.account_id)
        return _ReplyTarget(post, author)


# ----------------------------------------------------------------------------------------------
# Queries shared by the actions above


async def _attachments(session: AsyncSession, post_ids: Sequence[int]) -> dict[int, list[MediaAttachment]]:
    rows = await session.scalars(
        select(MediaAttachment)
        .where(col(MediaAttachment.post_id).in_(post_ids))
        .order_by(col(MediaAttachment.position), col(MediaAttachment.id))
    )
    found: dict[int, list[MediaAttachment]] = {}
    for media in rows.all():
        if media.post_id is not None:
            found.setdefault(media.post_id, []).append(media)
    return found


async def _mentioned_accounts(session: AsyncSession, post: Post) -> list[Account]:
    rows = await session.scalars(
        select(Account)
        .join(Mention, col(Mention.account_id) == col(Account.id))
        .where(col(Mention.post_id) == post.id)
    )
    return list(rows.all())


async def _add_mentions(session: AsyncSession, post: Post, accounts: Iterable[Account]) -> None:
    unique = list({account.id: account for account in accounts}.values())
    rows = [
        {"id": mention_id, "post_id": post.id, "account_id": account.id}
        for mention_id, account in zip(new_ids(len(unique)), unique, strict=True)
    ]
    if rows:
        await session.execute(insert(Mention), rows)


def _visibility(value: Visibility | str) -> Visibility:
    try:
        return Visibility(value)
    except ValueError:
        choices = ", ".join(item.value for item in Visibility)
        raise PostingError(f"visibility must be one of {choices}, not {value!r}") from None


def _language(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    value = value.strip()
    if not _LANGUAGE_RE.match(value):
        raise PostingError(f"{value!r} is not a language code such as en or pt-BR")
    return value


__all__ = [
    "MAX_PINS",
    "PostNotFound",
    "PostView",
    "PostingError",
    "PostingService",
    "conversation_tag",
    "visible_length",
]
