"""Password hashing with argon2id, on a few dedicated threads so the event loop keeps serving."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import argon2
from argon2.exceptions import InvalidHashError, VerificationError

# Hashing threads run at a lower priority (nice +10) than the event loops of
# this and every other process on the host: a burst of sign-ins then takes the CPU the
# reads leave, instead of the CPU the reads need.
HASHING_NICENESS = 10


def _lower_priority() -> None:
    """Raise this thread's nice value; argon2's lane threads it starts inherit it (Linux)."""
    # Not on Linux, or not allowed: hashing still works, at normal priority.
    with contextlib.suppress(AttributeError, OSError):
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread) + HASHING_NICENESS
        os.setpriority(os.PRIO_PROCESS, thread, min(niceness, 19))


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class Argon2PasswordHasher:
    """argon2-cffi's PasswordHasher (argon2id, RFC 9106 low-memory profile by default).

    Hashes run on their own executor with one thread per usable core, never on the loop's
    default executor: there, a burst of sign-ins took every worker thread (up to cores + 4,
    each verify running several lanes) and the machine's whole CPU, and every other call
    of the service waited behind them. More threads than cores do not verify faster; they
    only queue inside the kernel instead of here. The threads also run at a lower priority,
    so the reads of every process on the host go first.
    """

    def __init__(
        self, hasher: argon2.PasswordHasher | None = None, *, max_workers: int | None = None
    ) -> None:
        self._hasher = hasher or argon2.PasswordHasher()
        self._executor = ThreadPoolExecutor(
            max_workers=max_workers or usable_cores(),
            thread_name_prefix="argon2",
            initializer=_lower_priority,
        )

    async def hash(self, password: str) -> str:
        """A salted hash of `password` in PHC string form."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._hasher.hash, password)

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether `password` matches `password_hash`; a corrupt hash never matches."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, self._hasher.verify, password_hash, password
            )
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with other parameters (or another variant) than now."""
        try:
            return self._hasher.check_needs_rehash(password_hash)
        except InvalidHashError:
            return True

    def close(self) -> None:
        """Stop the hashing threads once the queued hashes are done."""
        self._executor.shutdown(wait=False, cancel_futures=True)
