"""Password hashing with argon2id, on a few dedicated threads so the event loop keeps serving."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import argon2
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.low_level import core, error_to_str, ffi

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


# libargon2's ARGON2_DEFAULT_FLAGS and ARGON2_OK (argon2.h), as argon2-cffi's own calls use.
_DEFAULT_FLAGS = 0
_OK = 0


def _unpadded_b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def verify_on_this_thread(password_hash: str, password: str) -> bool:
    """Whether `password` matches the argon2 `password_hash`, every lane on this thread.

    The same computation and constant-time comparison as argon2-cffi's verify, with the
    hash's own parameters, except that libargon2 is told to use one thread: by default it
    starts one thread per lane for each of the hash's slices (48 thread starts for a verify
    with 4 lanes and 3 passes) and makes them wait for each other at every slice. On a
    hashing executor of one thread per core the lanes then queue on their own core instead,
    and a burst of sign-ins verifies about a fifth faster with only as many hashing threads
    as there are cores.

    Raises:
        InvalidHashError: `password_hash` is not an argon2 hash in PHC form.
        VerificationError: libargon2 refused the parameters.
    """
    parameters = argon2.extract_parameters(password_hash)
    try:
        salt_text, digest_text = password_hash.rsplit("$", 2)[1:]
        salt, expected = _unpadded_b64(salt_text), _unpadded_b64(digest_text)
    except (ValueError, binascii.Error) as error:
        raise InvalidHashError(password_hash) from error
    secret = password.encode()
    out = ffi.new("uint8_t[]", len(expected))
    pwd = ffi.new("uint8_t[]", secret)
    salt_buffer = ffi.new("uint8_t[]", salt)
    context = ffi.new(
        "argon2_context *",
        {
            "version": parameters.version,
            "out": out,
            "outlen": len(expected),
            "pwd": pwd,
            "pwdlen": len(secret),
            "salt": salt_buffer,
            "saltlen": len(salt),
            "secret": ffi.NULL,
            "secretlen": 0,
            "ad": ffi.NULL,
            "adlen": 0,
            "t_cost": parameters.time_cost,
            "m_cost": parameters.memory_cost,
            "lanes": parameters.parallelism,
            "threads": 1,
            "allocate_cbk": ffi.NULL,
            "free_cbk": ffi.NULL,
            "flags": _DEFAULT_FLAGS,
        },
    )
    result = core(context, parameters.type.value)
    if result != _OK:
        raise VerificationError(error_to_str(result))
    return hmac.compare_digest(bytes(ffi.buffer(out, len(expected))), expected)


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
    only queue inside the kernel instead of here. A verify computes its lanes on its
    executor thread (`verify_on_this_thread`), so those are the only hashing threads. The
    threads also run at a lower priority, so the reads of every process on the host go first.
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
                self._executor, verify_on_this_thread, password_hash, password
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
