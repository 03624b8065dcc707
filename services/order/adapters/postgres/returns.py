"""PostgreSQL storage of the returns, and the unit of work that binds them to the orders and changes."""

from __future__ import annotations

import uuid
from typing import Any, override

import asyncpg

from services.common import postgres
from services.common.errors import Aborted
from services.common.money import Money
from services.common.reasons import ErrorReason as CommonReason
from services.order.adapters.postgres.changes import OrderChangeRepository
from services.order.adapters.postgres.orders import OrderRepository
from services.order.adapters.postgres.unit_of_work import OrderDatabaseUnitOfWork
from services.order.domain.returns import Return, ReturnCursor, ReturnLine, ReturnState

type Connection = postgres.AnyConnection


class PostgresReturns:
    """The returns (table returns)."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection

    async def add(self, item: Return) -> None:
        """Insert a new return."""
        try:
            await self._db.execute(
                """
                INSERT INTO returns (id, order_id, buyer_id, seller_id, state, reason, lines,
                                     currency, idempotency_key, request_fingerprint,
                                     created_at, updated_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
                """,
                item.return_id,
                item.order_id,
                item.buyer_id,
                item.seller_id,
                item.state.value,
                item.reason,
                [
                    {
                        "product_id": line.product_id,
                        "quantity": line.quantity,
                        "title": line.title,
                        "unit_price_minor": line.unit_price.minor,
                    }
                    for line in item.lines
                ],
                item.currency,
                item.idempotency_key,
                item.request_fingerprint,
                item.created_at,
                item.updated_at,
            )
        except asyncpg.UniqueViolationError:
            # The same key on another order of the buyer, created at the same moment.
            raise Aborted(
                "a return with this idempotency key was created meanwhile; retry",
                reason=CommonReason.ABORTED,
            ) from None

    async def save(self, item: Return) -> None:
        """Write the return's state as it is now."""
        await self._db.execute(
            """
            UPDATE returns SET state = $2, decision_reason = $3, refund_change_id = $4,
                refund_attempts = $5, refund_amount_minor = $6, refund_failure = $7,
                updated_at = $8, decided_at = $9, received_at = $10, refunded_at = $11
            WHERE id = $1
            """,
            item.return_id,
            item.state.value,
            item.decision_reason,
            item.refund_change_id,
            item.refund_attempts,
            item.refund_amount.minor if item.refund_amount else None,
            item.refund_failure,
            item.updated_at,
            item.decided_at,
            item.received_at,
            item.refunded_at,
        )

    async def get(self, return_id: uuid.UUID, *, for_update: bool = False) -> Return | None:
        """The return with this id, locked for the transaction when `for_update`."""
        lock = " FOR UPDATE" if for_update else ""
        row = await self._db.fetchrow(f"SELECT * FROM returns WHERE id = $1{lock}", return_id)
        return _return(row) if row else None

    async def for_order(self, order_id: uuid.UUID) -> list[Return]:
        """Every return of an order, oldest first."""
        rows = await self._db.fetch(
            "SELECT * FROM returns WHERE order_id = $1 ORDER BY created_at, id", order_id
        )
        return [_return(row) for row in rows]

    async def for_buyer(self, buyer_id: uuid.UUID) -> list[Return]:
        """Every return a buyer asked for, oldest first."""
        rows = await self._db.fetch(
            "SELECT * FROM returns WHERE buyer_id = $1 ORDER BY created_at, id", buyer_id
        )
        return [_return(row) for row in rows]

    async def page(
        self,
        order_id: uuid.UUID,
        *,
        seller_id: str | None,
        limit: int,
        after: ReturnCursor | None,
    ) -> list[Return]:
        """An order's returns (one seller's, unless None), oldest first, after the cursor."""
        rows = await self._db.fetch(
            """
            SELECT * FROM returns
            WHERE order_id = $1 AND ($2::text IS NULL OR seller_id = $2)
              AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4::uuid))
            ORDER BY created_at, id LIMIT $5
            """,
            order_id,
            seller_id,
            after.created_at if after else None,
            after.return_id if after else None,
            limit,
        )
        return [_return(row) for row in rows]

    async def of_seller(
        self,
        seller_id: str,
        *,
        states: tuple[ReturnState, ...],
        limit: int,
        before: ReturnCursor | None,
    ) -> list[Return]:
        """A seller's returns in `states` (every state if empty), newest first, before the cursor."""
        rows = await self._db.fetch(
            """
            SELECT * FROM returns
            WHERE seller_id = $1 AND (cardinality($2::text[]) = 0 OR state = ANY($2::text[]))
              AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::uuid))
            ORDER BY created_at DESC, id DESC LIMIT $5
            """,
            seller_id,
            [state.value for state in states],
            before.created_at if before else None,
            before.return_id if before else None,
            limit,
        )
        return [_return(row) for row in rows]

    async def by_key(self, buyer_id: uuid.UUID, key: str) -> Return | None:
        """The return the buyer created with this idempotency key, if any."""
        row = await self._db.fetchrow(
            "SELECT * FROM returns WHERE buyer_id = $1 AND idempotency_key = $2", buyer_id, key
        )
        return _return(row) if row else None


class PostgresReturnUnitOfWork(OrderDatabaseUnitOfWork):
    """One transaction over the returns, the orders and their changes; rolled back unless committed."""

    returns: PostgresReturns
    orders: OrderRepository
    changes: OrderChangeRepository

    @override
    def _bind(self, connection: postgres.PooledConnection) -> None:
        self.returns = PostgresReturns(connection)
        self.orders = OrderRepository(connection, self.data_keys)
        self.changes = OrderChangeRepository(connection)


def _return(row: asyncpg.Record) -> Return:
    currency = row["currency"].strip()
    lines: list[dict[str, Any]] = row["lines"]
    refund_minor = row["refund_amount_minor"]
    return Return(
        return_id=row["id"],
        order_id=row["order_id"],
        buyer_id=row["buyer_id"],
        seller_id=row["seller_id"],
        lines=tuple(
            ReturnLine(
                str(line["product_id"]),
                int(line["quantity"]),
                str(line["title"]),
                Money(int(line["unit_price_minor"]), currency),
            )
            for line in lines
        ),
        reason=row["reason"],
        state=ReturnState(row["state"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        idempotency_key=row["idempotency_key"],
        request_fingerprint=bytes(row["request_fingerprint"]),
        decision_reason=row["decision_reason"],
        decided_at=row["decided_at"],
        received_at=row["received_at"],
        refunded_at=row["refunded_at"],
        refund_amount=Money(refund_minor, currency) if refund_minor is not None else None,
        refund_change_id=row["refund_change_id"],
        refund_attempts=row["refund_attempts"],
        refund_failure=row["refund_failure"],
    )
