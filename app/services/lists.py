"""Lists: an account's own groups of the accounts it follows, each read as a timeline.

Only the owner sees a list (another's list is not found). Members must be followed (or asked to
be), as on Mastodon. The list timeline shows the members' posts and boosts the owner may see,
with the replies its `replies_policy` keeps; an `exclusive` list keeps its members' posts off
the owner's home timeline (`exclusive_members` is the condition the home timeline adds).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, or_
from sqlmodel import col, select

from app.context import AppContext
from app.models import Account, Follow, ListMember, Post, RepliesPolicy, UserList
from app.models.base import new_id, utcnow
from app.services.errors import Invalid, NotFound
from app.services.timelines import insert_ignoring_duplicates
from app.services.viewer import Viewer

MAX_LISTS = 50
MAX_TITLE = 255
MAX_MEMBERS_PER_REQUEST = 100


def _title(value: str | None) -> str:
    title = (value or "").strip()
    if not title:
        raise Invalid("title: must not be blank")
    if len(title) > MAX_TITLE:
        raise Invalid(f"title: at most {MAX_TITLE} characters")
    return title


def _policy(value: str | None) -> str:
    if value is None:
        return RepliesPolicy.LIST
    if value not in {policy.value for policy in RepliesPolicy}:
        raise Invalid("replies_policy: must be followed, list or none")
    return value


def exclusive_members(owner_id: int, author: Any = Post.account_id) -> ColumnElement[bool]:
    """The condition that `author` is in none of `owner_id`'s exclusive lists."""
    return ~exists().where(
        col(ListMember.account_id) == author,
        col(ListMember.list_id) == col(UserList.id),
        col(UserList.account_id) == owner_id,
        col(UserList.exclusive).is_(True),
    )


class ListService:
    def __init__(self, context: AppContext, viewer: Viewer) -> None:
        self.context = context
        self.viewer = viewer

    def _owner(self) -> Account:
        if self.viewer.account is None:
            raise NotFound("Record not found")
        return self.viewer.account

    async def lists(self) -> list[UserList]:
        owner = self._owner()
        async with self.context.sessions() as session:
            rows = await session.scalars(
                select(UserList).where(col(UserList.account_id) == owner.id).order_by(col(UserList.title))
            )
            return list(rows.all())

    async def get(self, list_id: int) -> UserList:
        owner = self._owner()
        async with self.context.sessions() as session:
            found = await session.get(UserList, list_id)
        if found is None or found.account_id != owner.id:
            raise NotFound("Record not found")
        return found

    async def create(self, title: str | None, replies_policy: str | None, exclusive: bool) -> UserList:
        owner = self._owner()
        new = UserList(
            account_id=owner.id,
            title=_title(title),
            replies_policy=_policy(replies_policy),
            exclusive=exclusive,
        )
        async with self.context.sessions() as session:
            count = len(
                (await session.scalars(select(UserList.id).where(col(UserList.account_id) == owner.id))).all()
            )
            if count >= MAX_LISTS:
                raise Invalid(f"at most {MAX_LISTS} lists")
            session.add(new)
            await session.commit()
            await session.refresh(new)
        return new

    async def update(
        self, list_id: int, title: str | None, replies_policy: str | None, exclusive: bool | None
    ) -> UserList:
        found = await self.get(list_id)
        async with self.context.sessions() as session:
            row = await session.get(UserList, found.id)
            assert row is not None
            if title is not None:
                row.title = _title(title)
            if replies_policy is not None:
                row.replies_policy = _policy(replies_policy)
            if exclusive is not None:
                row.exclusive = exclusive
            session.add(row)
            await session.commit()
            await session.refresh(row)
            return row

    async def delete(self, list_id: int) -> None:
        found = await self.get(list_id)
        async with self.context.sessions() as session:
            await session.execute(delete(ListMember).where(col(ListMember.list_id) == found.id))
            await session.execute(delete(UserList).where(col(UserList.id) == found.id))
            await session.commit()

    async def members(
        self, list_id: int, *, limit: int | None, max_id: int | None = None
    ) -> list[tuple[int, Account]]:
        """(membership id, account) pairs, newest membership first; no limit: all of them."""
        found = await self.get(list_id)
        statement = (
            select(ListMember.id, Account)
            .join(Account, col(Account.id) == col(ListMember.account_id))
            .where(col(ListMember.list_id) == found.id, col(Account.deleted_at).is_(None))
        )
        if max_id is not None:
            statement = statement.where(col(ListMember.id) < max_id)
        statement = statement.order_by(col(ListMember.id).desc())
        if limit is not None:
            statement = statement.limit(limit)
        async with self.context.sessions() as session:
            return [(member_id, account) for member_id, account in (await session.execute(statement)).all()]

    async def add_members(self, list_id: int, account_ids: Iterable[int]) -> None:
        found = await self.get(list_id)
        owner = self._owner()
        wanted = sorted(set(account_ids))
        if not wanted:
            raise Invalid("account_ids: name at least one account")
        if len(wanted) > MAX_MEMBERS_PER_REQUEST:
            raise Invalid(f"account_ids: at most {MAX_MEMBERS_PER_REQUEST} at once")
        async with self.context.sessions() as session:
            followed = set(
                (
                    await session.scalars(
                        select(Follow.followee_id).where(
                            col(Follow.follower_id) == owner.id, col(Follow.followee_id).in_(wanted)
                        )
                    )
                ).all()
            )
            missing = [account_id for account_id in wanted if account_id not in followed]
            if missing:
                # Mastodon's rule: only accounts one follows (or asked to follow) join a list.
                known = await session.scalars(select(Account.id).where(col(Account.id).in_(missing)))
                if set(known.all()) != set(missing):
                    raise NotFound("Record not found")
                raise Invalid("account_ids: you must follow an account before adding it to a list")
            now = utcnow()
            rows = [
                {"id": new_id(), "list_id": found.id, "account_id": account_id, "created_at": now}
                for account_id in wanted
            ]
            await session.execute(insert_ignoring_duplicates(session, ListMember, rows))
            await session.commit()

    async def remove_members(self, list_id: int, account_ids: Iterable[int]) -> None:
        found = await self.get(list_id)
        wanted = sorted(set(account_ids))
        async with self.context.sessions() as session:
            await session.execute(
                delete(ListMember).where(
                    col(ListMember.list_id) == found.id, col(ListMember.account_id).in_(wanted)
                )
            )
            await session.commit()

    async def lists_containing(self, account_id: int) -> list[UserList]:
        """The viewer's lists that hold `account_id`."""
        owner = self._owner()
        async with self.context.sessions() as session:
            rows = await session.scalars(
                select(UserList)
                .join(ListMember, col(ListMember.list_id) == col(UserList.id))
                .where(col(UserList.account_id) == owner.id, col(ListMember.account_id) == account_id)
                .order_by(col(UserList.title))
            )
            return list(rows.all())


def replies_kept(found: UserList, owner_id: int, members: Any) -> ColumnElement[bool]:
    """The condition on Post that a reply is one the list's replies_policy keeps."""
    not_reply = col(Post.in_reply_to_account_id).is_(None)
    to_self = col(Post.in_reply_to_account_id) == col(Post.account_id)
    if found.replies_policy == RepliesPolicy.NONE:
        return or_(not_reply, to_self)
    if found.replies_policy == RepliesPolicy.LIST:
        return or_(not_reply, to_self, col(Post.in_reply_to_account_id).in_(members))
    followed = select(Follow.followee_id).where(col(Follow.follower_id) == owner_id)
    return or_(
        not_reply,
        to_self,
        col(Post.in_reply_to_account_id) == owner_id,
        col(Post.in_reply_to_account_id).in_(followed),
    )


__all__ = ["ListService", "exclusive_members", "replies_kept"]
