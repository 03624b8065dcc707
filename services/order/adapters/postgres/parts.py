"""PostgreSQL storage of an order's seller parts: written once at placement, never changed."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from services.common import postgres
from services.common.money import Money
from services.order.domain.model import Order
from services.order.domain.pricing import SellerPart

type Connection = postgres.AnyConnection


async def insert_parts(db: Connection, order: Order) -> None:
    """Write the parts of a newly placed order (a free, untaxed one per seller if unpriced)."""
    await db.executemany(
        """
        INSERT INTO order_parts (order_id, seller_id, subtotal_minor, shipping_minor,
                                 tax_minor, total_minor)
        VALUES ($1, $2, $3, $4, $5, $6)
        """,
        [
            (
                order.order_id,
                p.seller_id,
                p.subtotal.minor,
                p.shipping.minor,
                p.tax.minor,
                p.total.minor,
            )
            for p in order.seller_parts
        ],
    )


async def load_parts(
    db: Connection, ids: Sequence[uuid.UUID], currency: dict[uuid.UUID, str]
) -> dict[uuid.UUID, list[SellerPart]]:
    """The parts of each order in `ids`, by seller id, in one query."""
    parts: dict[uuid.UUID, list[SellerPart]] = {i: [] for i in ids}
    for r in await db.fetch(
        "SELECT * FROM order_parts WHERE order_id = ANY($1::uuid[]) ORDER BY order_id, seller_id",
        list(ids),
    ):
        money = currency[r["order_id"]]
        parts[r["order_id"]].append(
            SellerPart(
                seller_id=r["seller_id"],
                subtotal=Money(r["subtotal_minor"], money),
                shipping=Money(r["shipping_minor"], money),
                tax=Money(r["tax_minor"], money),
            )
        )
    return parts
