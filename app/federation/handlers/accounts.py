"""Block, Flag and Move: what a remote account does about local accounts, or about itself."""

from __future__ import annotations

from sqlmodel import col, select

from app.activitypub.parsers import InvalidObject, authority, parse_flag
from app.activitypub.resolver import ActorResolver, ResolveError
from app.federation.handlers.base import Ignored, Inbound, local_account
from app.models import Account, Post
from app.services.remote_accounts import MoveRefused, RemoteAccountService


async def handle_block(inbound: Inbound) -> None:
    target = await local_account(inbound.context, inbound.activity.object_id)
    if target is None:
        raise Ignored(f"{inbound.activity.object_id} is not an account of this server")
    blocker = await inbound.actor()
    await RemoteAccountService(inbound.context).blocked_by(blocker, target, inbound.activity.id)


async def handle_flag(inbound: Inbound) -> None:
    try:
        reporter_host = authority(inbound.activity.actor)
    except InvalidObject as error:
        raise Ignored(str(error)) from None
    if (await inbound.context.domain_policy.current()).rejects_reports(reporter_host):
        raise Ignored(f"reports from {reporter_host} are rejected by a domain block")
    flag = parse_flag(inbound.document)
    uris = set(flag.object_ids)
    async with inbound.context.sessions() as session:
        accounts = (
            await session.scalars(
                select(Account).where(col(Account.uri).in_(uris), col(Account.domain).is_(None))
            )
        ).all()
        posts = (
            await session.scalars(select(Post).where(col(Post.uri).in_(uris), col(Post.local).is_(True)))
        ).all()
        target = accounts[0] if accounts else None
        if target is None and posts:
            target = await session.get(Account, posts[0].account_id)
    if target is None:
        raise Ignored("the report is about nobody of this server")
    reporter = await inbound.actor()
    await RemoteAccountService(inbound.context).report(
        reporter,
        target,
        post_ids=[post.id for post in posts if post.account_id == target.id],
        comment=flag.comment,
        uri=flag.uri,
    )


async def handle_move(inbound: Inbound) -> None:
    activity = inbound.activity
    if activity.object_id != activity.actor:
        raise Ignored("an account may only move itself")
    if activity.target_id is None:
        raise Ignored("Move without a target")
    old = await inbound.actor()
    try:
        new = await ActorResolver(inbound.context).fetch_actor(activity.target_id, refresh=True)
    except ResolveError as error:
        raise Ignored(f"the new account is not available: {error}") from None
    if new.is_local:
        raise Ignored("moves to local accounts are not supported")
    try:
        await RemoteAccountService(inbound.context).move(old, new)
    except MoveRefused as error:
        raise Ignored(str(error)) from None
