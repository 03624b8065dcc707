"""Order and payment statuses, the moves between them, and the errors of the order's rules."""

from __future__ import annotations

from enum import StrEnum

from services.order.domain.reasons import ErrorReason

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


# Every move an order may make; anything else is a bug or a race and is refused. A partial
# refund does not stop fulfilment: a partially refunded order still ships and arrives.
_REFUNDS = frozenset({OrderStatus.REFUNDED, OrderStatus.PARTIALLY_REFUNDED})
_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    OrderStatus.PENDING: frozenset({OrderStatus.PAID, OrderStatus.CANCELLED}),
    OrderStatus.PAID: frozenset(
        {OrderStatus.FULFILLING, OrderStatus.SHIPPED, OrderStatus.CANCELLED} | _REFUNDS
    ),
    OrderStatus.FULFILLING: frozenset({OrderStatus.SHIPPED} | _REFUNDS),
    OrderStatus.SHIPPED: frozenset({OrderStatus.DELIVERED} | _REFUNDS),
    OrderStatus.DELIVERED: _REFUNDS,
    OrderStatus.PARTIALLY_REFUNDED: frozenset(
        {OrderStatus.FULFILLING, OrderStatus.SHIPPED, OrderStatus.DELIVERED} | _REFUNDS
    ),
    OrderStatus.CANCELLED: frozenset(),
    OrderStatus.REFUNDED: frozenset(),
}

# Statuses after which nothing more happens to an order that a watcher waits for.
FINAL_STATUSES = frozenset({OrderStatus.DELIVERED, OrderStatus.CANCELLED, OrderStatus.REFUNDED})


def can_move(current: OrderStatus, target: OrderStatus) -> bool:
    """Whether the state machine allows going from `current` to `target`."""
    return target in _TRANSITIONS[current]


class IllegalTransition(Exception):
    """An order was asked to move to a status it cannot reach from where it is."""

    def __init__(self, current: OrderStatus, target: OrderStatus) -> None:
        super().__init__(f"an order cannot go from {current} to {target}")
        self.current = current
        self.target = target


class MixedCurrencies(Exception):
    """The lines of an order are priced in more than one currency."""


class OrderRuleViolated(Exception):
    """A request breaks a rule of the order: the reason says which, for the caller."""

    def __init__(self, reason: ErrorReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# Orders that count as sales in reports: paid and everything after, except cancelled ones.
SOLD_STATUSES = frozenset(
    {
        OrderStatus.PAID,
        OrderStatus.FULFILLING,
        OrderStatus.SHIPPED,
        OrderStatus.DELIVERED,
        OrderStatus.REFUNDED,
        OrderStatus.PARTIALLY_REFUNDED,
    }
)
