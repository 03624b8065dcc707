"""The use cases of the order service, as requests to do something."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from services.order.domain.model import OrderLine, OrderStatus, ShippingAddress


@dataclass(frozen=True)
class PlaceOrder:
    """Check out: reserve the lines, charge the payment method, record the order."""

    buyer_id: uuid.UUID
    idempotency_key: str
    # sha256 of the request as sent, so a reused key with another body is caught.
    request_fingerprint: bytes
    lines: tuple[OrderLine, ...]
    shipping_address: ShippingAddress
    payment_method_token: str


@dataclass(frozen=True)
class GetOrder:
    """Read one order as the caller may see it."""

    order_id: uuid.UUID
    caller_id: str
    caller_is_admin: bool


@dataclass(frozen=True)
class OrderCursor:
    """Where a page of orders ends: the last order's creation time and id."""

    created_at: datetime
    order_id: uuid.UUID


@dataclass(frozen=True)
class ListOrders:
    """Read one page of the caller's orders, newest first."""

    buyer_id: uuid.UUID
    page_size: int
    after: OrderCursor | None
    status: OrderStatus | None
