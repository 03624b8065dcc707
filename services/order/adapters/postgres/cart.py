"""PostgreSQL storage of the carts, the outcome of checkout keys, and their unit of work."""

from __future__ import annotations

import uuid
from typing import Any, override

import asyncpg

from services.common import postgres
from services.common.money import Money
from services.order.adapters.postgres.unit_of_work import OrderDatabaseUnitOfWork
from services.order.domain.cart import Cart, CartLine, CheckoutHold, CheckoutOutcome
from services.order.domain.model import OrderLine

type Connection = postgres.AnyConnection


class PostgresCarts:
    """The carts and their lines (tables carts and cart_items)."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection

    async def get(self, buyer_id: uuid.UUID, *, for_update: bool = False) -> Cart:
        """The buyer's cart; an empty one when they never had one."""
        lock = " FOR UPDATE" if for_update else ""
        row = await self._db.fetchrow(f"SELECT * FROM carts WHERE buyer_id = $1{lock}", buyer_id)
        if row is None:
            if for_update:
                # Lock the buyer's cart even before it exists, so two first writes serialise.
                await self._db.execute(
                    "INSERT INTO carts (buyer_id, updated_at) VALUES ($1, now()) "
                    "ON CONFLICT (buyer_id) DO NOTHING",
                    buyer_id,
                )
                row = await self._db.fetchrow(
                    "SELECT * FROM carts WHERE buyer_id = $1 FOR UPDATE", buyer_id
                )
                assert row is not None
                return Cart(buyer_id=buyer_id, hold=_hold(row))
            return Cart(buyer_id=buyer_id)
        items = await self._db.fetch(
            "SELECT * FROM cart_items WHERE buyer_id = $1 ORDER BY position, product_id", buyer_id
        )
        return Cart(
            buyer_id=buyer_id,
            lines=[_line(item) for item in items],
            hold=_hold(row),
            updated_at=row["updated_at"] if items else None,
        )

    async def save(self, cart: Cart) -> None:
        """Write the cart's lines and its checkout hold as they are now."""
        hold = cart.hold
        await self._db.execute(
            """
            INSERT INTO carts (buyer_id, checkout_key, checkout_owner, checkout_lines,
                               checkout_lease_until, updated_at)
            VALUES ($1, $2, $3, $4, $5, coalesce($6, now()))
            ON CONFLICT (buyer_id) DO UPDATE
            SET checkout_key = $2, checkout_owner = $3, checkout_lines = $4,
                checkout_lease_until = $5, updated_at = coalesce($6, carts.updated_at)
            """,
            cart.buyer_id,
            hold.key if hold else None,
            hold.owner if hold else None,
            [{"product_id": o.product_id, "quantity": o.quantity} for o in hold.lines]
            if hold
            else None,
            hold.lease_until if hold else None,
            cart.updated_at,
        )
        await self._db.execute(
            "DELETE FROM cart_items WHERE buyer_id = $1 AND NOT (product_id = ANY($2::text[]))",
            cart.buyer_id,
            [line.product_id for line in cart.lines],
        )
        await self._db.executemany(
            """
            INSERT INTO cart_items (buyer_id, product_id, quantity, seller_id, title,
                                    added_unit_price_minor, currency, position, added_at,
                                    updated_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
            ON CONFLICT (buyer_id, product_id) DO UPDATE
            SET quantity = $3, seller_id = $4, title = $5, added_unit_price_minor = $6,
                currency = $7, position = $8, updated_at = $10
            """,
            [
                (
                    cart.buyer_id,
                    line.product_id,
                    line.quantity,
                    line.seller_id,
                    line.title,
                    line.added_unit_price.minor,
                    line.added_unit_price.currency,
                    position,
                    line.added_at,
                    line.updated_at,
                )
                for position, line in enumerate(cart.lines)
            ],
        )


class PostgresCheckoutRecords:
    """The outcome of checkout keys, read from the saga's idempotency_keys table."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection

    async def outcome(self, buyer_id: uuid.UUID, key: str) -> tuple[CheckoutOutcome, bytes | None]:
        """Where the buyer's key stands, and the request fingerprint it was claimed with."""
        row = await self._db.fetchrow(
            "SELECT state, response IS NOT NULL AS answered, request_fingerprint "
            "FROM idempotency_keys WHERE buyer_id = $1 AND key = $2",
            buyer_id,
            key,
        )
        if row is None:
            return CheckoutOutcome.ABSENT, None
        fingerprint = bytes(row["request_fingerprint"])
        if row["state"] != "completed":
            return CheckoutOutcome.RUNNING, fingerprint
        # A completed key stores either the paid order or the error it ended with.
        return (CheckoutOutcome.PLACED if row["answered"] else CheckoutOutcome.FAILED), fingerprint


class PostgresCartUnitOfWork(OrderDatabaseUnitOfWork):
    """One transaction over the carts; rolled back unless committed."""

    carts: PostgresCarts
    checkouts: PostgresCheckoutRecords

    @override
    def _bind(self, connection: postgres.PooledConnection) -> None:
        self.carts = PostgresCarts(connection)
        self.checkouts = PostgresCheckoutRecords(connection)


def _line(row: asyncpg.Record) -> CartLine:
    return CartLine(
        product_id=row["product_id"],
        quantity=row["quantity"],
        seller_id=row["seller_id"],
        title=row["title"],
        added_unit_price=Money(row["added_unit_price_minor"], row["currency"].strip()),
        added_at=row["added_at"],
        updated_at=row["updated_at"],
    )


def _hold(row: asyncpg.Record) -> CheckoutHold | None:
    if row["checkout_key"] is None:
        return None
    lines: list[dict[str, Any]] = row["checkout_lines"]
    return CheckoutHold(
        key=row["checkout_key"],
        owner=row["checkout_owner"],
        lines=tuple(OrderLine(str(o["product_id"]), int(o["quantity"])) for o in lines),
        lease_until=row["checkout_lease_until"],
    )
