"""No N+1 in the account endpoints: followers, following, relationships and an account's statuses
cost the same statements for a few items or many."""

from __future__ import annotations

from sqlmodel import update

from app.models import Account, Follow, FollowState
from app.services.following import FollowingService
from tests.api.account_helpers import token_of
from tests.lab import Instance, Lab
from tests.services.test_read_model import counted_statements
from tests.web.helpers import make_user


async def test_account_lists_cost_the_same_for_5_or_40_items(lab: Lab) -> None:
    # Without the embedded worker: its polling would be counted with the page's statements.
    instance: Instance = await lab.instance("a.test", embedded_worker=False)
    _, star = await make_user(instance, "star")
    fans: list[Account] = []
    following = FollowingService(instance.context)
    for number in range(40):
        _, fan = await make_user(instance, f"fan{number}")
        await following.follow_account(fan, star)
        await following.follow_account(star, fan)
        fans.append(fan)
    async with instance.context.sessions() as session:
        await session.execute(update(Follow).values(state=FollowState.ACCEPTED))
        await session.commit()
    auth = await token_of(instance, star)
    for number in range(40):
        await instance.client.post("/api/v1/statuses", json={"status": f"post {number}"}, headers=auth)

    checks = {
        f"/api/v1/accounts/{star.id}/followers": lambda limit: {"limit": limit},
        f"/api/v1/accounts/{star.id}/following": lambda limit: {"limit": limit},
        f"/api/v1/accounts/{star.id}/statuses": lambda limit: {"limit": limit},
        "/api/v1/accounts/relationships": lambda limit: [("id[]", str(fan.id)) for fan in fans[:limit]],
        "/api/v1/accounts": lambda limit: [("id[]", str(fan.id)) for fan in fans[:limit]],
    }
    for path, params in checks.items():
        # A first read: the token's resolution and the reader's filters are kept from then on.
        warm = await instance.client.get(path, params=params(1), headers=auth)
        assert warm.status_code == 200, warm.text[:200]
        costs = {}
        for limit in (5, 40):
            with counted_statements(instance) as statements:
                answer = await instance.client.get(path, params=params(limit), headers=auth)
            assert answer.status_code == 200 and len(answer.json()) == limit, (path, answer.text[:200])
            costs[limit] = len(statements)
        assert costs[5] == costs[40], (path, costs)
