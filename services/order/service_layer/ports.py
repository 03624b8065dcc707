"""The ports the order service layer needs: inventory, buyers and the payment gateway.

Adapters implement them (services/order/adapters/{inventory,users,payments}.py); the service
layer depends on these protocols only.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from services.common.money import Money
from services.order.domain.model import OrderLine, ShippingAddress


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


class PaymentError(Exception):
    """The gateway did not do what was asked."""


class PaymentDeclined(PaymentError):
    """The issuer refused the charge; retrying the same card will not help."""

    def __init__(self, decline_code: str) -> None:
        super().__init__(f"payment declined: {decline_code}")
        self.decline_code = decline_code


class PaymentUnavailable(PaymentError):
    """The gateway failed or did not answer; the outcome is unknown to us."""


class PaymentTimeout(PaymentUnavailable):
    """The gateway did not answer within the timeout."""


@dataclass(frozen=True)
class Authorization:
    """Money held on the buyer's card, not yet taken."""

    authorization_id: str
    amount: Money


@dataclass(frozen=True)
class Capture:
    """Money taken from an authorisation."""

    charge_id: str
    authorization_id: str
    amount: Money


class PaymentGateway(Protocol):
    """The card processor. Every call carries an idempotency key: the same key, the same result."""

    async def authorize(self, amount: Money, token: str, idempotency_key: str) -> Authorization:
        """Hold `amount` on the card `token` stands for; raises PaymentDeclined or PaymentUnavailable."""
        ...

    async def capture(self, authorization_id: str, amount: Money, idempotency_key: str) -> Capture:
        """Take `amount` of an authorisation."""
        ...

    async def void(self, authorization_id: str, idempotency_key: str) -> None:
        """Drop an authorisation that was not captured."""
        ...

    async def refund(self, charge_id: str, amount: Money, idempotency_key: str) -> None:
        """Return `amount` of a captured charge."""
        ...

    async def find_authorization(self, idempotency_key: str) -> Authorization | None:
        """The authorisation an earlier authorize call with this key made, if it succeeded.

        None means the gateway never made one with this key; PaymentUnavailable means it
        cannot tell yet (the call is still running, or the gateway is unreachable).
        """
        ...

    async def find_capture(self, idempotency_key: str) -> Capture | None:
        """The capture an earlier capture call with this key made, if it succeeded.

        None and PaymentUnavailable mean what they mean for `find_authorization`.
        """
        ...
