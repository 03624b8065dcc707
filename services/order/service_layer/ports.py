"""The ports the order service layer needs: inventory, buyers, the payment gateway, the cart.

Adapters implement them (services/order/adapters/{inventory,users,payments,catalog,
postgres_cart}.py); the service layer depends on these protocols only.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self

from services.common.money import Money
from services.order.domain.cart import Cart, CheckoutOutcome, ProductQuote
from services.order.domain.commands import PlaceOrder
from services.order.domain.model import Order, OrderLine, ShippingAddress


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


class CartUnitOfWork(Protocol):
    """One transaction over the carts: `async with uow:` rolls back unless committed."""

    @property
    def carts(self) -> Carts:
        """The carts, inside the transaction."""
        ...

    @property
    def checkouts(self) -> CheckoutRecords:
        """The outcomes of checkout keys, inside the transaction."""
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


type CartUnitOfWorkFactory = Callable[[], CartUnitOfWork]


class OrderPlacer(Protocol):
    """The checkout saga of CreateOrder: places an order exactly once per idempotency key."""

    async def place_order(self, command: PlaceOrder, *, wait_seconds: float) -> Order:
        """Place the order, or replay the outcome of the first request with the same key."""
        ...
