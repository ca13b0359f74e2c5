"""What happened here, told to other servers: the one door from the services to federation.

A service says what happened (a post created, a follow ended, a report forwarded) and passes the
session it is writing with; the publisher renders the activity (app.activitypub.activities),
picks the inboxes (app.federation.outbox) and queues one delivery job per inbox in that same
transaction, so a change and its deliveries commit together or not at all (the transactional
outbox). Once the transaction commits, this process's worker is woken so delivery starts at once.

Services build no ActivityStreams JSON and address no inboxes themselves: what goes on the wire,
and to whom, is decided here and in the renderers, in one place.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from app.activitypub import activities
from app.activitypub.addressing import NoteParts
from app.context import AppContext
from app.federation.outbox import (
    booster_inboxes,
    follower_inboxes,
    post_inboxes,
    preferred_inbox,
    queue_activity,
)
from app.models import Account, Favourite, Follow, Post, Visibility
from app.queue_names import DELIVERY_QUEUE
from app.services.after_commit import after_commit


class Publisher:
    def __init__(self, context: AppContext) -> None:
        self.context = context
        self.urls = context.urls

    def new_activity_id(self, actor: Account) -> str:
        """An id for an activity `actor` will send, minted before the row that keeps it (a block's uri)."""
        return activities.activity_id(self.urls, actor)

    def wake_delivery(self, session: AsyncSession) -> None:
        """Wake this process's worker once `session` commits (jobs queued or requeued by hand)."""
        context = self.context
        after_commit(session, ("wake", DELIVERY_QUEUE), lambda: context.work.notify(DELIVERY_QUEUE))

    # ------------------------------------------------------------------------------------------
    # Posts

    async def post_created(
        self, session: AsyncSession, post: Post, author: Account, parts: NoteParts
    ) -> None:
        """A Create to the author's followers' servers (unless direct) and everyone it addresses."""
        inboxes = await post_inboxes(
            session, author, to_followers=post.visibility != Visibility.DIRECT, accounts=parts.mentions
        )
        await self._queue(
            session, activities.render_create(post, author, parts, urls=self.urls), author, inboxes
        )

    async def post_edited(
        self,
        session: AsyncSession,
        post: Post,
        author: Account,
        parts: NoteParts,
        *,
        previously_addressed: Sequence[Account],
    ) -> None:
        """An Update to everyone who had the old version (mentions the edit dropped included) and
        the servers of its boosters."""
        inboxes = await post_inboxes(
            session,
            author,
            to_followers=post.visibility != Visibility.DIRECT,
            accounts=[*parts.mentions, *previously_addressed],
        )
        inboxes += await booster_inboxes(session, post)
        await self._queue(session, activities.render_update(post, author, parts, self.urls), author, inboxes)

    async def post_deleted(
        self, session: AsyncSession, post: Post, author: Account, *, addressed: Sequence[Account]
    ) -> None:
        """A Delete to everyone who received the post. Call it before the post's boosts are
        removed (their authors' servers hold copies) and before its text is cleared."""
        inboxes = await post_inboxes(
            session, author, to_followers=post.visibility != Visibility.DIRECT, accounts=addressed
        )
        inboxes += await booster_inboxes(session, post)
        await self._queue(session, activities.render_delete(post, author), author, inboxes)

    async def boosted(
        self, session: AsyncSession, boost: Post, booster: Account, original: Post, original_author: Account
    ) -> None:
        inboxes = await post_inboxes(session, booster, to_followers=True, accounts=[original_author])
        await self._queue(session, activities.render_announce(boost, booster, original.uri), booster, inboxes)

    async def unboosted(
        self, session: AsyncSession, boost: Post, booster: Account, original: Post, original_author: Account
    ) -> None:
        announce = activities.render_announce(boost, booster, original.uri)
        inboxes = await post_inboxes(session, booster, to_followers=True, accounts=[original_author])
        await self._queue(session, activities.render_undo(self.urls, booster, announce), booster, inboxes)

    async def liked(
        self, session: AsyncSession, favourite: Favourite, account: Account, post: Post, author: Account
    ) -> None:
        """A Like to the author's own inbox, as Mastodon sends it."""
        like = activities.render_like(self._like_uri(favourite, account), account, post)
        await self._queue(session, like, account, _personal_inboxes([author]))

    async def unliked(
        self, session: AsyncSession, favourite: Favourite, account: Account, post: Post, author: Account
    ) -> None:
        like = activities.render_like(self._like_uri(favourite, account), account, post)
        await self._queue(
            session, activities.render_undo(self.urls, account, like), account, _personal_inboxes([author])
        )

    async def pinned(self, session: AsyncSession, account: Account, post: Post) -> None:
        """An Add to the featured collection, for the followers' servers."""
        inboxes = await follower_inboxes(session, account)
        await self._queue(session, activities.render_add(self.urls, account, post), account, inboxes)

    async def unpinned(self, session: AsyncSession, account: Account, post: Post) -> None:
        inboxes = await follower_inboxes(session, account)
        await self._queue(session, activities.render_remove(self.urls, account, post), account, inboxes)

    # ------------------------------------------------------------------------------------------
    # Accounts

    async def followed(
        self, session: AsyncSession, follower: Account, followee: Account, follow: Follow
    ) -> None:
        """A Follow of a remote account; sent again under the same id when a pending follow is
        repeated (the Accept will name that id), so its stored activity is reused."""
        assert follow.uri is not None
        await self._queue(
            session,
            activities.render_follow(self.urls, follower, followee, follow.uri),
            follower,
            [followee.inbox_url],
            reuse=True,
        )

    async def unfollowed(
        self, session: AsyncSession, follower: Account, followee: Account, follow: Follow
    ) -> None:
        """An Undo of the Follow, to the remote followee's inbox."""
        undone = activities.render_follow(self.urls, follower, followee, self._follow_uri(follow, follower))
        await self._queue(
            session, activities.render_undo(self.urls, follower, undone), follower, [followee.inbox_url]
        )

    async def follow_answered(
        self,
        session: AsyncSession,
        answer: Literal["Accept", "Reject"],
        followee: Account,
        follower: Account,
        follow_uri: str | None,
    ) -> None:
        """An Accept or Reject, to the follower's own inbox (an answer concerns one actor only)."""
        activity = activities.render_follow_response(self.urls, answer, followee, follower, follow_uri)
        await self._queue(session, activity, followee, [follower.inbox_url])

    async def blocked(self, session: AsyncSession, blocker: Account, target: Account, block_uri: str) -> None:
        await self._queue(
            session, activities.render_block(blocker, target, block_uri), blocker, [target.inbox_url]
        )

    async def unblocked(
        self, session: AsyncSession, blocker: Account, target: Account, block_uri: str | None
    ) -> None:
        block = activities.render_block(blocker, target, block_uri or self.new_activity_id(blocker))
        await self._queue(
            session, activities.render_undo(self.urls, blocker, block), blocker, [target.inbox_url]
        )

    async def profile_updated(self, session: AsyncSession, account: Account) -> bool:
        """An Update of the whole actor for the followers' servers; False when there are none."""
        inboxes = await follower_inboxes(session, account)
        if not inboxes:
            return False
        await self._queue(session, activities.render_update_actor(self.urls, account), account, inboxes)
        return True

    async def report_forwarded(
        self,
        session: AsyncSession,
        instance_actor: Account,
        target: Account,
        comment: str,
        posts: Iterable[Post],
    ) -> str:
        """A Flag from the instance actor (the remote admins learn what, not who) to the reported
        account's server; returns the Flag's id."""
        flag_id = self.new_activity_id(instance_actor)
        flag = activities.render_flag(
            flag_id, instance_actor, comment, [target.uri, *(post.uri for post in posts)]
        )
        await self._queue(session, flag, instance_actor, [preferred_inbox(target)])
        return flag_id

    # ------------------------------------------------------------------------------------------

    async def _queue(
        self,
        session: AsyncSession,
        activity: dict[str, Any],
        signer: Account,
        inboxes: Iterable[str],
        *,
        reuse: bool = False,
    ) -> None:
        await queue_activity(session, activity=activity, signer=signer, inboxes=inboxes, reuse=reuse)
        self.wake_delivery(session)

    def _follow_uri(self, follow: Follow, follower: Account) -> str:
        return follow.uri or self.urls.activity(follower.username, follow.id)

    @staticmethod
    def _like_uri(favourite: Favourite, account: Account) -> str:
        return favourite.uri or f"{account.uri}#likes/{favourite.id}"


def _personal_inboxes(accounts: Iterable[Account]) -> list[str]:
    # Likes go to the actor's own inbox, as Mastodon sends them.
    return [
        account.inbox_url
        for account in accounts
        if account.domain is not None and account.gone_at is None and account.inbox_url
    ]
