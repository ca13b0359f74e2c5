"""Password hashing with argon2id, off the event loop (a hash costs tens of milliseconds on purpose)."""

from __future__ import annotations

import asyncio
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 8


def generate_password() -> str:
    return secrets.token_urlsafe(15)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(PasswordHasher().hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return PasswordHasher().verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    if not password_hash:
        return False
    return await asyncio.to_thread(verify)
