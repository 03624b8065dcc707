"""The ports of orders: where orders and their pending changes are kept, and their transaction."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from typing import Protocol

from services.order.domain.changes import ChangeState, OrderChange
from services.order.domain.commands import OrderCursor
from services.order.domain.model import Order
from services.order.domain.status import OrderStatus
from services.order.service_layer.ports.idempotency import IdempotencyKeys
from services.order.service_layer.ports.payments import PaymentAttempts
from services.order.service_layer.ports.pricing import PricingUnitOfWork


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


class UnitOfWork(PricingUnitOfWork, Protocol):
    """One transaction: `async with uow:` rolls back unless `await uow.commit()` ran.

    It reaches the pricing rules too: checkout prices an order's parts with them.
    """

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


type UnitOfWorkFactory = Callable[[], UnitOfWork]


class OrderCodec(Protocol):
    """Turns an order into the bytes stored as a key's response, and back."""

    def encode(self, order: Order) -> bytes:
        """The stored form of `order`."""
        ...

    def decode(self, data: bytes) -> Order:
        """The order `data` stores."""
        ...


class Subscriptions(Protocol):
    """Tells a watcher that an order changed."""

    def subscribe(self, order_id: uuid.UUID) -> AbstractAsyncContextManager[asyncio.Queue[None]]:
        """A queue that gets a token at every change of the order."""
        ...
