"""PostgreSQL storage of orders with their items and timeline; their events go out with them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime

import asyncpg

from services.common import postgres
from services.common.envelope import DataKeys
from services.common.errors import Aborted
from services.common.money import Money
from services.common.sealed_rows import SealedColumn
from services.order.adapters.events import event_rows
from services.order.adapters.postgres.ledger import insert_order_entries
from services.order.adapters.postgres.parts import insert_parts, load_parts
from services.order.adapters.postgres.payments import insert_payments, load_payments
from services.order.adapters.postgres.refunds import insert_refunds, load_refunds
from services.order.domain.commands import OrderCursor
from services.order.domain.ledger import DEFAULT_COMMISSION_BPS
from services.order.domain.model import Order, OrderItem, ShippingAddress, StatusChange
from services.order.domain.reasons import ErrorReason
from services.order.domain.status import OrderStatus

# Committed status changes are announced on this channel (payload: the order id), so
# WatchOrder pushes them as they happen instead of polling.
ORDER_CHANGES_CHANNEL = "order_changes"

type Connection = postgres.AnyConnection

# The shipping address, sealed at rest (envelope encryption) with the order id as associated
# data; its country stays in clear in shipping_country_code for tax and reports. The legacy
# plaintext jsonb column is NULL once sealed.
SEALED_ADDRESS = SealedColumn("orders", "shipping_address_sealed", ("shipping_address",))


class OrderRepository:
    """Orders with their items, payments and timeline, on one connection."""

    def __init__(
        self,
        connection: Connection,
        keys: DataKeys,
        *,
        commission_bps: int = DEFAULT_COMMISSION_BPS,
    ) -> None:
        self._db = connection
        self._keys = keys
        # The platform's commission booked on each seller's part when a payment is captured.
        self._commission_bps = commission_bps

    async def add(self, order: Order) -> None:
        """Insert a new order and everything it holds.

        The order and its items go in one statement (one round trip however many items;
        the items' foreign key is checked at the statement's end, when the order exists).
        """
        items = order.items
        await self._db.execute(
            """
            WITH placed AS (
                INSERT INTO orders (id, buyer_id, status, currency, subtotal_minor,
                                    total_minor, shipping_address_sealed,
                                    shipping_country_code, created_at, updated_at,
                                    shipping_total_minor, tax_total_minor)
                VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
            )
            INSERT INTO order_items (order_id, product_id, seller_id, title, quantity,
                                     unit_price_minor, line_total_minor)
            SELECT $1, i.product_id, i.seller_id, i.title, i.quantity, i.unit_price_minor,
                   i.line_total_minor
            FROM unnest($13::text[], $14::text[], $15::text[], $16::integer[],
                        $17::bigint[], $18::bigint[])
                 AS i(product_id, seller_id, title, quantity, unit_price_minor,
                      line_total_minor)
            """,
            order.order_id,
            order.buyer_id,
            order.status.value,
            order.currency,
            order.subtotal.minor,
            order.total.minor,
            SEALED_ADDRESS.seal(
                self._keys,
                order.order_id,
                {"shipping_address": asdict(order.shipping_address)},
            ),
            order.shipping_address.country_code,
            order.created_at,
            order.updated_at,
            order.sums.shipping.minor,
            order.sums.tax.minor,
            [item.product_id for item in items],
            [item.seller_id for item in items],
            [item.title for item in items],
            [item.quantity for item in items],
            [item.unit_price.minor for item in items],
            [item.line_total.minor for item in items],
        )
        await insert_parts(self._db, order)
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
            # The events go out in this same transaction (no change without its event),
            # with the timeline and the NOTIFY that wakes the relay and the watchers, in
            # one statement. WITH ORDINALITY keeps the identities in the changes' order.
            events = event_rows(order)
            history = order.unsaved_history
            await self._db.execute(
                """
                WITH events AS (
                    INSERT INTO outbox (event_id, order_id, event_type, payload)
                    SELECT e.event_id, $2::uuid, e.event_type, e.payload
                    FROM unnest($3::uuid[], $4::text[], $5::bytea[]) WITH ORDINALITY
                         AS e(event_id, event_type, payload, n)
                    ORDER BY e.n
                ), timeline AS (
                    INSERT INTO order_status_history (order_id, from_status, to_status,
                                                      actor, reason, created_at)
                    SELECT $2::uuid, h.from_status, h.to_status, h.actor, h.reason, h.at
                    FROM unnest($6::text[], $7::text[], $8::text[], $9::text[],
                                $10::timestamptz[]) WITH ORDINALITY
                         AS h(from_status, to_status, actor, reason, at, n)
                    ORDER BY h.n
                )
                SELECT pg_notify($1, $2::uuid::text)
                """,
                ORDER_CHANGES_CHANNEL,
                order.order_id,
                [row[0] for row in events],
                [row[2] for row in events],
                [row[3] for row in events],
                [c.from_status.value if c.from_status else None for c in history],
                [c.to_status.value for c in history],
                [c.actor for c in history],
                [c.reason for c in history],
                [c.at for c in history],
            )
        await insert_refunds(self._db, order)
        await insert_payments(self._db, order)
        # The sellers' ledger moves with the capture, refund or cancel, in this transaction.
        await insert_order_entries(self._db, order, commission_bps=self._commission_bps)
        order.mark_saved()

    async def _assemble(self, rows: Sequence[asyncpg.Record]) -> list[Order]:
        """Build whole orders from their rows with three batched queries, not three per order."""
        if not rows:
            return []
        ids = [row["id"] for row in rows]
        items: dict[uuid.UUID, list[OrderItem]] = {i: [] for i in ids}
        history: dict[uuid.UUID, list[StatusChange]] = {i: [] for i in ids}
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
        payments = await load_payments(self._db, ids)
        refunds = await load_refunds(self._db, ids)
        addresses = {row["id"]: await self._address(row) for row in rows}
        parts = await load_parts(self._db, ids, currency)
        return [
            Order(
                order_id=row["id"],
                buyer_id=row["buyer_id"],
                items=items[row["id"]],
                shipping_address=addresses[row["id"]],
                status=OrderStatus(row["status"]),
                created_at=row["created_at"],
                updated_at=row["updated_at"],
                history=history[row["id"]],
                payments=payments[row["id"]],
                refunds=refunds[row["id"]],
                parts=parts[row["id"]],
                stock_committed=row["stock_committed"],
                loaded_status=OrderStatus(row["status"]),
            )
            for row in rows
        ]

    async def _address(self, row: asyncpg.Record) -> ShippingAddress:
        sealed = row["shipping_address_sealed"]
        if sealed is None:
            if row["shipping_address"] is None:  # erased: only the country is kept
                return ShippingAddress("", "", "", row["shipping_country_code"])
            # Placed before encryption at rest and not yet backfilled.
            return ShippingAddress(**row["shipping_address"])
        opened = await SEALED_ADDRESS.open(self._keys, self._db, row["id"], sealed)
        return ShippingAddress(**opened["shipping_address"])
