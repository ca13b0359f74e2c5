"""AUTHORIZED_FETCH (Mastodon's secure mode): signed GETs only, a minimal actor for the unsigned,
and nothing at all for a blocked domain that signs."""

from __future__ import annotations

import pytest
from sqlmodel import col, select

from app.activitypub.fetcher import Fetcher, FetchError
from app.models import Account
from app.services.accounts import AccountService
from app.services.domain_blocks import DomainBlockService
from app.services.following import FollowingService
from app.services.posting import PostingService
from tests.federation.delivery_helpers import local_account, settle
from tests.lab import Lab

AS2 = {"Accept": "application/activity+json"}


async def test_secure_mode_serves_signed_fetches_only_and_still_federates(lab: Lab) -> None:
    a = await lab.instance("a.test", embedded_worker=False, authorized_fetch=True)
    b = await lab.instance("b.test", embedded_worker=False)
    alice = await local_account(a, "alice")
    bob = await local_account(b, "bob")
    post = await PostingService(a.context).create(alice, "Only for those who sign")

    minimal = (await a.client.get("/users/alice", headers=AS2)).json()
    assert minimal["publicKey"]["id"] == alice.key_id and minimal["inbox"]
    assert "name" not in minimal and "followers" not in minimal and "summary" not in minimal
    for path in [
        post.uri.removeprefix(a.base_url),
        f"{post.uri.removeprefix(a.base_url)}/activity",
        "/users/alice/followers",
        "/users/alice/outbox?page=1",
        "/users/alice/collections/featured",
    ]:
        assert (await a.client.get(path, headers=AS2)).status_code == 401, path
    # The instance actor stays readable: servers verify our signed fetches with its key.
    assert (await a.client.get("/actor", headers=AS2)).status_code == 200

    signer = await AccountService(b.context).instance_actor()
    fetcher = Fetcher(b.context, signer=signer)
    assert (await fetcher.get_json(post.uri, signed=True))["content"]
    assert (await fetcher.get_json(alice.uri, signed=True))["name"] == alice.display_name

    # Ordinary federation works against it: b signs its fetches with its instance actor.
    await FollowingService(b.context).follow(bob, "@alice@a.test")
    await settle(lab)
    async with b.context.sessions() as session:
        stored = await session.scalar(select(Account).where(col(Account.uri) == alice.uri))
    assert stored is not None and stored.followers_url  # the full actor, not the minimal one

    # A blocked domain cannot read even when it signs.
    await DomainBlockService(a.context).block("b.test")
    with pytest.raises(FetchError) as refused:
        await fetcher.get_json(post.uri, signed=True)
    assert refused.value.status == 403


async def test_without_secure_mode_public_documents_cost_no_key_fetch_but_blocks_still_hold(lab: Lab) -> None:
    a = await lab.instance("a.test", embedded_worker=False)
    b = await lab.instance("b.test", embedded_worker=False)
    alice = await local_account(a, "alice")
    post = await PostingService(a.context).create(alice, "For everyone")
    signer = await AccountService(b.context).instance_actor()
    fetcher = Fetcher(b.context, signer=signer)

    # Mastodon signs every fetch; a public document does not need to know who asked, so a does
    # not fetch b's key for it (nor could two servers set each other fetching keys this way).
    for url in (alice.uri, post.uri, f"{alice.uri}/followers", f"{alice.uri}/outbox"):
        assert await fetcher.get_json(url, signed=True)
    async with a.context.sessions() as session:
        assert await session.scalar(select(Account).where(col(Account.uri) == signer.uri)) is None

    await DomainBlockService(a.context).block("b.test")
    for url in (alice.uri, post.uri):
        with pytest.raises(FetchError) as refused:
            await fetcher.get_json(url, signed=True)
        assert refused.value.status == 403, url
