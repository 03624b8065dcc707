"""MongoDB storage of reservations: one document per order and its state transitions."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.product.adapters.mongo.documents import (
    priced_item_to_doc,
    reservation_from_doc,
    reservation_to_doc,
    time_to_ms,
)
from services.product.adapters.mongo.schema import RESERVATIONS, Database
from services.product.domain.model import (
    PricedItem,
    Reservation,
    ReservationLine,
    ReservationState,
)

# The latest order id of each checkout attempt, keyed by checkout id (no extra index).
RESERVATION_CHECKOUTS = "reservation_checkouts"


class MongoReservationStore:
    """Reservations in the `reservations` collection, keyed by order id."""

    def __init__(self, db: Database) -> None:
        self._reservations = db[RESERVATIONS]
        self._checkouts = db[RESERVATION_CHECKOUTS]

    async def link_checkout(self, checkout_id: str, order_id: str, *, now: datetime) -> str | None:
        """Make `order_id` the checkout's current order; the order it replaced, if any."""
        before = await self._checkouts.find_one_and_update(
            {"_id": checkout_id},
            {"$set": {"order_id": order_id, "linked_ms": time_to_ms(now)}},
            upsert=True,
            return_document=ReturnDocument.BEFORE,
        )
        if before is None or before.get("order_id") == order_id:
            return None
        return str(before["order_id"])

    async def claim(
        self,
        order_id: str,
        lines: Sequence[ReservationLine],
        *,
        lease_seconds: float,
        now: datetime,
    ) -> Reservation | None:
        """Create the order's pending reservation; None when created, else the existing one."""
        lease = time_to_ms(now) + int(lease_seconds * 1000)
        for _ in range(3):
            try:
                await self._reservations.insert_one(
                    reservation_to_doc(order_id, tuple(lines), lease_expires_ms=lease)
                )
                return None
            except DuplicateKeyError:
                existing = await self.get(order_id)
                if existing is not None:
                    return existing
                # It was abandoned between our insert and our read: try to claim it again.
        raise RuntimeError("reservation claim kept racing with abandonment")

    async def take_over(self, order_id: str, *, lease_seconds: float, now: datetime) -> bool:
        """Claim a pending reservation whose lease expired (its caller died); True when won."""
        now_ms = time_to_ms(now)
        result = await self._reservations.update_one(
            {
                "_id": order_id,
                "state": ReservationState.PENDING.value,
                "lease_expires_ms": {"$lt": now_ms},
            },
            {"$set": {"lease_expires_ms": now_ms + int(lease_seconds * 1000)}},
        )
        return result.modified_count == 1

    async def get(self, order_id: str) -> Reservation | None:
        """The order's reservation, or None."""
        doc = await self._reservations.find_one({"_id": order_id})
        return reservation_from_doc(doc) if doc else None

    async def mark_reserved(
        self,
        order_id: str,
        items: Sequence[PricedItem],
        *,
        expires_in_seconds: float,
        now: datetime,
    ) -> None:
        """Record that every line is held, with the prices promised and when they lapse."""
        await self._reservations.update_one(
            {"_id": order_id, "state": ReservationState.PENDING.value},
            {
                "$set": {
                    "state": ReservationState.RESERVED.value,
                    "items": [priced_item_to_doc(item) for item in items],
                    "expires_ms": time_to_ms(now) + int(expires_in_seconds * 1000),
                }
            },
        )

    async def abandon(self, order_id: str) -> None:
        """Forget a pending reservation whose lines could not all be held."""
        await self._reservations.delete_one(
            {"_id": order_id, "state": ReservationState.PENDING.value}
        )

    async def transition(
        self,
        order_id: str,
        *,
        from_states: Sequence[ReservationState],
        to_state: ReservationState,
    ) -> Reservation | None:
        """Move the reservation to `to_state` if it is in one of `from_states`; None if not."""
        doc = await self._reservations.find_one_and_update(
            {"_id": order_id, "state": {"$in": [s.value for s in from_states]}},
            {"$set": {"state": to_state.value}},
            return_document=ReturnDocument.AFTER,
        )
        return reservation_from_doc(doc) if doc else None

    async def stale_pending(self, *, now: datetime, limit: int = 100) -> list[str]:
        """Orders whose pending claim outlived its lease: the reserving call died."""
        docs = await self._reservations.find(
            {"state": ReservationState.PENDING.value, "lease_expires_ms": {"$lt": time_to_ms(now)}},
            {"_id": 1},
            limit=limit,
        ).to_list()
        return [str(doc["_id"]) for doc in docs]

    async def expired(
        self, *, states: Sequence[ReservationState], now: datetime, limit: int = 100
    ) -> list[str]:
        """Orders whose reservation is in one of `states` past its expiry."""
        docs = await self._reservations.find(
            {
                "state": {"$in": [state.value for state in states]},
                "expires_ms": {"$lt": time_to_ms(now)},
            },
            {"_id": 1},
            limit=limit,
        ).to_list()
        return [str(doc["_id"]) for doc in docs]
