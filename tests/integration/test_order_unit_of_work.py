"""The order unit of work on real PostgreSQL: a full pool answers UNAVAILABLE, never waits on."""

from __future__ import annotations

import asyncio
import uuid
from typing import override

import asyncpg
import pytest

from services.common import postgres
from services.common.errors import Unavailable
from services.common.postgres import PooledConnection
from services.order.adapters.postgres.unit_of_work import PostgresUnitOfWork, create_pool
from tests.support.order import MIGRATIONS
from tests.support.servers import Backends


async def test_a_pool_with_no_free_connection_answers_unavailable(backends: Backends) -> None:
    pool = await create_pool(backends.database_url("orders_uow", MIGRATIONS), max_size=1)
    try:
        async with PostgresUnitOfWork(pool, acquire_timeout=0.2):
            with pytest.raises(Unavailable) as raised:
                async with PostgresUnitOfWork(pool, acquire_timeout=0.2):
                    pass
        assert raised.value.reason == "DATABASE_BUSY"
        async with PostgresUnitOfWork(pool, acquire_timeout=0.2) as work:  # free again
            assert await work.orders.get(uuid.uuid4()) is None
    finally:
        await pool.close()


class _BeginFails(PostgresUnitOfWork):
    """A unit of work whose BEGIN fails: its connection is already inside a transaction."""

    @override
    async def _acquire(self) -> PooledConnection:
        connection = await super()._acquire()
        await connection.execute("BEGIN")
        return connection


async def test_a_transaction_that_fails_to_begin_gives_its_connection_back(
    backends: Backends,
) -> None:
    pool = await create_pool(
        backends.database_url("orders_uow", MIGRATIONS), max_size=1, acquire_timeout=0.5
    )
    try:
        for _ in range(3):  # a leaked connection would leave the next one DATABASE_BUSY
            with pytest.raises(asyncpg.InterfaceError):
                async with _BeginFails(pool):
                    pass
        async with PostgresUnitOfWork(pool) as work:
            assert await work.orders.get(uuid.uuid4()) is None
    finally:
        pool.terminate()  # not close(): a leaked connection would make it wait forever


async def test_a_released_connection_skips_the_reset_round_trip_unless_asked(
    backends: Backends,
) -> None:
    url = backends.database_url("orders_uow", MIGRATIONS)
    for session_state, survives in ((False, True), (True, False)):
        pool = await postgres.create_pool(url, max_size=1, session_state=session_state)
        try:
            async with pool.acquire() as connection:
                await connection.execute("SET application_name = 'left behind'")
            async with pool.acquire() as connection:
                name = await connection.fetchval("SHOW application_name")
                # An open transaction is still rolled back on release, reset or not.
                await connection.execute("BEGIN")
            async with pool.acquire() as connection:
                assert not connection.is_in_transaction()
            assert (name == "left behind") is survives
        finally:
            await pool.close()


async def test_a_commit_cancelled_in_flight_ends_the_block_cancelled(backends: Backends) -> None:
    """A cancelled COMMIT leaves asyncpg's transaction unable to roll back; the block still
    ends with the cancellation, so the task stops (a worker swallowing the rollback's error
    instead kept a stopping service alive forever), and the connection is not reused.
    """
    pool = await create_pool(
        backends.database_url("orders_uow", MIGRATIONS), max_size=1, acquire_timeout=2
    )

    async def commit_cancelled_in_flight() -> None:
        async with PostgresUnitOfWork(pool) as work:
            committing = asyncio.ensure_future(work.commit())
            await asyncio.sleep(0)  # COMMIT sent, its answer not read yet
            assert not committing.done()
            committing.cancel()
            await committing

    try:
        for _ in range(3):
            with pytest.raises(asyncio.CancelledError):
                await commit_cancelled_in_flight()
        async with PostgresUnitOfWork(pool) as work:  # the pool still serves
            assert await work.orders.get(uuid.uuid4()) is None
    finally:
        pool.terminate()
