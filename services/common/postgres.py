"""PostgreSQL connection pools whose every wait is bounded: connect, acquire and statement."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, override

import asyncpg
from asyncpg.pool import PoolAcquireContext

type Connection = asyncpg.Connection[asyncpg.Record]

if TYPE_CHECKING:  # the pool is generic in asyncpg's stubs only
    _Pool = asyncpg.Pool[asyncpg.Record]
else:
    _Pool = asyncpg.Pool


class BoundedPool(_Pool):
    """An asyncpg pool whose `acquire()` gives up after a default timeout.

    Without it, a stalled database or an exhausted pool makes every caller wait forever;
    with it, the caller gets a TimeoutError raised through asyncpg, which the chassis
    answers as UNAVAILABLE.
    """

    def __init__(self, *args: Any, acquire_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acquire_timeout = acquire_timeout

    @override
    def acquire(self, *, timeout: float | None = None) -> PoolAcquireContext[asyncpg.Record]:
        return super().acquire(timeout=self.acquire_timeout if timeout is None else timeout)


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    acquire_timeout: float = 5.0,
    command_timeout: float = 10.0,
    connect_timeout: float = 5.0,
    init: Callable[[Connection], Awaitable[None]] | None = None,
) -> BoundedPool:
    """Open a pool; the caller closes it.

    Args:
        dsn: The database URL.
        min_size: Connections kept open.
        max_size: Connections at most.
        acquire_timeout: Seconds a caller waits for a free connection.
        command_timeout: Seconds a statement may run (a stalled server never answers).
        connect_timeout: Seconds a new connection may take to open.
        init: Run on every new connection (codecs, settings).
    """
    pool = BoundedPool(
        dsn,
        acquire_timeout=acquire_timeout,
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        init=init,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        command_timeout=command_timeout,
        timeout=connect_timeout,
    )
    await pool  # opens min_size connections, as asyncpg.create_pool does
    return pool
