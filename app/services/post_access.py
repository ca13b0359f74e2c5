"""What every action on a post starts with: finding the post, and checking the one acting.

The viewer (app.services.viewer) must be allowed to act as the account named (its own, or an
organisation it posts for), and that account must be allowed to see the post acted on (the one
rule of app.services.visibility); otherwise Forbidden, or PostNotFound, which does not tell
whether the post exists. Composing (posting.py) and interactions (interactions.py) build on it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.activitypub.addressing import NoteParts
from app.activitypub.remote_objects import RemotePostError, fetch_remote_post
from app.context import AppContext
from app.federation.publisher import Publisher
from app.models import Account, Post, Visibility
from app.services.accounts import INSTANCE_ACTOR_USERNAME, AccountService
from app.services.errors import Invalid, NotFound
from app.services.read_model import load_contents
from app.services.timelines import add_to_home, hidden_from
from app.services.viewer import Viewer
from app.services.visibility import can_see


class PostingError(Invalid):
    """A request that cannot be carried out; the message is meant for the person asking."""


class PostNotFound(NotFound, PostingError):
    """No such post, or none the account acting may see (the two are not told apart)."""


@dataclass(frozen=True)
class PostView:
    """A post with everything needed to render it as AS2."""

    post: Post
    author: Account
    parts: NoteParts


class PostAccess:
    """Looking posts up for the actions on them, with the viewer's checks."""

    def __init__(self, context: AppContext, viewer: Viewer | None = None) -> None:
        """No viewer: the server itself or its operator (the command line)."""
        self.context = context
        self.urls = context.urls
        self.viewer = viewer if viewer is not None else Viewer.system()
        self.publisher = Publisher(context)

    async def local_account(self, username: str) -> Account:
        name = username.strip().removeprefix("@").removesuffix(f"@{self.context.settings.local_domain}")
        account = await AccountService(self.context).get_local_account(name)
        if account is None or account.username == INSTANCE_ACTOR_USERNAME or account.deleted_at is not None:
            raise PostingError(f"there is no local account named {username!r}")
        return account

    async def find_post(self, reference: str | int) -> Post | None:
        """A stored post by its id, its ActivityPub id or its web address (deleted ones included)."""
        async with self.context.sessions() as session:
            return await _find_post(session, reference)

    async def visible_post(self, post_id: int) -> Post | None:
        """The stored post `post_id` when the viewer may see it at its own URL; None when it is
        unknown, deleted or hidden from the viewer, alike (no surface may tell them apart)."""
        post = await self.find_post(post_id)
        if post is None or not await can_see(self.context, self.viewer, post):
            return None
        return post

    async def view(self, post: Post) -> PostView:
        async with self.context.sessions() as session:
            author = await session.get(Account, post.account_id)
            assert author is not None
            parts = (await _note_parts(session, [post]))[post.id]
        return PostView(post=post, author=author, parts=parts)

    async def replies(self, post: Post, *, limit: int = 40) -> list[str]:
        """Ids of public and unlisted replies to `post`, oldest first (its `replies` collection)."""
        async with self.context.sessions() as session:
            rows = await session.scalars(
                select(Post.uri)
                .where(
                    col(Post.in_reply_to_id) == post.id,
                    col(Post.deleted_at).is_(None),
                    col(Post.visibility).in_([Visibility.PUBLIC, Visibility.UNLISTED]),
                )
                .order_by(col(Post.id))
                .limit(limit)
            )
            return list(rows.all())

    async def _own_post(self, author: Account, reference: str | int) -> Post:
        self.viewer.require_act_as(author)
        post = await self.find_post(reference)
        if post is None or post.deleted_at is not None or post.account_id != author.id:
            raise PostNotFound(f"@{author.username} has no post {reference}")
        return post

    async def _visible_post(self, account: Account, reference: str | int) -> Post:
        """A post `account` acts on: the viewer may act as it, and it may see the post."""
        self.viewer.require_act_as(account)
        post = await self._known_post(reference)
        if not await can_see(self.context, self._reader(account), post):
            raise PostNotFound(f"no post {reference} is known here")
        return post

    def _reader(self, account: Account) -> Viewer:
        """Who reads when `account` acts: the viewer, when that is whom it acts as."""
        if self.viewer.account is not None and self.viewer.account.id == account.id:
            return self.viewer
        return Viewer(
            account=account, acting_ids=frozenset({account.id}) if account.is_local else frozenset()
        )

    async def _known_post(self, reference: str | int) -> Post:
        """A stored post by id, ActivityPub id or web address; a remote one is fetched when unknown."""
        post = await self.find_post(reference)
        if (
            post is None
            and isinstance(reference, str)
            and reference.strip().startswith(("http://", "https://"))
        ):
            post = await self._fetch_remote_post(reference.strip())
        if post is None:
            raise PostNotFound(f"no post {reference} is known here")
        if post.deleted_at is not None:
            raise PostingError(f"the post {reference} was deleted")
        return post

    async def _fetch_remote_post(self, url: str) -> Post:
        """A post from elsewhere that never reached us, read from its origin and kept (in nobody's
        timeline), so that it can be replied to, boosted or liked like any other."""
        try:
            return await fetch_remote_post(self.context, url)
        except RemotePostError as error:
            raise PostingError(str(error)) from None


async def _find_post(session: AsyncSession, reference: str | int) -> Post | None:
    if isinstance(reference, int) or reference.strip().isdigit():
        number = int(reference)
        # Ids are 64-bit: a longer number names no post (and would overflow the database driver).
        return await session.get(Post, number) if 0 < number < 2**63 else None
    reference = reference.strip()
    return await session.scalar(
        select(Post).where((col(Post.uri) == reference) | (col(Post.url) == reference)).limit(1)
    )


async def _note_parts(session: AsyncSession, posts: Sequence[Post]) -> dict[int, NoteParts]:
    """What the renderers need besides each post's row, from the read model."""
    contents = await load_contents(session, [post.id for post in posts])
    return {
        post_id: NoteParts(mentions=found.mentions, tags=found.tags, attachments=found.media)
        for post_id, found in contents.items()
    }


async def add_to_timelines(
    session: AsyncSession, post: Post, author: Account, account_ids: Iterable[int]
) -> set[int]:
    """Into the home timelines of `account_ids`, except those blocking or muting the author;
    returns those, so that they get no notification either."""
    hidden = await hidden_from(session, author) - {author.id}
    await add_to_home(session, set(account_ids) - hidden, post.id)
    return hidden
