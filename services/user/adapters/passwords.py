"""Password hashing with argon2id, run in worker threads so the event loop keeps serving."""

from __future__ import annotations

import asyncio

import argon2
from argon2.exceptions import InvalidHashError, VerificationError


class Argon2PasswordHasher:
    """argon2-cffi's PasswordHasher (argon2id, RFC 9106 low-memory profile by default)."""

    def __init__(self, hasher: argon2.PasswordHasher | None = None) -> None:
        self._hasher = hasher or argon2.PasswordHasher()

    async def hash(self, password: str) -> str:
        """A salted hash of `password` in PHC string form."""
        return await asyncio.to_thread(self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether `password` matches `password_hash`; a corrupt hash never matches."""
        try:
            return await asyncio.to_thread(self._hasher.verify, password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with other parameters (or another variant) than now."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True
