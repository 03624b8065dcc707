"""Every port the order service layer needs: storage, inventory, buyers, payments, reports, the cart.

Adapters implement them (services/order/adapters/); the service layer depends on these
protocols only.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol

from services.common.money import Money
from services.order.domain.changes import ChangeState, OrderChange
from services.order.domain.commands import OrderCursor
from services.order.domain.idempotency import IdempotencyRecord, StoredError
from services.order.domain.model import GatewayCall, Order, OrderLine, ShippingAddress

# Re-exported: the gateway port answers with these.
from services.order.domain.payments import (
    Authorization as Authorization,
)
from services.order.domain.payments import (
    Capture as Capture,
)
from services.order.domain.payments import (
    PaymentDeclined as PaymentDeclined,
)
from services.order.domain.payments import (
    PaymentError as PaymentError,
)
from services.order.domain.payments import (
    PaymentTimeout as PaymentTimeout,
)
from services.order.domain.payments import (
    PaymentUnavailable as PaymentUnavailable,
)
from services.order.domain.status import OrderStatus

# The cart's ports live beside these, in ports/cart.py; re-exported so every port is found here.
from services.order.service_layer.ports.cart import Carts as Carts
from services.order.service_layer.ports.cart import CartUnitOfWork as CartUnitOfWork
from services.order.service_layer.ports.cart import CartUnitOfWorkFactory as CartUnitOfWorkFactory
from services.order.service_layer.ports.cart import Catalog as Catalog
from services.order.service_layer.ports.cart import CheckoutRecords as CheckoutRecords
from services.order.service_layer.ports.cart import OrderPlacer as OrderPlacer

# The payouts' ports live in ports/payouts.py, re-exported here the same way.
from services.order.service_layer.ports.payouts import Ledger as Ledger
from services.order.service_layer.ports.payouts import PayoutUnitOfWork as PayoutUnitOfWork
from services.order.service_layer.ports.payouts import (
    PayoutUnitOfWorkFactory as PayoutUnitOfWorkFactory,
)
from services.order.service_layer.ports.pricing import PricingRules as PricingRules
from services.order.service_layer.ports.pricing import PricingUnitOfWork as PricingUnitOfWork
from services.order.service_layer.ports.pricing import (
    PricingUnitOfWorkFactory as PricingUnitOfWorkFactory,
)

# The returns' ports live in ports/returns.py, re-exported here the same way.
from services.order.service_layer.ports.returns import Returns as Returns
from services.order.service_layer.ports.returns import ReturnUnitOfWork as ReturnUnitOfWork
from services.order.service_layer.ports.returns import (
    ReturnUnitOfWorkFactory as ReturnUnitOfWorkFactory,
)
from services.order.service_layer.ports.transaction import Transaction as Transaction


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


class IdempotencyKeys(Protocol):
    """Where the outcome of each idempotency key is kept."""

    async def claim(
        self,
        buyer_id: uuid.UUID,
        key: str,
        fingerprint: bytes,
        *,
        lease_until: datetime | None = None,
        order_id: uuid.UUID | None = None,
    ) -> IdempotencyRecord | None:
        """Take the key (leased, naming `order_id`); None when taken now, else the record."""
        ...

    async def lease(self, buyer_id: uuid.UUID, key: str, until: datetime) -> None:
        """Renew the lease of a key in progress, or let it lapse now."""
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

    async def for_order(self, order_id: uuid.UUID) -> tuple[uuid.UUID, str] | None:
        """The (buyer, key) placing an order."""
        ...

    async def stale_in_progress(
        self, *, older_than: datetime, now: datetime, limit: int
    ) -> list[tuple[uuid.UUID, str, uuid.UUID | None]]:
        """Keys in progress whose lease lapsed, or unleased since before `older_than`."""
        ...


class PaymentAttempts(Protocol):
    """The record of every payment gateway call."""

    async def start(self, attempt: GatewayCall) -> None:
        """Record a call about to be made."""
        ...

    async def finish(
        self, attempt_id: uuid.UUID, outcome: str, reference: str, detail: str, at: datetime
    ) -> None:
        """Record how a call ended."""
        ...

    async def for_order(self, order_id: uuid.UUID) -> list[GatewayCall]:
        """The calls made for an order."""
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


@dataclass(frozen=True)
class ReportRow:
    """One group of a sales report: a UTC day, or a seller, in one currency."""

    day: date | None
    seller_id: str
    order_count: int
    total: Money  # items, shipping and tax, net of refunds
    shipping: Money | None = None  # as charged at placement, before refunds
    tax: Money | None = None  # as charged at placement, before refunds


class SalesReports(Protocol):
    """The read-only report queries (a view, not the repository)."""

    async def rows(
        self,
        start: date,
        end: date,
        *,
        by_seller: bool,
        seller_id: str | None,
        statuses: frozenset[OrderStatus],
    ) -> list[ReportRow]:
        """The rows for [start, end] (UTC days, inclusive) over orders in `statuses`."""
