"""Fixtures of the inbox tests: a.test with a local alice, and bob on remote.test, whose server
(inbox_peer.Peer) signs and delivers on its own.

The delivery tests talk to a different peer, one that receives (delivery_peer.Peer); they define
their own `peer`, which takes precedence over the one here.
"""

from __future__ import annotations

import pytest

from app.models import Account
from tests.federation.inbox_peer import ALICE, BOB, Peer, PeerActor, home_of_alice, rows
from tests.lab import Instance, Lab


@pytest.fixture
async def here(lab: Lab) -> Instance:
    instance, _alice = await home_of_alice(lab)
    return instance


@pytest.fixture
def peer(lab: Lab) -> Peer:
    return Peer(lab).host("remote.test")


@pytest.fixture
def bob(peer: Peer) -> PeerActor:
    return peer.actor(BOB)


@pytest.fixture
async def alice(here: Instance) -> Account:
    [found] = await rows(here, Account, Account.uri == ALICE)
    return found
