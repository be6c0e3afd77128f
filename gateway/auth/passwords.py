"""argon2id password hashing, off the event loop, with constant work for unknown users.

Verifying a login for a user that does not exist still runs one full hash against a
dummy, so response time does not reveal which usernames exist (catalog B09).
"""

from __future__ import annotations

import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError


class Passwords:
    def __init__(self, time_cost: int = 2, memory_kib: int = 19_456) -> None:
        self._hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)
        self._dummy = self._hasher.hash("not-a-real-password")

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hasher.hash, password)

    def hash_sync(self, password: str) -> str:
        return self._hasher.hash(password)

    async def verify(self, stored_hash: str | None, password: str) -> bool:
        target = stored_hash or self._dummy
        ok = await anyio.to_thread.run_sync(self._verify, target, password)
        return ok and stored_hash is not None

    def _verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False
