"""The use cases of the order service, as requests to do something."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import date, datetime

from services.common.money import Money
from services.order.domain.model import OrderLine, ShippingAddress
from services.order.domain.status import OrderStatus


@dataclass(frozen=True)
class Caller:
    """Who asks, as the order rules need it."""

    user_id: str
    is_admin: bool = False
    is_seller: bool = False


@dataclass(frozen=True)
class PlaceOrder:
    """Check out: reserve the lines, charge the payment method, record the order."""

    buyer_id: uuid.UUID
    idempotency_key: str
    # sha256 of the request as sent, so a reused key with another body is caught.
    request_fingerprint: bytes
    lines: tuple[OrderLine, ...]
    # The destination given in full, or None when address_id names an address book entry.
    shipping_address: ShippingAddress | None
    payment_method_token: str
    address_id: uuid.UUID | None = None

    @property
    def checkout_id(self) -> str:
        """The checkout attempt, the same across retries: buyer and key, hashed to stay ours."""
        seed = f"{self.buyer_id}:{self.idempotency_key}".encode()
        return hashlib.sha256(seed).hexdigest()[:32]


@dataclass(frozen=True)
class GetOrder:
    """Read one order as the caller may see it."""

    order_id: uuid.UUID
    caller: Caller


@dataclass(frozen=True)
class OrderCursor:
    """Where a page of orders ends: the last order's creation time and id."""

    created_at: datetime
    order_id: uuid.UUID


@dataclass(frozen=True)
class ListOrders:
    """Read one page of the caller's orders, newest first."""

    caller: Caller
    page_size: int
    after: OrderCursor | None
    status: OrderStatus | None


@dataclass(frozen=True)
class CancelOrder:
    """The buyer (or an admin) calls an order off before it ships."""

    order_id: uuid.UUID
    caller: Caller
    reason: str


@dataclass(frozen=True)
class ShipOrderItems:
    """A seller hands their items of an order to a carrier."""

    order_id: uuid.UUID
    caller: Caller
    product_ids: frozenset[str]
    carrier: str
    tracking_number: str


@dataclass(frozen=True)
class MarkOrderDelivered:
    """An admin records the carrier's word that everything arrived."""

    order_id: uuid.UUID
    caller: Caller


@dataclass(frozen=True)
class RefundOrder:
    """Give money back on a captured order; the key makes retries safe."""

    order_id: uuid.UUID
    caller: Caller
    amount: Money | None
    reason: str
    idempotency_key: str
    request_fingerprint: bytes


@dataclass(frozen=True)
class WatchOrder:
    """Follow an order's changes as they happen."""

    order_id: uuid.UUID
    caller: Caller


@dataclass(frozen=True)
class GetSalesReport:
    """Sum sales over a date range, by day or by seller."""

    caller: Caller
    start: date
    end: date
    by_seller: bool
    seller_id: str | None
