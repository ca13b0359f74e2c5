"""The viewer: who is asking, built once per request and handed to the services."""

from __future__ import annotations

import pytest

from app.models import Role
from app.services.errors import Forbidden
from app.services.staff import StaffService
from app.services.viewer import Viewer, person_viewer
from tests.lab import Instance
from tests.web.helpers import make_user


async def test_a_person_acts_as_their_account_and_the_organisations_they_post_for(
    instance: Instance,
) -> None:
    admin_user, _admin = await make_user(instance, "root", role=Role.ADMIN)
    user, alice = await make_user(instance, "alice")
    _org_user, org = await make_user(instance, "knnktv", organization=True)
    _other_user, other = await make_user(instance, "otherorg", organization=True)
    await StaffService(instance.context).grant_delegate(org.id, user.id, by=admin_user)

    viewer = await person_viewer(instance.context, user, alice)
    assert viewer.account is alice and viewer.user is user and not viewer.is_admin
    assert viewer.acting_ids == {alice.id, org.id}
    assert viewer.may_act_as(org.id) and not viewer.may_act_as(other.id)
    with pytest.raises(Forbidden):
        viewer.require_act_as(other)
    with pytest.raises(Forbidden):
        viewer.require_admin()

    # A token granted to act as the organisation does everything as it, and nothing as alice.
    as_org = await person_viewer(instance.context, user, alice, acting_as=org, scopes=frozenset({"read"}))
    assert as_org.account is org and as_org.user is user
    assert as_org.acting_ids == {org.id}
    assert as_org.has_scope("read:statuses") and not as_org.has_scope("write:statuses")
    with pytest.raises(Forbidden, match="outside the authorized scopes"):
        as_org.require_scope("write")
    with pytest.raises(Forbidden):
        await person_viewer(instance.context, user, alice, acting_as=other)

    admin = await person_viewer(instance.context, admin_user, _admin)
    assert admin.is_admin and not admin.may_act_as(alice.id)


def test_nobody_system_and_follow_scope() -> None:
    nobody = Viewer.nobody()
    assert nobody.account is None and not nobody.may_act_as(1) and not nobody.is_person
    assert Viewer.system().may_act_as(1) and Viewer.system().is_admin
    follow = Viewer(scopes=frozenset({"follow"}))
    assert follow.has_scope("write:blocks") and not follow.has_scope("write:statuses")
