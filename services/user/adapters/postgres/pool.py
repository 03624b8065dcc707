"""The user service's connection pool and the connection type its repositories use."""

from __future__ import annotations

import asyncpg
import asyncpg.pool

from services.common import postgres

type Connection = (
    asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]
)
type Pool = asyncpg.Pool[asyncpg.Record]


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    acquire_timeout: float = 5.0,
    command_timeout: float = 10.0,
) -> Pool:
    """A connection pool whose waits are bounded (the chassis's); the caller closes it."""
    return await postgres.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        acquire_timeout=acquire_timeout,
        command_timeout=command_timeout,
    )
