"""Each rule the services enforce, called directly (no page in between): who may act as an
organisation account, who may change what only administrators change, whose likes notify, and
how fast a person may post."""

from __future__ import annotations

import pytest
from sqlmodel import col, func, select

from app.models import DomainBlock, Favourite, Notification, Post, Role
from app.services.account_moderation import AccountModerationService
from app.services.domain_blocks import DomainBlockService
from app.services.errors import Forbidden, NotFound, RateLimited
from app.services.follow_requests import FollowRequestService
from app.services.following import FollowingService
from app.services.instance import DeliveryStatusService, InstanceAbout, InstanceService
from app.services.posting import PostingService
from app.services.profile_settings import ProfileChanges, ProfileSettingsService
from app.services.rate_limits import RateLimiter
from app.services.staff import StaffService
from app.services.viewer import Viewer, person_viewer
from tests.federation.delivery_helpers import local_account
from tests.lab import Instance
from tests.web.helpers import make_user


async def count(instance: Instance, model: type, *conditions: object) -> int:
    async with instance.context.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*conditions)) or 0)  # type: ignore[arg-type]


async def test_only_the_organisations_team_posts_as_it(instance: Instance) -> None:
    admin_user, _admin = await make_user(instance, "root", role=Role.ADMIN)
    member, alice = await make_user(instance, "alice")
    outsider, bob = await make_user(instance, "bob")
    _org_user, org = await make_user(instance, "knnktv", organization=True)
    await StaffService(instance.context).grant_delegate(org.id, member.id, by=admin_user)

    as_bob = PostingService(instance.context, await person_viewer(instance.context, outsider, bob))
    with pytest.raises(Forbidden):
        await as_bob.create(org, "Not mine to say")
    assert await count(instance, Post, col(Post.account_id) == org.id) == 0
    # Nor as another person, nor acting on the organisation's posts.
    with pytest.raises(Forbidden):
        await as_bob.create(alice, "Pretending")
    as_alice = PostingService(instance.context, await person_viewer(instance.context, member, alice))
    post = await as_alice.create(org, "From the team")
    assert post.account_id == org.id and post.written_by_user_id == member.id
    for action in (as_bob.delete, as_bob.pin, as_bob.unpin):
        with pytest.raises(Forbidden):
            await action(org, post.id)
    with pytest.raises(Forbidden):
        await as_bob.edit(org, post.id, "Changed")
    # Liking or boosting as someone else is acting as them too.
    with pytest.raises(Forbidden):
        await as_bob.like(alice, post.id)
    await as_alice.pin(org, post.id)


async def test_a_non_admin_cannot_block_a_domain_or_change_the_team(instance: Instance) -> None:
    admin_user, admin = await make_user(instance, "root", role=Role.ADMIN)
    staff_user, staff = await make_user(instance, "alice")
    staff_viewer = await person_viewer(instance.context, staff_user, staff)
    for attempt in (
        DomainBlockService(instance.context, staff_viewer).block("evil.example"),
        DomainBlockService(instance.context, staff_viewer).allow("friends.example"),
        DomainBlockService(instance.context, staff_viewer).import_csv("evil.example\n"),
        DomainBlockService(instance.context).block("evil.example", by=staff_user),
        StaffService(instance.context).set_role(staff_user.id, Role.ADMIN, by=staff_user),
        StaffService(instance.context).create_member("eve", by=staff_user),
        InstanceService(instance.context, staff_viewer).update_about(
            InstanceAbout(name="Taken over", description="")
        ),
        DeliveryStatusService(instance.context, staff_viewer).retry_domain("peer.example"),
        DeliveryStatusService(instance.context, staff_viewer).overview(),
    ):
        with pytest.raises(Forbidden):
            await attempt
    assert await count(instance, DomainBlock) == 0
    admin_viewer = await person_viewer(instance.context, admin_user, admin)
    await DomainBlockService(instance.context, admin_viewer).block("evil.example")
    with pytest.raises(Forbidden):
        await DomainBlockService(instance.context, staff_viewer).unblock("evil.example")
    assert await count(instance, DomainBlock) == 1


async def test_a_blocked_or_muted_account_s_like_does_not_notify(instance: Instance) -> None:
    alice = await local_account(instance, "alice")
    bob = await local_account(instance, "bob")
    carol = await local_account(instance, "carol")
    dave = await local_account(instance, "dave")
    posting = PostingService(instance.context)
    post = await posting.create(alice, "Like me, or not")
    moderation = AccountModerationService(instance.context)
    await moderation.block(alice, bob)
    await moderation.mute(alice, carol)

    with pytest.raises(NotFound):
        await posting.like(bob, post.id)
    with pytest.raises(NotFound):
        await posting.boost(bob, post.id)
    await posting.like(carol, post.id)
    await posting.boost(carol, post.id)
    await posting.like(dave, post.id)
    notified = Notification.account_id == alice.id
    assert await count(instance, Favourite, col(Favourite.post_id) == post.id) == 2
    assert await count(instance, Notification, notified, col(Notification.from_account_id) == bob.id) == 0
    assert await count(instance, Notification, notified, col(Notification.from_account_id) == carol.id) == 0
    assert await count(instance, Notification, notified, col(Notification.from_account_id) == dave.id) == 1


async def test_a_person_s_posts_are_rate_limited_per_account_the_server_s_are_not(
    instance: Instance,
) -> None:
    instance.context.rate_limits.posts_per_account = RateLimiter(2, 3 * 3600)
    user, alice = await make_user(instance, "alice")
    as_alice = PostingService(instance.context, await person_viewer(instance.context, user, alice))
    await as_alice.create(alice, "one")
    await as_alice.create(alice, "two")
    with pytest.raises(RateLimited) as refused:
        await as_alice.create(alice, "three")
    assert refused.value.headers["X-RateLimit-Remaining"] == "0" and "Retry-After" in refused.value.headers
    # The server itself (the command line, tests, tools) is not a person: no limit.
    await PostingService(instance.context, Viewer.system()).create(alice, "from the command line")
    assert await count(instance, Post, col(Post.account_id) == alice.id) == 3


async def test_following_moderation_and_profiles_act_only_as_allowed_accounts(instance: Instance) -> None:
    admin_user, _admin = await make_user(instance, "root", role=Role.ADMIN)
    member, alice = await make_user(instance, "alice")
    outsider, bob = await make_user(instance, "bob")
    _org_user, org = await make_user(instance, "knnktv", organization=True)
    await StaffService(instance.context).grant_delegate(org.id, member.id, by=admin_user)
    as_bob = await person_viewer(instance.context, outsider, bob)
    as_alice = await person_viewer(instance.context, member, alice)
    changes = ProfileChanges(display_name="Hijacked", bio="")
    for attempt in (
        FollowingService(instance.context, as_bob).follow(org, "alice@a.test"),
        FollowingService(instance.context, as_bob).unfollow(alice, "root@a.test"),
        FollowRequestService(instance.context, as_bob).approve(org, bob),
        AccountModerationService(instance.context, as_bob).block(org, alice),
        AccountModerationService(instance.context, as_bob).mute(alice, org),
        ProfileSettingsService(instance.context, viewer=as_bob).update(org.id, changes),
        ProfileSettingsService(instance.context, viewer=as_bob).set_locale(member.id, "de"),
    ):
        with pytest.raises(Forbidden):
            await attempt
    assert (await FollowingService(instance.context, as_alice).follow(org, "bob@a.test")).target.id == bob.id
    updated = await ProfileSettingsService(instance.context, viewer=as_alice).update(
        org.id, ProfileChanges(display_name="The organisation", bio="")
    )
    assert updated.display_name == "The organisation"
