"""The instance's VAPID key pair (RFC 8292), which signs every Web Push message.

Made once and kept in the database (an instance setting), so that every process, and a restored
backup, signs with the key the apps were given; loaded once per process.
"""

from __future__ import annotations

import asyncio
import base64

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from py_vapid import Vapid02

from app.db import SessionFactory, dialect_insert
from app.models import InstanceSetting

VAPID_SETTING = "web_push.vapid_private_key"


class VapidKeys:
    def __init__(self) -> None:
        self._key: Vapid02 | None = None
        self._lock = asyncio.Lock()

    async def key(self, sessions: SessionFactory) -> Vapid02:
        """The key pair, made on first use; processes starting together agree on one."""
        if self._key is not None:
            return self._key
        async with self._lock:
            if self._key is None:
                self._key = await _load_or_make(sessions)
        return self._key

    async def public_key(self, sessions: SessionFactory) -> str:
        """What apps pass to the push service (`vapid_key`): the P-256 point in base64url."""
        point = (await self.key(sessions)).public_key.public_bytes(
            Encoding.X962, PublicFormat.UncompressedPoint
        )
        return base64.urlsafe_b64encode(point).rstrip(b"=").decode()


async def _load_or_make(sessions: SessionFactory) -> Vapid02:
    async with sessions() as session:
        row = await session.get(InstanceSetting, VAPID_SETTING)
        if row is None:
            made = Vapid02()
            made.generate_keys()
            await session.execute(
                dialect_insert(session, InstanceSetting)
                .values(key=VAPID_SETTING, value=made.private_pem().decode())
                .on_conflict_do_nothing()
            )
            await session.commit()
            row = await session.get(InstanceSetting, VAPID_SETTING, populate_existing=True)
        assert row is not None
        return Vapid02.from_pem(row.value.encode())


__all__ = ["VapidKeys"]
