"""The unit-of-work port the handlers run their transactions through."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from services.order.domain.changes import ChangeState, OrderChange
from services.order.domain.commands import OrderCursor
from services.order.domain.idempotency import IdempotencyRecord, StoredError
from services.order.domain.model import GatewayCall, Order, OrderStatus


class Orders(Protocol):
    """Where orders are kept."""

    async def add(self, order: Order) -> None:
        """Insert a new order."""
        ...

    async def save(self, order: Order) -> None:
        """Write an order's changes."""
        ...

    async def get(self, order_id: uuid.UUID, *, for_update: bool = False) -> Order | None:
        """The order with this id."""
        ...

    async def list_for_seller(
        self,
        seller_id: str | None,
        *,
        limit: int,
        after: OrderCursor | None,
        status: OrderStatus | None,
    ) -> list[Order]:
        """Orders holding a seller's items (every order when None), newest first."""
        ...

    async def stale(
        self,
        statuses: Sequence[OrderStatus],
        *,
        older_than: datetime,
        now: datetime,
        limit: int,
    ) -> list[uuid.UUID]:
        """Orders left mid-saga: their key's lease lapsed, or unleased and untouched since `older_than`."""
        ...

    async def list_for_buyer(
        self,
        buyer_id: uuid.UUID,
        *,
        limit: int,
        after: OrderCursor | None,
        status: OrderStatus | None,
    ) -> list[Order]:
        """A buyer's orders, newest first, strictly after the cursor."""
        ...


class IdempotencyKeys(Protocol):
    """Where the outcome of each idempotency key is kept."""

    async def claim(
        self,
        buyer_id: uuid.UUID,
        key: str,
        fingerprint: bytes,
        *,
        lease_until: datetime | None = None,
    ) -> IdempotencyRecord | None:
        """Take the key (leased until `lease_until`); None when taken now, else the record."""
        ...

    async def lease(self, buyer_id: uuid.UUID, key: str, until: datetime) -> None:
        """Renew the lease of a key in progress, or let it lapse now."""
        ...

    async def get(self, buyer_id: uuid.UUID, key: str) -> IdempotencyRecord | None:
        """The record of a key."""
        ...

    async def attach_order(self, buyer_id: uuid.UUID, key: str, order_id: uuid.UUID) -> None:
        """Note the order a key is placing."""
        ...

    async def complete(self, buyer_id: uuid.UUID, key: str, response: bytes) -> None:
        """Store a successful response."""
        ...

    async def fail(self, buyer_id: uuid.UUID, key: str, error: StoredError) -> None:
        """Store a failure."""
        ...

    async def release(self, buyer_id: uuid.UUID, key: str) -> None:
        """Forget an in-progress key whose request left no trace."""
        ...

    async def for_order(self, order_id: uuid.UUID) -> tuple[uuid.UUID, str] | None:
        """The (buyer, key) placing an order."""
        ...

    async def stale_in_progress(
        self, *, older_than: datetime, now: datetime, limit: int
    ) -> list[tuple[uuid.UUID, str, uuid.UUID | None]]:
        """Keys in progress whose lease lapsed, or unleased since before `older_than`."""
        ...


class PaymentAttempts(Protocol):
    """The record of every payment gateway call."""

    async def start(self, attempt: GatewayCall) -> None:
        """Record a call about to be made."""
        ...

    async def finish(
        self, attempt_id: uuid.UUID, outcome: str, reference: str, detail: str, at: datetime
    ) -> None:
        """Record how a call ended."""
        ...

    async def for_order(self, order_id: uuid.UUID) -> list[GatewayCall]:
        """The calls made for an order."""
        ...


class OrderChanges(Protocol):
    """Claims of cancels and refunds, at most one pending per order."""

    async def claim(self, change: OrderChange) -> bool:
        """Record the change as pending; False when another change of the order is pending."""
        ...

    async def pending_for(self, order_id: uuid.UUID) -> OrderChange | None:
        """The order's pending change, if any."""
        ...

    async def get(self, change_id: uuid.UUID) -> OrderChange | None:
        """The change with this id."""
        ...

    async def finish(
        self, change_id: uuid.UUID, state: ChangeState, detail: str, at: datetime
    ) -> None:
        """Record how the change ended."""
        ...

    async def release_lease(self, change_id: uuid.UUID, at: datetime) -> None:
        """Hand a change whose outcome is unknown to the reconciler now."""
        ...

    async def take_over(self, change_id: uuid.UUID, *, now: datetime, until: datetime) -> bool:
        """Lease a pending change whose lease ran out; True for the one taker that wins."""
        ...

    async def abandoned(self, *, now: datetime, limit: int) -> list[OrderChange]:
        """Pending changes whose lease ran out."""
        ...


class ReservationReleases(Protocol):
    """Reservations of checkouts that ended without an order, still to give back."""

    async def add(self, order_id: uuid.UUID) -> None:
        """Remember to release the reservation made for `order_id`."""
        ...

    async def due(self, *, limit: int) -> list[uuid.UUID]:
        """Reservations still to release."""
        ...

    async def done(self, order_id: uuid.UUID) -> None:
        """Forget a released reservation."""
        ...


class UnitOfWork(Protocol):
    """One transaction: `async with uow:` rolls back unless `await uow.commit()` ran."""

    @property
    def orders(self) -> Orders:
        """The orders, inside the transaction."""
        ...

    @property
    def idempotency(self) -> IdempotencyKeys:
        """The idempotency keys, inside the transaction."""
        ...

    @property
    def attempts(self) -> PaymentAttempts:
        """The payment gateway calls, inside the transaction."""
        ...

    @property
    def changes(self) -> OrderChanges:
        """The pending cancels and refunds, inside the transaction."""
        ...

    @property
    def releases(self) -> ReservationReleases:
        """The reservations still to release, inside the transaction."""
        ...

    async def __aenter__(self) -> Self:
        """Begin the transaction."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Roll back what was not committed and give the connection back."""
        ...

    async def commit(self) -> None:
        """Make the writes durable."""
        ...


type UnitOfWorkFactory = Callable[[], UnitOfWork]
