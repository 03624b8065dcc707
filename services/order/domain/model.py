"""Orders and the rules of their lifecycle."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from services.common.money import Money

SYSTEM_ACTOR = "system"


class OrderStatus(StrEnum):
    """Where an order is in its lifecycle, as stored."""

    PENDING = "pending"
    PAID = "paid"
    FULFILLING = "fulfilling"
    SHIPPED = "shipped"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"


class PaymentStatus(StrEnum):
    """The outcome of one payment attempt, as stored."""

    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    DECLINED = "declined"
    VOIDED = "voided"
    REFUNDED = "refunded"
    FAILED = "failed"


# Every move an order may make; anything else is a bug or a race and is refused.
_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset(
        {
            OrderStatus.FULFILLING,
            OrderStatus.SHIPPED,
            OrderStatus.CANCELLED,
            OrderStatus.REFUNDED,
            OrderStatus.PARTIALLY_REFUNDED,
        }
    ),
    OrderStatus.FULFILLING: frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED}),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED}),
    OrderStatus.DELIVERED: frozenset({OrderStatus.REFUNDED, OrderStatus.PARTIALLY_REFUNDED}),
    OrderStatus.PARTIALLY_REFUNDED: frozenset(
        {OrderStatus.REFUNDED, OrderStatus.PARTIALLY_REFUNDED}
    ),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REFUNDED: frozenset(),
}


class IllegalTransition(Exception):
    """An order was asked to move to a status it cannot reach from where it is."""

    def __init__(self, current: OrderStatus, target: OrderStatus) -> None:
        super().__init__(f"an order cannot go from {current} to {target}")
        self.current = current
        self.target = target


class MixedCurrencies(Exception):
    """The lines of an order are priced in more than one currency."""


@dataclass(frozen=True)
class ShippingAddress:
    """The destination of an order, copied when it is placed."""

    recipient_name: str
    line1: str
    city: str
    country_code: str
    line2: str = ""
    region: str = ""
    postal_code: str = ""
    phone_number: str = ""


@dataclass(frozen=True)
class OrderLine:
    """A product and quantity a buyer asks for."""

    product_id: str
    quantity: int


@dataclass(frozen=True)
class OrderItem:
    """One line of a placed order, priced from the catalog's snapshot."""

    product_id: str
    seller_id: str
    title: str
    quantity: int
    unit_price: Money

    @property
    def line_total(self) -> Money:
        """unit_price times quantity."""
        return self.unit_price.times(self.quantity)


@dataclass(frozen=True)
class StatusChange:
    """One entry of an order's timeline."""

    from_status: OrderStatus | None
    to_status: OrderStatus
    actor: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class PaymentAttempt:
    """One try at taking the money for an order."""

    payment_id: uuid.UUID
    status: PaymentStatus
    amount: Money
    gateway_reference: str
    failure_reason: str
    at: datetime
    refunded: Money | None = None


@dataclass
class Order:
    """A buyer's checkout: priced lines, a destination, a payment and a timeline."""

    order_id: uuid.UUID
    buyer_id: uuid.UUID
    items: list[OrderItem]
    shipping_address: ShippingAddress
    status: OrderStatus
    created_at: datetime
    updated_at: datetime
    history: list[StatusChange] = field(default_factory=list)
    payments: list[PaymentAttempt] = field(default_factory=list)
    # What changed since the order was loaded, for the repository to write.
    unsaved_history: list[StatusChange] = field(default_factory=list, repr=False)
    unsaved_payments: list[PaymentAttempt] = field(default_factory=list, repr=False)

    @classmethod
    def place(
        cls,
        *,
        order_id: uuid.UUID,
        buyer_id: uuid.UUID,
        items: list[OrderItem],
        shipping_address: ShippingAddress,
        at: datetime,
    ) -> Order:
        """A new pending order; its lines must share one currency."""
        if not items:
            raise ValueError("an order needs at least one item")
        if len({item.unit_price.currency for item in items}) != 1:
            raise MixedCurrencies("the items of an order must share one currency")
        order = cls(
            order_id=order_id,
            buyer_id=buyer_id,
            items=list(items),
            shipping_address=shipping_address,
            status=OrderStatus.PENDING,
            created_at=at,
            updated_at=at,
        )
        change = StatusChange(None, OrderStatus.PENDING, str(buyer_id), "order placed", at)
        order.history.append(change)
        order.unsaved_history.append(change)
        return order

    @property
    def currency(self) -> str:
        """The currency every line is priced in."""
        return self.items[0].unit_price.currency

    @property
    def subtotal(self) -> Money:
        """The sum of the line totals."""
        total = Money(0, self.currency)
        for item in self.items:
            total = total + item.line_total
        return total

    @property
    def total(self) -> Money:
        """What the buyer pays; shipping and taxes are not charged yet."""
        return self.subtotal

    @property
    def payment(self) -> PaymentAttempt | None:
        """The latest payment attempt, if any."""
        return self.payments[-1] if self.payments else None

    def can_be_seen_by(self, user_id: str, *, is_admin: bool) -> bool:
        """Whether a caller may read the order: its buyer and admins."""
        return is_admin or str(self.buyer_id) == user_id

    def mark_paid(self, *, gateway_reference: str, at: datetime) -> None:
        """Record the captured payment and move the order to PAID."""
        self._record_payment(PaymentStatus.CAPTURED, gateway_reference, "", at)
        self._move(OrderStatus.PAID, SYSTEM_ACTOR, "payment captured", at)

    def cancel_for_payment(
        self, *, status: PaymentStatus, failure_reason: str, gateway_reference: str, at: datetime
    ) -> None:
        """Record a declined or failed payment and cancel the order."""
        self._record_payment(status, gateway_reference, failure_reason, at)
        verb = "declined" if status is PaymentStatus.DECLINED else "failed"
        self._move(OrderStatus.CANCELLED, SYSTEM_ACTOR, f"payment {verb}: {failure_reason}", at)

    def cancel(self, *, actor: str, reason: str, at: datetime) -> None:
        """Cancel the order; only orders not yet shipped can be."""
        self._move(OrderStatus.CANCELLED, actor, reason, at)

    def mark_saved(self) -> None:
        """Forget the pending changes once the repository wrote them."""
        self.unsaved_history.clear()
        self.unsaved_payments.clear()

    def _record_payment(
        self, status: PaymentStatus, reference: str, failure_reason: str, at: datetime
    ) -> None:
        attempt = PaymentAttempt(uuid.uuid4(), status, self.total, reference, failure_reason, at)
        self.payments.append(attempt)
        self.unsaved_payments.append(attempt)

    def _move(self, target: OrderStatus, actor: str, reason: str, at: datetime) -> None:
        if target not in _TRANSITIONS[self.status]:
            raise IllegalTransition(self.status, target)
        change = StatusChange(self.status, target, actor, reason, at)
        self.status = target
        self.updated_at = at
        self.history.append(change)
        self.unsaved_history.append(change)
