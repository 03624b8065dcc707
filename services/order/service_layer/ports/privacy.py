"""The ports of privacy: a buyer's data read for their export, and erased after deletion."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from services.common.transaction import Transaction
from services.order.domain.cart import Cart
from services.order.domain.model import Order
from services.order.domain.returns import Return


@dataclass(frozen=True)
class BuyerRecords:
    """Everything the order service holds about one buyer."""

    orders: list[Order]
    returns: list[Return]
    cart: Cart


class BuyerData(Protocol):
    """A buyer's orders, returns and cart, as a whole."""

    async def read(self, buyer_id: uuid.UUID) -> BuyerRecords:
        """The buyer's orders and returns (oldest first) and their cart."""
        ...

    async def erase(self, buyer_id: uuid.UUID) -> int:
        """Erase the buyer's personal data; how many orders lost their address.

        Orders stay for the ledger with their lines, money and status; their shipping
        address keeps only the country (tax and reports need it). The cart and the
        stored answers of the buyer's idempotency keys (they copy the address) go.
        """
        ...

    async def remember_event(self, event_id: str, event_type: str, now: datetime) -> bool:
        """Record a user event as applied in this transaction; False when it already was."""
        ...


class PrivacyUnitOfWork(Transaction, Protocol):
    """One transaction over a buyer's data."""

    @property
    def buyer_data(self) -> BuyerData:
        """The buyer's data, inside the transaction."""
        ...


type PrivacyUnitOfWorkFactory = Callable[[], PrivacyUnitOfWork]
