"""The unit-of-work port the handlers run their transactions through."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Protocol, Self

from services.order.domain.commands import OrderCursor
from services.order.domain.idempotency import IdempotencyRecord, StoredError
from services.order.domain.model import Order, OrderStatus


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
        self, buyer_id: uuid.UUID, key: str, fingerprint: bytes
    ) -> IdempotencyRecord | None:
        """Take the key; None when taken now, else the record already there."""
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
