"""PostgreSQL storage of the ledger entries an order's capture, refunds or cancel book.

`insert_order_entries` runs inside the order repository's save, in the transaction of the
capture, refund or cancel it books: no change without its entries and no entries without
their change. The unique key (source_id, seller_id, kind) makes a replayed save book
nothing twice.
"""

from __future__ import annotations

import uuid

from services.common import postgres
from services.order.domain.ledger import Booked, LedgerEntry, order_entries
from services.order.domain.model import Order
from services.order.domain.status import PaymentStatus

type Connection = postgres.AnyConnection

# Replaying an event books nothing twice: one entry per (event, seller, kind).
INSERT_ENTRY = """
INSERT INTO ledger_entries (id, seller_id, currency, kind, amount_minor, source_id,
                            order_id, payout_id, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (source_id, seller_id, kind) DO NOTHING
"""


async def insert_order_entries(db: Connection, order: Order, *, commission_bps: int) -> None:
    """Book the ledger entries of the order's unsaved capture, refunds or cancel."""
    if not order.unsaved_refunds and not any(
        p.status in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED) for p in order.unsaved_payments
    ):
        return
    booked = await _booked(db, order.order_id)
    entries = order_entries(order, booked=booked, commission_bps=commission_bps)
    if entries:
        await db.executemany(INSERT_ENTRY, [entry_row(e) for e in entries])


async def _booked(db: Connection, order_id: uuid.UUID) -> dict[str, Booked]:
    """The sale and commission the ledger holds for each seller's part of the order."""
    rows = await db.fetch(
        """
        SELECT seller_id,
               coalesce(sum(amount_minor) FILTER (WHERE kind = 'sale'), 0) AS sale,
               -coalesce(sum(amount_minor) FILTER (WHERE kind = 'commission'), 0) AS commission
        FROM ledger_entries
        WHERE order_id = $1 AND kind IN ('sale', 'commission')
        GROUP BY seller_id
        """,
        order_id,
    )
    return {r["seller_id"]: Booked(int(r["sale"]), int(r["commission"])) for r in rows}


def entry_row(entry: LedgerEntry) -> tuple[object, ...]:
    """The INSERT_ENTRY arguments of an entry."""
    return (
        entry.entry_id,
        entry.seller_id,
        entry.amount.currency,
        entry.kind.value,
        entry.amount.minor,
        entry.source_id,
        entry.order_id,
        entry.payout_id,
        entry.created_at,
    )
