"""Local accounts: creating staff and organisation accounts, their logins, and the instance actor."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from app.activitypub.keys import generate_key_pair
from app.context import AppContext
from app.models import Account, ActorType, Role, User
from app.models.base import utcnow
from app.services import events
from app.services.errors import Invalid
from app.services.passwords import generate_password, hash_password, password_problem

USERNAME_RE = re.compile(r"^[a-z0-9_]{1,30}$")
# The instance actor's name has a dot, which no user name may contain, so it can never be taken.
INSTANCE_ACTOR_USERNAME = "instance.actor"


ORGANIZATION_HAS_NO_LOGIN = (
    "organisation accounts have no password and nobody logs in as them; "
    "staff post as the organisation from their own logins"
)


class AccountError(Invalid):
    """A request about accounts that cannot be carried out; the message is meant for the person asking."""


def _check_password(password: str | None) -> None:
    """A password chosen by a person must pass the one password rule; a generated one (None) always does."""
    problem = password_problem(password) if password is not None else None
    if problem is not None:
        raise AccountError(problem)


@dataclass(frozen=True)
class CreatedAccount:
    account: Account
    user: User
    # The password set on the login: the one given, or a generated one to show once.
    password: str
    password_generated: bool


@dataclass(frozen=True)
class LocalAccountSummary:
    account: Account
    user: User | None


class AccountService:
    def __init__(self, context: AppContext) -> None:
        self.context = context

    def normalize_username(self, username: str) -> str:
        name = username.strip().removeprefix("@").lower()
        suffix = f"@{self.context.settings.local_domain}"
        name = name.removesuffix(suffix)
        if not USERNAME_RE.match(name):
            raise AccountError(
                f"{username!r} is not a valid user name: use 1 to 30 letters, digits or underscores"
            )
        return name

    async def create_local_account(
        self,
        username: str,
        *,
        organization: bool = False,
        role: Role = Role.STAFF,
        password: str | None = None,
        display_name: str | None = None,
        email: str | None = None,
        awaiting_approval: bool = False,
        sign_up_reason: str | None = None,
        locale: str | None = None,
    ) -> CreatedAccount:
        name = self.normalize_username(username)
        if organization and password is not None:
            raise AccountError(ORGANIZATION_HAS_NO_LOGIN)
        _check_password(password)
        generated = password is None and not organization
        # An organisation account gets no password at all: nobody logs in as it, staff post as it.
        password = "" if organization else (password or generate_password())
        urls = self.context.urls
        private_pem, public_pem = await asyncio.to_thread(generate_key_pair)
        password_hash = await hash_password(password) if password else ""
        async with self.context.sessions() as session:
            if await session.scalar(
                select(Account.id).where(Account.username == name, col(Account.domain).is_(None))
            ):
                raise AccountError(f"the name {name!r} is already taken")
            account = Account(
                username=name,
                domain=None,
                actor_type=ActorType.ORGANIZATION if organization else ActorType.PERSON,
                display_name=display_name if display_name is not None else name,
                uri=urls.actor(name),
                url=urls.profile_page(name),
                inbox_url=urls.inbox(name),
                shared_inbox_url=urls.shared_inbox,
                outbox_url=urls.outbox(name),
                followers_url=urls.followers(name),
                following_url=urls.following(name),
                featured_url=urls.featured(name),
                key_id=urls.key_id(name),
                public_key_pem=public_pem,
                private_key_pem=private_pem,
            )
            session.add(account)
            await session.flush()
            user = User(
                account_id=account.id,
                role=role,
                password_hash=password_hash,
                email=email,
                awaiting_approval=awaiting_approval,
                sign_up_reason=sign_up_reason,
                locale=locale,
            )
            session.add(user)
            # A new account is listed on the front page and counted in NodeInfo.
            events.announce(session, [events.PublicContentChanged()])
            try:
                await session.commit()
            except IntegrityError:
                raise AccountError(f"the name {name!r} is already taken") from None
        return CreatedAccount(account=account, user=user, password=password, password_generated=generated)

    async def set_password(self, username: str, password: str | None = None) -> str:
        _check_password(password)
        name = self.normalize_username(username)
        async with self.context.sessions() as session:
            row = (
                await session.execute(
                    select(User, Account)
                    .join(Account, col(Account.id) == col(User.account_id))
                    .where(Account.username == name, col(Account.domain).is_(None))
                )
            ).first()
            if row is None:
                raise AccountError(f"there is no local account named {name!r}")
            user, account = row
            if account.actor_type == ActorType.ORGANIZATION:
                raise AccountError(ORGANIZATION_HAS_NO_LOGIN)
            password = password or generate_password()
            password_hash = await hash_password(password)
            user.password_hash = password_hash
            session.add(user)
            await session.commit()
        return password

    async def list_local_accounts(self) -> list[LocalAccountSummary]:
        async with self.context.sessions() as session:
            rows = await session.execute(
                select(Account, User)
                .outerjoin(User, col(User.account_id) == col(Account.id))
                .where(col(Account.domain).is_(None), Account.username != INSTANCE_ACTOR_USERNAME)
                .order_by(col(Account.username))
            )
            return [LocalAccountSummary(account=account, user=user) for account, user in rows.all()]

    async def get_local_account(self, username: str) -> Account | None:
        async with self.context.sessions() as session:
            return await session.scalar(
                select(Account).where(Account.username == username.lower(), col(Account.domain).is_(None))
            )

    async def local_login(self, username: str) -> tuple[Account, User] | None:
        """A local account and the login that owns it, by user name."""
        name = self.normalize_username(username)
        async with self.context.sessions() as session:
            row = (
                await session.execute(
                    select(Account, User)
                    .join(User, col(User.account_id) == col(Account.id))
                    .where(Account.username == name, col(Account.domain).is_(None))
                )
            ).first()
        return None if row is None else (row[0], row[1])

    async def count_users(self) -> int:
        async with self.context.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(User)) or 0)

    async def instance_actor(self) -> Account:
        """The Application actor that signs the server's own fetches; made on first use."""
        existing = await self.get_local_account(INSTANCE_ACTOR_USERNAME)
        if existing is not None:
            return existing
        urls = self.context.urls
        private_pem, public_pem = await asyncio.to_thread(generate_key_pair)
        actor = Account(
            username=INSTANCE_ACTOR_USERNAME,
            domain=None,
            actor_type=ActorType.APPLICATION,
            display_name=self.context.settings.instance_name,
            uri=urls.instance_actor,
            url=f"{urls.base}/about",
            inbox_url=urls.shared_inbox,
            shared_inbox_url=urls.shared_inbox,
            outbox_url=None,
            key_id=urls.instance_key_id,
            public_key_pem=public_pem,
            private_key_pem=private_pem,
            manually_approves_followers=True,
            discoverable=False,
            indexable=False,
            created_at=utcnow(),
        )
        async with self.context.sessions() as session:
            session.add(actor)
            try:
                await session.commit()
            except IntegrityError:
                # Another process (a second worker on PostgreSQL) made it first.
                await session.rollback()
                made = await self.get_local_account(INSTANCE_ACTOR_USERNAME)
                assert made is not None
                return made
        return actor
