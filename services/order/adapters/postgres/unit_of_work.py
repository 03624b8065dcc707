"""The order database's pool and the unit of work that binds every repository to one transaction."""

from __future__ import annotations

import json
from typing import override

import asyncpg

from services.common import postgres
from services.common.envelope import DataKeys, Keyring
from services.common.errors import Unavailable
from services.order.adapters.postgres.changes import (
    OrderChangeRepository,
    ReservationReleaseRepository,
)
from services.order.adapters.postgres.idempotency import IdempotencyRepository
from services.order.adapters.postgres.orders import OrderRepository
from services.order.adapters.postgres.payments import PaymentAttemptRepository
from services.order.domain.ledger import DEFAULT_COMMISSION_BPS
from services.order.domain.reasons import ErrorReason

type Connection = postgres.AnyConnection
type Pool = asyncpg.Pool[asyncpg.Record]


async def init_connection(connection: Connection) -> None:
    """Decode jsonb into Python values on every pooled connection."""
    await connection.set_type_codec(
        "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
    )


async def create_pool(
    database_url: str,
    *,
    max_size: int,
    acquire_timeout: float = 5.0,
    keyring: Keyring | None = None,
) -> postgres.BoundedPool:
    """The chassis pool (bounded waits) with the codecs and the data keys the repositories use.

    The app passes the configured keyring (ORDER_DATA_KEK); tests and tools that leave it
    out get the dev keyring, as the dev-mode settings do.
    """
    return await postgres.create_pool(
        database_url,
        max_size=max_size,
        acquire_timeout=acquire_timeout,
        init=init_connection,
        data_keys=DataKeys(keyring or Keyring.dev()),
    )


class OrderDatabaseUnitOfWork(postgres.PostgresUnitOfWork):
    """A transaction on the order database: a busy pool answers DATABASE_BUSY at once."""

    @override
    async def _acquire(self) -> postgres.PooledConnection:
        try:
            return await super()._acquire()
        except TimeoutError:
            # Every connection is busy: answer at once as retryable rather than queue on.
            raise Unavailable(
                "the order database is busy; retry shortly", reason=ErrorReason.DATABASE_BUSY
            ) from None


class PostgresUnitOfWork(OrderDatabaseUnitOfWork):
    """One transaction on one pooled connection; rolled back unless committed."""

    orders: OrderRepository
    idempotency: IdempotencyRepository
    attempts: PaymentAttemptRepository
    changes: OrderChangeRepository
    releases: ReservationReleaseRepository

    def __init__(
        self,
        pool: Pool,
        *,
        acquire_timeout: float | None = None,
        commission_bps: int = DEFAULT_COMMISSION_BPS,
    ) -> None:
        """Use `pool`; captures book `commission_bps` of each seller's part as commission."""
        super().__init__(pool, acquire_timeout=acquire_timeout)
        self._commission_bps = commission_bps

    @override
    def _bind(self, connection: postgres.PooledConnection) -> None:
        self.orders = OrderRepository(
            connection, self.data_keys, commission_bps=self._commission_bps
        )
        self.idempotency = IdempotencyRepository(connection, self.data_keys)
        self.attempts = PaymentAttemptRepository(connection)
        self.changes = OrderChangeRepository(connection)
        self.releases = ReservationReleaseRepository(connection)
