"""The storage the handlers need, as protocols the MongoDB adapters implement."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from services.product.domain.commands import SearchFilter, SearchPage
from services.product.domain.model import (
    PricedItem,
    Product,
    Reservation,
    ReservationLine,
    ReservationState,
)


class ProductRepository(Protocol):
    """Stores products and answers catalog reads."""

    async def add(self, product: Product) -> None:
        """Store a new product."""
        ...

    async def get(self, product_id: str) -> Product | None:
        """The product with this id, or None."""
        ...

    async def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]:
        """The products among `product_ids` that exist, by id."""
        ...

    async def search(self, search: SearchFilter, *, offset: int, limit: int) -> SearchPage:
        """One page of the published products matching `search`."""
        ...


class HoldOutcome(StrEnum):
    """What happened when an order tried to hold units of one product."""

    HELD = "held"
    OUT_OF_STOCK = "out_of_stock"
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class HoldResult:
    """The outcome of a hold and, when held, the product as it was then (for its price)."""

    outcome: HoldOutcome
    product: Product | None = None


class StockStore(Protocol):
    """Moves units of one product between available, reserved and sold, once per order."""

    async def hold(self, product_id: str, order_id: str, quantity: int) -> HoldResult:
        """Move `quantity` available units to reserved for the order, unless already done."""
        ...

    async def unhold(self, product_id: str, order_id: str) -> None:
        """Give the order's held units back to available; nothing when it holds none."""
        ...

    async def sell_hold(self, product_id: str, order_id: str) -> None:
        """Take the order's held units out of stock; nothing when it holds none."""
        ...


class ReservationStore(Protocol):
    """Keeps one reservation document per order and its state transitions."""

    async def claim(
        self, order_id: str, lines: Sequence[ReservationLine], *, lease_seconds: float
    ) -> Reservation | None:
        """Create the order's pending reservation; None when created, else the existing one."""
        ...

    async def take_over(self, order_id: str, *, lease_seconds: float) -> bool:
        """Claim a pending reservation whose lease expired (its caller died); True when won."""
        ...

    async def get(self, order_id: str) -> Reservation | None:
        """The order's reservation, or None."""
        ...

    async def mark_reserved(self, order_id: str, items: Sequence[PricedItem]) -> None:
        """Record that every line is held, with the prices promised."""
        ...

    async def abandon(self, order_id: str) -> None:
        """Forget a pending reservation whose lines could not all be held."""
        ...

    async def transition(
        self,
        order_id: str,
        *,
        from_states: Sequence[ReservationState],
        to_state: ReservationState,
    ) -> Reservation | None:
        """Move the reservation to `to_state` if it is in one of `from_states`; None if not."""
        ...
