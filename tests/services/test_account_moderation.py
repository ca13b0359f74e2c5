"""Staff block, mute and report remote accounts; forwarded reports arrive as Flags from the instance actor."""

from __future__ import annotations

from sqlmodel import col, select

from app.models import (
    Account,
    AccountBlock,
    AccountMute,
    AuditLogEntry,
    Follow,
    Post,
    Report,
    User,
    UserDomainBlock,
)
from app.services.account_moderation import AccountModerationService
from app.services.domain_blocks import DomainBlockService
from app.services.following import FollowingService
from app.services.posting import PostingService
from tests.federation.delivery_helpers import local_account, settle
from tests.lab import Instance, Lab


async def count(instance: Instance, model: type, *conditions: object) -> int:
    async with instance.context.sessions() as session:
        return len((await session.scalars(select(model).where(*conditions))).all())  # type: ignore[arg-type]


async def remote(instance: Instance, uri: str) -> Account:
    async with instance.context.sessions() as session:
        found = await session.scalar(select(Account).where(col(Account.uri) == uri))
    assert found is not None
    return found


async def user_of(instance: Instance, account: Account) -> User:
    async with instance.context.sessions() as session:
        found = await session.scalar(select(User).where(col(User.account_id) == account.id))
    assert found is not None
    return found


async def test_block_mute_and_forwarded_report_across_the_lab(lab: Lab) -> None:
    a = await lab.instance("a.test", embedded_worker=False)
    b = await lab.instance("b.test", embedded_worker=False)
    alice = await local_account(a, "alice")
    bob = await local_account(b, "bob")
    await FollowingService(a.context).follow(alice, "@bob@b.test")
    await FollowingService(b.context).follow(bob, "@alice@a.test")
    await settle(lab)
    assert await count(a, Follow) == 2 and await count(b, Follow) == 2
    post = await PostingService(b.context).create(bob, "Something reportable")
    await settle(lab)

    moderation = AccountModerationService(a.context)
    bob_here = await remote(a, bob.uri)
    assert await moderation.mute(alice, bob_here)
    assert not await moderation.mute(alice, bob_here)  # already muted
    assert await count(a, AccountMute) == 1
    assert await moderation.mute(alice, bob_here, mute=False)
    assert await moderation.hide_domain(alice, "B.test")
    assert await count(a, UserDomainBlock, col(UserDomainBlock.domain) == "b.test") == 1

    assert await moderation.block(alice, bob_here)
    await settle(lab)
    # Ended both ways, here at once and on b.test when its Block arrived.
    assert await count(a, Follow) == 0
    assert await count(b, Follow) == 0
    # b.test keeps the block (no more deliveries to alice), until the Undo of it arrives.
    assert await count(b, AccountBlock) == 1
    assert await moderation.unblock(alice, bob_here)
    await settle(lab)
    assert await count(a, AccountBlock) == 0 and await count(b, AccountBlock) == 0
    assert await moderation.block(alice, bob_here)
    assert not await moderation.block(alice, bob_here)  # already blocked: no second Block sent
    await settle(lab)
    assert await count(b, AccountBlock) == 1

    async with a.context.sessions() as session:
        copy = await session.scalar(select(Account.id).where(col(Account.uri) == bob.uri))
        post_here = await session.scalar(select(Post).where(col(Post.uri) == post.uri))
    assert copy is not None and post_here is not None
    report = await moderation.report(
        await user_of(a, alice), alice, bob_here, post_ids=[post_here.id], comment="Spam", forward=True
    )
    assert report.forwarded and report.uri
    await settle(lab)
    async with b.context.sessions() as session:
        [received] = (await session.scalars(select(Report))).all()
        reporter = await session.get(Account, received.reporter_account_id)
    assert received.comment == "Spam" and received.uri == report.uri
    assert reporter is not None and reporter.uri == "http://a.test/actor"  # not alice
    assert await count(a, AuditLogEntry, col(AuditLogEntry.action) == "report.create") == 1

    # b.test rejects reports from a.test: the next forwarded Flag is dropped.
    await DomainBlockService(b.context).block("a.test", severity="silence", reject_reports=True)
    await moderation.report(await user_of(a, alice), alice, bob_here, comment="Again", forward=True)
    await settle(lab)
    assert await count(b, Report) == 1
