"""The ports of the cart: the catalog it prices from, where carts are kept, the checkout it calls."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Protocol

from services.common.transaction import Transaction
from services.order.domain.cart import Cart, CheckoutOutcome, ProductQuote
from services.order.domain.commands import PlaceOrder
from services.order.domain.model import Order


class Catalog(Protocol):
    """What the product service sells now, read without reserving anything.

    A product that is not on sale (a draft, unpublished, archived or unknown id) is left
    out of the answer; a product service that is down or slow raises Unavailable (reason
    INVENTORY_UNAVAILABLE).
    """

    async def quote(self, product_ids: Sequence[str]) -> dict[str, ProductQuote]:
        """Today's price and stock of each product on sale among `product_ids`."""
        ...


class Carts(Protocol):
    """Where the buyers' carts are kept."""

    async def get(self, buyer_id: uuid.UUID, *, for_update: bool = False) -> Cart:
        """The buyer's cart (empty when they never had one); `for_update` locks it."""
        ...

    async def save(self, cart: Cart) -> None:
        """Write the cart's lines and checkout hold."""
        ...


class CheckoutRecords(Protocol):
    """Where the checkout of an idempotency key stands, from the key's durable record."""

    async def outcome(self, buyer_id: uuid.UUID, key: str) -> tuple[CheckoutOutcome, bytes | None]:
        """The outcome of the buyer's key and the request fingerprint stored with it."""
        ...


class CartUnitOfWork(Transaction, Protocol):
    """One transaction over the carts: `async with uow:` rolls back unless committed."""

    @property
    def carts(self) -> Carts:
        """The carts, inside the transaction."""
        ...

    @property
    def checkouts(self) -> CheckoutRecords:
        """The outcomes of checkout keys, inside the transaction."""
        ...


type CartUnitOfWorkFactory = Callable[[], CartUnitOfWork]


class OrderPlacer(Protocol):
    """The checkout saga of CreateOrder: places an order exactly once per idempotency key."""

    async def place_order(self, command: PlaceOrder, *, wait_seconds: float) -> Order:
        """Place the order, or replay the outcome of the first request with the same key."""
        ...
