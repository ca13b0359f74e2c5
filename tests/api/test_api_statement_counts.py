"""No N+1 in the API's main screens: the statements a page costs do not grow with its size."""

from __future__ import annotations

from sqlmodel import select

from app.models import User
from app.services.oauth import OAuthService
from tests.lab import Instance, Lab
from tests.services.test_read_model import counted_statements
from tests.web.helpers import make_user


async def test_home_public_and_notifications_grouped_or_not_cost_the_same_for_5_or_40_items(lab: Lab) -> None:
    # Without the embedded worker: its polling would be counted with the page's statements.
    instance: Instance = await lab.instance("a.test", embedded_worker=False)
    _, alice = await make_user(instance, "alice")
    _, bob = await make_user(instance, "bob")
    async with instance.context.sessions() as session:
        user = (await session.scalars(select(User).where(User.account_id == alice.id))).one()
        bob_user = (await session.scalars(select(User).where(User.account_id == bob.id))).one()
    service = OAuthService(instance.context)
    alice_auth = {
        "Authorization": "Bearer "
        + await service.issue_personal_token(user, scopes="read write", app_name="count", acting_as=alice)
    }
    bob_token = await service.issue_personal_token(
        bob_user, scopes="read write", app_name="count", acting_as=bob
    )
    for number in range(40):
        posted = await instance.client.post(
            "/api/v1/statuses", json={"status": f"post {number} #counted"}, headers=alice_auth
        )
        status_id = posted.json()["id"]
        # Each like notifies alice: forty notifications about forty posts, from bob.
        await instance.client.post(
            f"/api/v1/statuses/{status_id}/favourite", headers={"Authorization": f"Bearer {bob_token}"}
        )

    for path in ("/api/v1/timelines/home", "/api/v1/timelines/public", "/api/v1/notifications"):
        # A page of one first: the token's resolution and the reader's filters are kept from then on.
        warm = await instance.client.get(path, params={"limit": 1}, headers=alice_auth)
        assert warm.status_code == 200, warm.text[:200]
        # The first reads render the statuses (and keep them); the next are made from what was kept.
        for reading in ("rendering", "kept"):
            costs = {}
            for limit in (5, 40):
                with counted_statements(instance) as statements:
                    answer = await instance.client.get(path, params={"limit": limit}, headers=alice_auth)
                assert answer.status_code == 200 and len(answer.json()) == limit, (path, answer.text[:200])
                costs[limit] = len(statements)
            assert costs[5] == costs[40], (path, reading, costs)
        if path == "/api/v1/timelines/home":
            # The page and the reader's marks; the token's resolution and the filters were kept.
            assert costs[40] == 2, costs

    # Grouped: forty likes of forty posts make forty groups; a page of 5 or 40 costs the same.
    grouped_costs = {}
    for limit in (5, 40):
        with counted_statements(instance) as statements:
            answer = await instance.client.get(
                "/api/v2/notifications", params={"limit": limit}, headers=alice_auth
            )
        assert answer.status_code == 200 and len(answer.json()["notification_groups"]) == limit, answer.text[
            :200
        ]
        grouped_costs[limit] = len(statements)
    assert grouped_costs[5] == grouped_costs[40], grouped_costs
