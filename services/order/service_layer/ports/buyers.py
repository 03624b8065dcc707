"""The port of buyers: the user service's checks of a buyer and their address book."""

from __future__ import annotations

import uuid
from typing import Protocol

from services.order.domain.model import ShippingAddress


class Buyers(Protocol):
    """The buyer checks of checkout.

    Refusals raise FailedPrecondition (BUYER_NOT_FOUND, BUYER_SUSPENDED) or NotFound
    (ADDRESS_NOT_FOUND); a user service that is down or slow raises Unavailable
    (reason USER_SERVICE_UNAVAILABLE).
    """

    async def check_buyer(self, buyer_id: uuid.UUID) -> None:
        """Succeed when the buyer's account exists and is not suspended."""
        ...

    async def shipping_address(self, buyer_id: uuid.UUID, address_id: uuid.UUID) -> ShippingAddress:
        """The buyer's address book entry `address_id`, after the same checks."""
        ...
