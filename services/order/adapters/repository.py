"""PostgreSQL repositories of orders and idempotency keys, and the unit of work around them."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import override

import asyncpg

from services.common import postgres
from services.common.errors import Aborted, Unavailable
from services.common.money import Money
from services.order.adapters.events import event_rows
from services.order.adapters.order_changes import (
    OrderChangeRepository,
    ReservationReleaseRepository,
)
from services.order.domain.commands import OrderCursor
from services.order.domain.idempotency import IdempotencyRecord, KeyState, StoredError
from services.order.domain.model import (
    GatewayCall,
    Order,
    OrderItem,
    OrderStatus,
    PaymentAttempt,
    PaymentStatus,
    Refund,
    ShippingAddress,
    StatusChange,
)
from services.order.domain.reasons import ErrorReason

# Committed status changes are announced on this channel (payload: the order id), so
# WatchOrder pushes them as they happen instead of polling.
ORDER_CHANGES_CHANNEL = "order_changes"

type Connection = postgres.AnyConnection
type Pool = asyncpg.Pool[asyncpg.Record]


async def init_connection(connection: Connection) -> None:
    """Decode jsonb into Python values on every pooled connection."""
    await connection.set_type_codec(
        "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
    )


async def create_pool(
    database_url: str, *, max_size: int, acquire_timeout: float = 5.0
) -> postgres.BoundedPool:
    """The chassis pool (bounded waits) with the codecs the repositories rely on."""
    return await postgres.create_pool(
        database_url, max_size=max_size, acquire_timeout=acquire_timeout, init=init_connection
    )


class OrderRepository:
    """Orders with their items, payments and timeline, on one connection."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection

    async def add(self, order: Order) -> None:
        """Insert a new order and everything it holds."""
        await self._db.execute(
            """
            INSERT INTO orders (id, buyer_id, status, currency, subtotal_minor, total_minor,
                                shipping_address, created_at, updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
            """,
            order.order_id,
            order.buyer_id,
            order.status.value,
            order.currency,
            order.subtotal.minor,
            order.total.minor,
            _address_to_json(order.shipping_address),
            order.created_at,
            order.updated_at,
        )
        await self._db.executemany(
            """
            INSERT INTO order_items (order_id, product_id, seller_id, title, quantity,
                                     unit_price_minor, line_total_minor)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            """,
            [
                (
                    order.order_id,
                    item.product_id,
                    item.seller_id,
                    item.title,
                    item.quantity,
                    item.unit_price.minor,
                    item.line_total.minor,
                )
                for item in order.items
            ],
        )
        await self._write_changes(order)

    async def save(self, order: Order) -> None:
        """Write an order's changes; ABORTED when someone moved it since it was loaded."""
        updated = await self._db.fetchval(
            """
            UPDATE orders
            SET status = $2, updated_at = $3, stock_committed = $4, refunded_minor = $5
            WHERE id = $1 AND ($6::text IS NULL OR status = $6)
            RETURNING true
            """,
            order.order_id,
            order.status.value,
            order.updated_at,
            order.stock_committed,
            order.refunded.minor,
            order.loaded_status.value if order.loaded_status else None,
        )
        if not updated:
            raise Aborted(
                "the order changed while this request ran; read it again and retry",
                reason=ErrorReason.ORDER_CONCURRENTLY_MODIFIED,
            )
        for item in order.items:
            if item.shipped_at is not None:
                await self._db.execute(
                    """
                    UPDATE order_items
                    SET carrier = $3, tracking_number = $4, shipped_at = $5
                    WHERE order_id = $1 AND product_id = $2 AND shipped_at IS NULL
                    """,
                    order.order_id,
                    item.product_id,
                    item.carrier,
                    item.tracking_number,
                    item.shipped_at,
                )
        await self._write_changes(order)

    async def list_for_seller(
        self,
        seller_id: str | None,
        *,
        limit: int,
        after: OrderCursor | None,
        status: OrderStatus | None,
    ) -> list[Order]:
        """Orders holding the seller's items (every order when None), newest first."""
        rows = await self._db.fetch(
            """
            SELECT * FROM orders o
            WHERE ($1::text IS NULL OR EXISTS (
                      SELECT 1 FROM order_items i WHERE i.order_id = o.id AND i.seller_id = $1))
              AND ($2::text IS NULL OR status = $2)
              AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::uuid))
            ORDER BY created_at DESC, id DESC
            LIMIT $5
            """,
            seller_id,
            status.value if status else None,
            after.created_at if after else None,
            after.order_id if after else None,
            limit,
        )
        return await self._assemble(rows)

    async def stale(
        self,
        statuses: Sequence[OrderStatus],
        *,
        older_than: datetime,
        now: datetime,
        limit: int,
    ) -> list[uuid.UUID]:
        """Ids of orders in `statuses` left mid-saga (the reconciler's work).

        An order whose key is leased by a running saga waits for the lease to run out (a
        crash lets it lapse within seconds); any other waits until untouched since
        `older_than`.
        """
        rows = await self._db.fetch(
            """
            SELECT o.id FROM orders o
            LEFT JOIN idempotency_keys k
              ON k.order_id = o.id AND k.state = 'in_progress'
                 AND k.lease_expires_at IS NOT NULL
            WHERE o.status = ANY($1::text[])
              AND (o.status = 'pending' OR NOT o.stock_committed)
              AND CASE WHEN k.lease_expires_at IS NOT NULL THEN k.lease_expires_at < $3
                       ELSE o.updated_at < $2 END
            ORDER BY o.updated_at
            LIMIT $4
            """,
            [s.value for s in statuses],
            older_than,
            now,
            limit,
        )
        return [row["id"] for row in rows]

    async def get(self, order_id: uuid.UUID, *, for_update: bool = False) -> Order | None:
        """The order with this id, locked for the transaction when `for_update`."""
        lock = " FOR UPDATE" if for_update else ""
        row = await self._db.fetchrow(f"SELECT * FROM orders WHERE id = $1{lock}", order_id)
        if row is None:
            return None
        return (await self._assemble([row]))[0]

    async def list_for_buyer(
        self,
        buyer_id: uuid.UUID,
        *,
        limit: int,
        after: OrderCursor | None,
        status: OrderStatus | None,
    ) -> list[Order]:
        """A buyer's orders, newest first, strictly after the cursor."""
        rows = await self._db.fetch(
            """
            SELECT * FROM orders
            WHERE buyer_id = $1
              AND ($2::text IS NULL OR status = $2)
              AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::uuid))
            ORDER BY created_at DESC, id DESC
            LIMIT $5
            """,
            buyer_id,
            status.value if status else None,
            after.created_at if after else None,
            after.order_id if after else None,
            limit,
        )
        return await self._assemble(rows)

    async def _write_changes(self, order: Order) -> None:
        if order.unsaved_history:
            # The events go out in this same transaction: no change without its event.
            await self._db.executemany(
                """
                INSERT INTO outbox (event_id, order_id, event_type, payload)
                VALUES ($1, $2, $3, $4)
                """,
                event_rows(order),
            )
            await self._db.execute(
                "SELECT pg_notify($1, $2)", ORDER_CHANGES_CHANNEL, str(order.order_id)
            )
        if order.unsaved_refunds:
            await self._db.executemany(
                """
                INSERT INTO refunds (id, order_id, idempotency_key, request_fingerprint, actor,
                                     seller_id, amount_minor, currency, reason,
                                     gateway_reference, created_at)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                """,
                [
                    (
                        r.refund_id,
                        order.order_id,
                        r.idempotency_key,
                        r.request_fingerprint,
                        r.actor,
                        r.seller_id,
                        r.amount.minor,
                        r.amount.currency,
                        r.reason,
                        r.gateway_reference,
                        r.at,
                    )
                    for r in order.unsaved_refunds
                ],
            )
            # The captured payment carries the running refunded total for the API.
            await self._db.execute(
                """
                UPDATE payments SET refunded_minor = $2::bigint,
                    status = CASE WHEN $2::bigint > 0 THEN 'refunded' ELSE status END
                WHERE id = (SELECT id FROM payments WHERE order_id = $1
                            AND status IN ('captured', 'refunded')
                            ORDER BY created_at DESC, id DESC LIMIT 1)
                """,
                order.order_id,
                order.refunded.minor,
            )
        if order.unsaved_history:
            await self._db.executemany(
                """
                INSERT INTO order_status_history (order_id, from_status, to_status, actor,
                                                  reason, created_at)
                VALUES ($1, $2, $3, $4, $5, $6)
                """,
                [
                    (
                        order.order_id,
                        c.from_status.value if c.from_status else None,
                        c.to_status.value,
                        c.actor,
                        c.reason,
                        c.at,
                    )
                    for c in order.unsaved_history
                ],
            )
        if order.unsaved_payments:
            await self._db.executemany(
                """
                INSERT INTO payments (id, order_id, gateway_reference, amount_minor, currency,
                                      status, failure_reason, created_at, refunded_minor)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                """,
                [
                    (
                        p.payment_id,
                        order.order_id,
                        p.gateway_reference,
                        p.amount.minor,
                        p.amount.currency,
                        p.status.value,
                        p.failure_reason,
                        p.at,
                        p.refunded.minor if p.refunded else 0,
                    )
                    for p in order.unsaved_payments
                ],
            )
        order.mark_saved()

    async def _assemble(self, rows: Sequence[asyncpg.Record]) -> list[Order]:
        """Build whole orders from their rows with three batched queries, not three per order."""
        if not rows:
            return []
        ids = [row["id"] for row in rows]
        items: dict[uuid.UUID, list[OrderItem]] = {i: [] for i in ids}
        history: dict[uuid.UUID, list[StatusChange]] = {i: [] for i in ids}
        payments: dict[uuid.UUID, list[PaymentAttempt]] = {i: [] for i in ids}
        currency = {row["id"]: row["currency"] for row in rows}
        for r in await self._db.fetch(
            "SELECT * FROM order_items WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, product_id",
            ids,
        ):
            items[r["order_id"]].append(
                OrderItem(
                    product_id=r["product_id"],
                    seller_id=r["seller_id"],
                    title=r["title"],
                    quantity=r["quantity"],
                    unit_price=Money(r["unit_price_minor"], currency[r["order_id"]]),
                    carrier=r["carrier"],
                    tracking_number=r["tracking_number"],
                    shipped_at=r["shipped_at"],
                )
            )
        for r in await self._db.fetch(
            "SELECT * FROM order_status_history WHERE order_id = ANY($1::uuid[]) ORDER BY id",
            ids,
        ):
            history[r["order_id"]].append(
                StatusChange(
                    from_status=OrderStatus(r["from_status"]) if r["from_status"] else None,
                    to_status=OrderStatus(r["to_status"]),
                    actor=r["actor"],
                    reason=r["reason"],
                    at=r["created_at"],
                )
            )
        for r in await self._db.fetch(
            "SELECT * FROM payments WHERE order_id = ANY($1::uuid[]) ORDER BY created_at, id",
            ids,
        ):
            payments[r["order_id"]].append(
                PaymentAttempt(
                    payment_id=r["id"],
                    status=PaymentStatus(r["status"]),
                    amount=Money(r["amount_minor"], r["currency"]),
                    gateway_reference=r["gateway_reference"],
                    failure_reason=r["failure_reason"],
                    at=r["created_at"],
                    refunded=Money(r["refunded_minor"], r["currency"]),
                )
            )
        refunds: dict[uuid.UUID, list[Refund]] = {i: [] for i in ids}
        for r in await self._db.fetch(
            "SELECT * FROM refunds WHERE order_id = ANY($1::uuid[]) ORDER BY created_at, id",
            ids,
        ):
            refunds[r["order_id"]].append(
                Refund(
                    refund_id=r["id"],
                    idempotency_key=r["idempotency_key"],
                    request_fingerprint=bytes(r["request_fingerprint"]),
                    actor=r["actor"],
                    seller_id=r["seller_id"],
                    amount=Money(r["amount_minor"], r["currency"]),
                    reason=r["reason"],
                    gateway_reference=r["gateway_reference"],
                    at=r["created_at"],
                )
            )
        return [
            Order(
                order_id=row["id"],
                buyer_id=row["buyer_id"],
                items=items[row["id"]],
                shipping_address=_address_from_json(row["shipping_address"]),
                status=OrderStatus(row["status"]),
                created_at=row["created_at"],
                updated_at=row["updated_at"],
                history=history[row["id"]],
                payments=payments[row["id"]],
                refunds=refunds[row["id"]],
                stock_committed=row["stock_committed"],
                loaded_status=OrderStatus(row["status"]),
            )
            for row in rows
        ]


class IdempotencyRepository:
    """The outcome of each buyer's idempotency keys."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection

    async def claim(
        self,
        buyer_id: uuid.UUID,
        key: str,
        fingerprint: bytes,
        *,
        lease_until: datetime | None = None,
    ) -> IdempotencyRecord | None:
        """Take the key for a new request; None if taken, else the record already there."""
        inserted = await self._db.fetchval(
            """
            INSERT INTO idempotency_keys (buyer_id, key, request_fingerprint, state,
                                          lease_expires_at)
            VALUES ($1, $2, $3, 'in_progress', $4)
            ON CONFLICT (buyer_id, key) DO NOTHING
            RETURNING true
            """,
            buyer_id,
            key,
            fingerprint,
            lease_until,
        )
        if inserted:
            return None
        record = await self.get(buyer_id, key)
        if record is None:
            # The holder gave the key back between our insert and our read: try once more.
            return await self.claim(buyer_id, key, fingerprint, lease_until=lease_until)
        return record

    async def lease(self, buyer_id: uuid.UUID, key: str, until: datetime) -> None:
        """Move the lease of a key in progress to `until` (renew it, or let it lapse now)."""
        await self._db.execute(
            "UPDATE idempotency_keys SET lease_expires_at = $3 "
            "WHERE buyer_id = $1 AND key = $2 AND state = 'in_progress'",
            buyer_id,
            key,
            until,
        )

    async def get(self, buyer_id: uuid.UUID, key: str) -> IdempotencyRecord | None:
        """The record of a key, if it was used."""
        row = await self._db.fetchrow(
            "SELECT * FROM idempotency_keys WHERE buyer_id = $1 AND key = $2", buyer_id, key
        )
        if row is None:
            return None
        error = None
        if row["error_code"] is not None:
            error = StoredError(
                code=row["error_code"],
                message=row["error_message"],
                reason=row["error_reason"],
                metadata=dict(row["error_metadata"] or {}),
            )
        return IdempotencyRecord(
            request_fingerprint=bytes(row["request_fingerprint"]),
            state=KeyState(row["state"]),
            response=bytes(row["response"]) if row["response"] is not None else None,
            error=error,
            order_id=row["order_id"],
        )

    async def attach_order(self, buyer_id: uuid.UUID, key: str, order_id: uuid.UUID) -> None:
        """Note which order a key's request is placing, for reconciliation after a crash."""
        await self._db.execute(
            "UPDATE idempotency_keys SET order_id = $3, updated_at = now() "
            "WHERE buyer_id = $1 AND key = $2",
            buyer_id,
            key,
            order_id,
        )

    async def complete(self, buyer_id: uuid.UUID, key: str, response: bytes) -> None:
        """Store the successful response of a key's request."""
        await self._db.execute(
            "UPDATE idempotency_keys SET state = 'completed', response = $3, updated_at = now() "
            "WHERE buyer_id = $1 AND key = $2",
            buyer_id,
            key,
            response,
        )

    async def fail(self, buyer_id: uuid.UUID, key: str, error: StoredError) -> None:
        """Store the error a key's request ended with."""
        await self._db.execute(
            """
            UPDATE idempotency_keys
            SET state = 'completed', error_code = $3, error_message = $4, error_reason = $5,
                error_metadata = $6, updated_at = now()
            WHERE buyer_id = $1 AND key = $2
            """,
            buyer_id,
            key,
            error.code,
            error.message,
            error.reason,
            error.metadata,
        )

    async def for_order(self, order_id: uuid.UUID) -> tuple[uuid.UUID, str] | None:
        """The (buyer, key) that is placing or placed an order."""
        row = await self._db.fetchrow(
            "SELECT buyer_id, key FROM idempotency_keys WHERE order_id = $1", order_id
        )
        return (row["buyer_id"], row["key"]) if row else None

    async def stale_in_progress(
        self, *, older_than: datetime, now: datetime, limit: int
    ) -> list[tuple[uuid.UUID, str, uuid.UUID | None]]:
        """Keys in progress whose lease lapsed, or unleased since before `older_than`."""
        rows = await self._db.fetch(
            """
            SELECT buyer_id, key, order_id FROM idempotency_keys
            WHERE state = 'in_progress'
              AND CASE WHEN lease_expires_at IS NOT NULL THEN lease_expires_at < $2
                       ELSE updated_at < $1 END
            ORDER BY updated_at
            LIMIT $3
            """,
            older_than,
            now,
            limit,
        )
        return [(r["buyer_id"], r["key"], r["order_id"]) for r in rows]

    async def release(self, buyer_id: uuid.UUID, key: str) -> None:
        """Give a key back when its request left no trace, so a retry can run afresh."""
        await self._db.execute(
            "DELETE FROM idempotency_keys WHERE buyer_id = $1 AND key = $2 AND state = 'in_progress'",
            buyer_id,
            key,
        )


class PaymentAttemptRepository:
    """Every call made to the payment gateway, with its outcome."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection

    async def start(self, attempt: GatewayCall) -> None:
        """Record a call about to be made, as pending."""
        await self._db.execute(
            """
            INSERT INTO payment_attempts (id, order_id, operation, idempotency_key, amount_minor,
                                          currency, outcome, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7)
            """,
            attempt.attempt_id,
            attempt.order_id,
            attempt.operation,
            attempt.idempotency_key,
            attempt.amount.minor,
            attempt.amount.currency,
            attempt.at,
        )

    async def finish(
        self, attempt_id: uuid.UUID, outcome: str, reference: str, detail: str, at: datetime
    ) -> None:
        """Record how a call ended."""
        await self._db.execute(
            """
            UPDATE payment_attempts
            SET outcome = $2, gateway_reference = $3, detail = $4, finished_at = $5
            WHERE id = $1
            """,
            attempt_id,
            outcome,
            reference,
            detail,
            at,
        )

    async def for_order(self, order_id: uuid.UUID) -> list[GatewayCall]:
        """The calls made for an order, oldest first."""
        rows = await self._db.fetch(
            "SELECT * FROM payment_attempts WHERE order_id = $1 ORDER BY created_at, id", order_id
        )
        return [
            GatewayCall(
                attempt_id=r["id"],
                order_id=r["order_id"],
                operation=r["operation"],
                idempotency_key=r["idempotency_key"],
                amount=Money(r["amount_minor"], r["currency"]),
                at=r["created_at"],
                outcome=r["outcome"],
                gateway_reference=r["gateway_reference"],
                detail=r["detail"],
            )
            for r in rows
        ]


class PostgresUnitOfWork(postgres.PostgresUnitOfWork):
    """One transaction on one pooled connection; rolled back unless committed."""

    orders: OrderRepository
    idempotency: IdempotencyRepository
    attempts: PaymentAttemptRepository
    changes: OrderChangeRepository
    releases: ReservationReleaseRepository

    @override
    async def _acquire(self) -> postgres.PooledConnection:
        try:
            return await super()._acquire()
        except TimeoutError:
            # Every connection is busy: answer at once as retryable rather than queue on.
            raise Unavailable(
                "the order database is busy; retry shortly", reason=ErrorReason.DATABASE_BUSY
            ) from None

    @override
    def _bind(self, connection: postgres.PooledConnection) -> None:
        self.orders = OrderRepository(connection)
        self.idempotency = IdempotencyRepository(connection)
        self.attempts = PaymentAttemptRepository(connection)
        self.changes = OrderChangeRepository(connection)
        self.releases = ReservationReleaseRepository(connection)


def _address_to_json(address: ShippingAddress) -> dict[str, str]:
    return {
        "recipient_name": address.recipient_name,
        "line1": address.line1,
        "line2": address.line2,
        "city": address.city,
        "region": address.region,
        "postal_code": address.postal_code,
        "country_code": address.country_code,
        "phone_number": address.phone_number,
    }


def _address_from_json(data: dict[str, str]) -> ShippingAddress:
    return ShippingAddress(**data)
