"""Every write Herold makes to what a kept token resolution is made of reaches the kept answer at
once (app.services.kept_callers): the paths of the web UI, the CLI and the admin pages that
test_kept_reads.py and test_oauth.py do not walk (a role, an organisation's team, a password)."""

from __future__ import annotations

from app.api.auth import caller_of_token
from app.models import Role
from app.services.accounts import AccountService
from app.services.auth import AuthService
from app.services.oauth import OAuthService, secret_hash
from app.services.staff import StaffService
from tests.lab import Instance
from tests.web.helpers import PASSWORD, make_user


async def _kept(instance: Instance, token: str) -> bool:
    return instance.context.callers.get(secret_hash(token)) is not None


async def test_a_role_change_a_team_removal_and_a_password_change_reach_the_kept_resolution(
    instance: Instance,
) -> None:
    context = instance.context
    root, _ = await make_user(instance, "root", role=Role.ADMIN)
    alice, alice_account = await make_user(instance, "alice")
    _, org = await make_user(instance, "knnktv", organization=True)
    await StaffService(context).grant_delegate(org.id, alice.id, by=root)
    oauth = OAuthService(context)
    own = await oauth.issue_personal_token(alice, scopes="read write", app_name="t", acting_as=alice_account)
    as_org = await oauth.issue_personal_token(alice, scopes="read write", app_name="t", acting_as=org)

    async def resolve(token: str) -> object:
        caller = await caller_of_token(context, token)
        assert await _kept(instance, token)
        return caller

    caller = await resolve(own)
    assert caller is not None and not caller.viewer.is_admin  # type: ignore[attr-defined]
    # A role given by an admin (the staff page): the next request is an admin's.
    await StaffService(context).set_role(alice.id, Role.ADMIN, by=root)
    assert not await _kept(instance, own)
    caller = await caller_of_token(context, own)
    assert caller is not None and caller.viewer.is_admin
    await StaffService(context).set_role(alice.id, Role.STAFF, by=root)
    caller = await caller_of_token(context, own)
    assert caller is not None and not caller.viewer.is_admin

    # Removed from the organisation's team (a bulk DELETE): the organisation's token is dead and
    # her own no longer acts for it.
    assert await resolve(as_org) is not None
    caller = await resolve(own)
    assert org.id in caller.viewer.acting_ids  # type: ignore[attr-defined]
    await StaffService(context).revoke_delegate(org.id, alice.id, by=root)
    assert not await _kept(instance, as_org) and not await _kept(instance, own)
    assert await caller_of_token(context, as_org) is None
    caller = await caller_of_token(context, own)
    assert caller is not None and org.id not in caller.viewer.acting_ids

    # A password changed in Settings, or by `herold accounts password`: nothing kept survives it.
    await resolve(own)
    await AuthService(context).change_password(alice, PASSWORD, "another long passphrase 42")
    assert not await _kept(instance, own)
    await resolve(own)
    await AccountService(context).set_password("alice", "yet another passphrase 43")
    assert not await _kept(instance, own)
