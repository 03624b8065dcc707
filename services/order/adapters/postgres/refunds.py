"""PostgreSQL storage of an order's refunds and the refunded total on its captured payment."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from services.common import postgres
from services.common.money import Money
from services.order.domain.model import Order, Refund

type Connection = postgres.AnyConnection


async def insert_refunds(db: Connection, order: Order) -> None:
    """Write the order's refunds made since it was loaded."""
    if not order.unsaved_refunds:
        return
    await db.executemany(
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
    await db.execute(
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


async def load_refunds(db: Connection, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[Refund]]:
    """The refunds of each order in `ids`, oldest first, in one query."""
    refunds: dict[uuid.UUID, list[Refund]] = {i: [] for i in ids}
    for r in await db.fetch(
        "SELECT * FROM refunds WHERE order_id = ANY($1::uuid[]) ORDER BY created_at, id",
        list(ids),
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
    return refunds
