"""Passwords: the rule a new one must meet, and argon2id hashing off the event loop.

Hashing costs tens of milliseconds on purpose, so it runs in a thread.
"""

from __future__ import annotations

import asyncio
import functools
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
# How much of zxcvbn's ranked list of leaked passwords is refused: the 10,000 most common, which
# is what attackers try first (NIST SP 800-63B asks to refuse "commonly-used" passwords).
COMMON_PASSWORDS_REFUSED = 10_000
# argon2id with argon2-cffi's defaults, RFC 9106's second recommended option: 64 MiB, 3 passes,
# 4 lanes (~0.2 s a hash on a small server). A hash keeps its parameters, so verifying an older
# one uses the parameters it was made with. (The tests swap in a cheap one; tests/conftest.py.)
HASHER = PasswordHasher()


@functools.cache
def _common_passwords() -> frozenset[str]:
    # zxcvbn's list is the maintained one (xato's 10 million leaked passwords, ranked by how often
    # they occur) and ships inside a small pure-Python package; loaded once, on first use.
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(FREQUENCY_LISTS["passwords"][:COMMON_PASSWORDS_REFUSED])


def is_common_password(password: str) -> bool:
    return password.lower() in _common_passwords()


def password_problem(password: str) -> str | None:
    """Why `password` may not be set on a login, or None if it may: the one rule for every surface."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"the password must have at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"the password may have at most {MAX_PASSWORD_LENGTH} characters"
    if is_common_password(password):
        return "this password is one of the most common ones and is tried first by attackers; choose another"
    return None


def generate_password() -> str:
    return secrets.token_urlsafe(15)


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(HASHER.hash, password)


async def verify_password(password_hash: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return HASHER.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    if not password_hash:
        return False
    return await asyncio.to_thread(verify)
