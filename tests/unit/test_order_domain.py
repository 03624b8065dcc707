"""The order aggregate: totals, currencies and the status rules."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from services.common.money import Money
from services.order.domain.model import Order, OrderItem, ShippingAddress
from services.order.domain.status import (
    IllegalTransition,
    MixedCurrencies,
    OrderStatus,
    PaymentStatus,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ADDRESS = ShippingAddress("Ada Lovelace", "1 Analytical St", "London", "GB")


def item(product_id: str, quantity: int, minor: int, currency: str = "EUR") -> OrderItem:
    return OrderItem(
        product_id, "seller-1", f"Product {product_id}", quantity, Money(minor, currency)
    )


def place(*items: OrderItem) -> Order:
    return Order.place(
        order_id=uuid.uuid4(),
        buyer_id=uuid.uuid4(),
        items=list(items),
        shipping_address=ADDRESS,
        at=NOW,
    )


def test_totals_are_the_sum_of_line_totals() -> None:
    order = place(item("a", 2, 1999), item("b", 1, 501))
    assert order.subtotal == Money(2 * 1999 + 501, "EUR")
    assert order.total == order.subtotal
    assert order.status is OrderStatus.PENDING
    assert [(c.from_status, c.to_status) for c in order.history] == [(None, OrderStatus.PENDING)]


def test_lines_in_different_currencies_are_refused() -> None:
    with pytest.raises(MixedCurrencies):
        place(item("a", 1, 100, "EUR"), item("b", 1, 100, "USD"))


def test_an_order_needs_items() -> None:
    with pytest.raises(ValueError):
        place()


def test_paid_records_the_capture_and_the_transition() -> None:
    order = place(item("a", 1, 1000))
    order.mark_saved()
    order.mark_paid(gateway_reference="ch_1", at=NOW)
    assert order.status is OrderStatus.PAID
    assert order.payment is not None
    assert order.payment.status is PaymentStatus.CAPTURED
    assert order.payment.amount == Money(1000, "EUR")
    assert [c.to_status for c in order.unsaved_history] == [OrderStatus.PAID]
    assert len(order.unsaved_payments) == 1


def test_a_declined_payment_cancels_the_order() -> None:
    order = place(item("a", 1, 1000))
    order.cancel_for_payment(
        status=PaymentStatus.DECLINED, failure_reason="card_declined", gateway_reference="", at=NOW
    )
    assert order.status is OrderStatus.CANCELLED
    assert order.history[-1].reason == "payment declined: card_declined"


@pytest.mark.parametrize("target", ["mark_paid", "cancel"])
def test_a_cancelled_order_cannot_move(target: str) -> None:
    order = place(item("a", 1, 1000))
    order.cancel(actor="system", reason="test", at=NOW)
    with pytest.raises(IllegalTransition):
        if target == "mark_paid":
            order.mark_paid(gateway_reference="ch_1", at=NOW)
        else:
            order.cancel(actor="system", reason="again", at=NOW)


def test_only_the_buyer_and_admins_see_an_order() -> None:
    order = place(item("a", 1, 1000))
    assert order.can_be_seen_by(str(order.buyer_id), is_admin=False)
    assert not order.can_be_seen_by(str(uuid.uuid4()), is_admin=False)
    assert order.can_be_seen_by(str(uuid.uuid4()), is_admin=True)
