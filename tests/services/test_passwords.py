"""What a login's password becomes in the database: argon2id at the cost production pays.

Every other test hashes at argon2's lowest cost (tests/conftest.py); these use the real one."""

from __future__ import annotations

import pytest
from argon2 import Type, extract_parameters
from sqlmodel import select

from app.models import User
from app.services import auth
from app.services.accounts import AccountService
from app.services.passwords import verify_password
from tests.lab import Instance

PASSWORD = "correct horse battery staple"


@pytest.mark.real_password_hashing
async def test_a_password_is_stored_as_argon2id_at_rfc_9106s_recommended_cost(instance: Instance) -> None:
    created = await AccountService(instance.context).create_local_account("alice", password=PASSWORD)
    async with instance.context.sessions() as session:
        stored = (await session.scalars(select(User.password_hash).where(User.id == created.user.id))).one()
    assert PASSWORD not in stored
    parameters = extract_parameters(stored)
    assert parameters.type is Type.ID
    assert (parameters.memory_cost, parameters.time_cost, parameters.parallelism) == (65536, 3, 4)
    assert await verify_password(stored, PASSWORD)
    assert not await verify_password(stored, PASSWORD.replace("staple", "stable"))
    # A log-in for a name nobody has is checked against a stand-in hash that costs as much.
    assert extract_parameters(auth._DUMMY_HASH) == parameters
