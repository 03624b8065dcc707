"""PostgreSQL storage of pending order changes and of reservations still to release."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg

from services.common import postgres
from services.common.money import Money
from services.order.domain.changes import ChangeKind, ChangeState, OrderChange

type Connection = postgres.AnyConnection


class OrderChangeRepository:
    """Claims of cancels and refunds: at most one pending per order."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection

    async def claim(self, change: OrderChange) -> bool:
        """Record the change as pending; False when another change of the order is pending."""
        inserted = await self._db.fetchval(
            """
            INSERT INTO order_changes (id, order_id, kind, state, gateway_key, amount_minor,
                                       currency, actor, seller_id, reason, request_key,
                                       request_fingerprint, lease_expires_at, created_at)
            VALUES ($1, $2, $3, 'pending', $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
            ON CONFLICT (order_id) WHERE state = 'pending' DO NOTHING
            RETURNING true
            """,
            change.change_id,
            change.order_id,
            change.kind.value,
            change.gateway_key,
            change.amount.minor,
            change.amount.currency,
            change.actor,
            change.seller_id,
            change.reason,
            change.request_key,
            change.request_fingerprint,
            change.lease_expires_at,
            change.created_at,
        )
        return bool(inserted)

    async def pending_for(self, order_id: uuid.UUID) -> OrderChange | None:
        """The order's pending change, if any."""
        row = await self._db.fetchrow(
            "SELECT * FROM order_changes WHERE order_id = $1 AND state = 'pending'", order_id
        )
        return _change(row) if row else None

    async def get(self, change_id: uuid.UUID) -> OrderChange | None:
        """The change with this id."""
        row = await self._db.fetchrow("SELECT * FROM order_changes WHERE id = $1", change_id)
        return _change(row) if row else None

    async def finish(
        self, change_id: uuid.UUID, state: ChangeState, detail: str, at: datetime
    ) -> None:
        """Record how the change ended."""
        await self._db.execute(
            "UPDATE order_changes SET state = $2, detail = $3, finished_at = $4 "
            "WHERE id = $1 AND state = 'pending'",
            change_id,
            state.value,
            detail,
            at,
        )

    async def release_lease(self, change_id: uuid.UUID, at: datetime) -> None:
        """Hand a change whose outcome is unknown to the reconciler now."""
        await self._db.execute(
            "UPDATE order_changes SET lease_expires_at = $2 WHERE id = $1 AND state = 'pending'",
            change_id,
            at,
        )

    async def take_over(self, change_id: uuid.UUID, *, now: datetime, until: datetime) -> bool:
        """Lease a pending change whose lease ran out; True for the one taker that wins."""
        taken = await self._db.fetchval(
            "UPDATE order_changes SET lease_expires_at = $3 "
            "WHERE id = $1 AND state = 'pending' AND lease_expires_at < $2 RETURNING true",
            change_id,
            now,
            until,
        )
        return bool(taken)

    async def abandoned(self, *, now: datetime, limit: int) -> list[OrderChange]:
        """Pending changes whose lease ran out: their process died or gave up on the gateway."""
        rows = await self._db.fetch(
            """
            SELECT * FROM order_changes
            WHERE state = 'pending' AND lease_expires_at < $1
            ORDER BY created_at LIMIT $2
            """,
            now,
            limit,
        )
        return [_change(row) for row in rows]


class ReservationReleaseRepository:
    """Reservations of checkouts that ended without an order, still to give back."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection

    async def add(self, order_id: uuid.UUID) -> None:
        """Remember to release the reservation made for `order_id`."""
        await self._db.execute(
            "INSERT INTO reservation_releases (order_id) VALUES ($1) ON CONFLICT DO NOTHING",
            order_id,
        )

    async def due(self, *, limit: int) -> list[uuid.UUID]:
        """Reservations still to release, oldest first."""
        rows = await self._db.fetch(
            "SELECT order_id FROM reservation_releases ORDER BY created_at LIMIT $1", limit
        )
        return [row["order_id"] for row in rows]

    async def done(self, order_id: uuid.UUID) -> None:
        """Forget a reservation that was released."""
        await self._db.execute("DELETE FROM reservation_releases WHERE order_id = $1", order_id)


def _change(row: asyncpg.Record) -> OrderChange:
    return OrderChange(
        change_id=row["id"],
        order_id=row["order_id"],
        kind=ChangeKind(row["kind"]),
        gateway_key=row["gateway_key"],
        amount=Money(row["amount_minor"], row["currency"]),
        actor=row["actor"],
        seller_id=row["seller_id"],
        reason=row["reason"],
        lease_expires_at=row["lease_expires_at"],
        created_at=row["created_at"],
        request_key=row["request_key"],
        request_fingerprint=bytes(row["request_fingerprint"]),
        state=ChangeState(row["state"]),
    )
