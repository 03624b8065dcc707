"""PostgreSQL storage of payments: an order's payment rows and every gateway call made."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from services.common import postgres
from services.common.money import Money
from services.order.domain.model import GatewayCall, Order, PaymentAttempt
from services.order.domain.status import PaymentStatus

type Connection = postgres.AnyConnection


async def insert_payments(db: Connection, order: Order) -> None:
    """Write the order's payments made since it was loaded."""
    if not order.unsaved_payments:
        return
    await db.executemany(
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


async def load_payments(
    db: Connection, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[PaymentAttempt]]:
    """The payments of each order in `ids`, oldest first, in one query."""
    payments: dict[uuid.UUID, list[PaymentAttempt]] = {i: [] for i in ids}
    for r in await db.fetch(
        "SELECT * FROM payments WHERE order_id = ANY($1::uuid[]) ORDER BY created_at, id",
        list(ids),
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
    return payments


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
