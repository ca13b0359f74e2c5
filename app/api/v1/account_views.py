"""Account entities with the counts a profile page shows: a local account's followers and follows
are counted from its follows (a remote account's come with its actor document), for a page of
accounts in two queries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from app.api.entities.account import account_entity
from app.context import AppContext
from app.models import Account
from app.services.relationships import follow_counts


async def account_entities(context: AppContext, accounts: Sequence[Account]) -> list[dict[str, Any]]:
    counts = await follow_counts(context, [account.id for account in accounts if account.domain is None])
    entities = []
    for account in accounts:
        entity = account_entity(context, account)
        if account.id in counts:
            entity["followers_count"], entity["following_count"] = counts[account.id]
        entities.append(entity)
    return entities


async def account_with_counts(context: AppContext, account: Account) -> dict[str, Any]:
    return (await account_entities(context, [account]))[0]


__all__ = ["account_entities", "account_with_counts"]
