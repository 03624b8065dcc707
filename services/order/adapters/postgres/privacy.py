"""A buyer's data in the order database, read for their export and erased after deletion."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import override

from services.common import postgres
from services.common.envelope import DataKeys
from services.order.adapters.postgres.cart import PostgresCarts
from services.order.adapters.postgres.orders import OrderRepository
from services.order.adapters.postgres.returns import PostgresReturns
from services.order.adapters.postgres.unit_of_work import Connection, OrderDatabaseUnitOfWork
from services.order.domain.commands import OrderCursor
from services.order.domain.model import Order
from services.order.service_layer.ports.privacy import BuyerRecords

_PAGE = 500


class PostgresBuyerData:
    """The orders, returns and cart tables, seen per buyer."""

    def __init__(self, connection: Connection, keys: DataKeys) -> None:
        self._db = connection
        self._orders = OrderRepository(connection, keys)
        self._returns = PostgresReturns(connection)
        self._carts = PostgresCarts(connection)

    async def read(self, buyer_id: uuid.UUID) -> BuyerRecords:
        """The buyer's orders and returns (oldest first) and their cart."""
        orders: list[Order] = []
        after: OrderCursor | None = None
        while True:
            page = await self._orders.list_for_buyer(
                buyer_id, limit=_PAGE, after=after, status=None
            )
            orders.extend(page)
            if len(page) < _PAGE:
                break
            after = OrderCursor(page[-1].created_at, page[-1].order_id)
        orders.reverse()
        return BuyerRecords(
            orders=orders,
            returns=await self._returns.for_buyer(buyer_id),
            cart=await self._carts.get(buyer_id),
        )

    async def erase(self, buyer_id: uuid.UUID) -> int:
        """Blank the buyer's addresses but the country, drop their cart and stored answers."""
        # With neither the sealed nor the legacy plaintext address, an order reads as its
        # country alone (kept in clear for tax and reports).
        status = await self._db.execute(
            "UPDATE orders SET shipping_address = NULL, shipping_address_sealed = NULL "
            "WHERE buyer_id = $1 "
            "AND (shipping_address IS NOT NULL OR shipping_address_sealed IS NOT NULL)",
            buyer_id,
        )
        await self._db.execute("DELETE FROM carts WHERE buyer_id = $1", buyer_id)
        await self._db.execute(
            "DELETE FROM idempotency_keys WHERE buyer_id = $1 AND state = 'completed'", buyer_id
        )
        return int(status.split()[-1])

    async def remember_event(self, event_id: str, event_type: str, now: datetime) -> bool:
        """Record a user event as applied in this transaction; False when it already was."""
        inserted = await self._db.fetchval(
            "INSERT INTO processed_user_events (event_id, event_type, processed_at) "
            "VALUES ($1, $2, $3) ON CONFLICT (event_id) DO NOTHING RETURNING true",
            event_id,
            event_type,
            now,
        )
        return bool(inserted)


class PostgresPrivacyUnitOfWork(OrderDatabaseUnitOfWork):
    """One transaction over a buyer's data; rolled back unless committed."""

    buyer_data: PostgresBuyerData

    @override
    def _bind(self, connection: postgres.PooledConnection) -> None:
        self.buyer_data = PostgresBuyerData(connection, self.data_keys)
