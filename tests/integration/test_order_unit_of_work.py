"""The order unit of work on real PostgreSQL: a full pool answers UNAVAILABLE, never waits on."""

from __future__ import annotations

import uuid

import pytest

from services.common.errors import Unavailable
from services.order.adapters.repository import PostgresUnitOfWork, create_pool
from tests.contract.test_order_service import MIGRATIONS
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
