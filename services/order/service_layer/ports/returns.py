"""The ports of returns: where returns are kept, beside the orders and changes they refund through."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Protocol

from services.common.transaction import Transaction
from services.order.domain.returns import Return, ReturnCursor, ReturnState
from services.order.service_layer.ports.orders import OrderChanges, Orders


class Returns(Protocol):
    """Where the buyers' returns are kept."""

    async def add(self, item: Return) -> None:
        """Insert a new return."""
        ...

    async def save(self, item: Return) -> None:
        """Write a return's state as it is now."""
        ...

    async def get(self, return_id: uuid.UUID, *, for_update: bool = False) -> Return | None:
        """The return with this id; `for_update` locks it until the transaction ends."""
        ...

    async def for_order(self, order_id: uuid.UUID) -> list[Return]:
        """Every return of an order, oldest first."""
        ...

    async def page(
        self,
        order_id: uuid.UUID,
        *,
        seller_id: str | None,
        limit: int,
        after: ReturnCursor | None,
    ) -> list[Return]:
        """An order's returns (of one seller's lines, unless None), oldest first, after the cursor."""
        ...

    async def of_seller(
        self,
        seller_id: str,
        *,
        states: tuple[ReturnState, ...],
        limit: int,
        before: ReturnCursor | None,
    ) -> list[Return]:
        """A seller's returns in `states` (every state if empty), newest first, before the cursor."""
        ...

    async def by_key(self, buyer_id: uuid.UUID, key: str) -> Return | None:
        """The return the buyer created with this idempotency key, if any."""
        ...


class ReturnUnitOfWork(Transaction, Protocol):
    """One transaction over the returns and the orders and changes they refund through."""

    @property
    def returns(self) -> Returns:
        """The returns, inside the transaction."""
        ...

    @property
    def orders(self) -> Orders:
        """The orders, inside the transaction."""
        ...

    @property
    def changes(self) -> OrderChanges:
        """The pending cancels and refunds, inside the transaction."""
        ...


type ReturnUnitOfWorkFactory = Callable[[], ReturnUnitOfWork]
