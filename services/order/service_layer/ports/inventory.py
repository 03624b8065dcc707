"""The port of stock: the product service's reservations, and the lines it prices."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from services.common.money import Money
from services.order.domain.model import OrderLine


@dataclass(frozen=True)
class PricedLine:
    """A reserved line with the catalog's price snapshot."""

    product_id: str
    seller_id: str
    title: str
    quantity: int
    unit_price: Money


class Inventory(Protocol):
    """Stock reservations for orders; every call is idempotent by order id.

    Business refusals raise FailedPrecondition, NotFound or InvalidArgument; a product
    service that is down or slow raises Unavailable (reason INVENTORY_UNAVAILABLE).
    """

    async def reserve(
        self, order_id: uuid.UUID, lines: Sequence[OrderLine], *, checkout_id: str = ""
    ) -> list[PricedLine]:
        """Reserve every line or none, and return them priced.

        `checkout_id` ties the reservation to the checkout attempt: the product service
        releases the attempt's earlier reservation that never became an order.
        """
        ...

    async def commit(self, order_id: uuid.UUID) -> None:
        """Turn the order's reservation into a sale."""
        ...

    async def release(self, order_id: uuid.UUID) -> None:
        """Return the order's reserved units to available stock."""
        ...
