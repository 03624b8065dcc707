"""The pricing of seller parts: shipping by destination, free over a threshold, tax rounding."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from services.common.money import Money
from services.order.domain.model import Order, OrderItem, ShippingAddress
from services.order.domain.pricing import (
    SellerPart,
    ShippingCurrencyMismatch,
    ShippingProfile,
    ShippingRate,
    price_parts,
    sum_parts,
    tax_of,
)

AT = datetime(2026, 12, 1, tzinfo=UTC)


def item(seller: str, quantity: int, unit_minor: int, product: str = "") -> OrderItem:
    return OrderItem(
        product or f"p-{uuid.uuid4().hex[:6]}", seller, "Lamp", quantity, Money(unit_minor, "USD")
    )


PROFILE = ShippingProfile(
    seller_id="a",
    currency="USD",
    default_rate=ShippingRate("", flat_fee_minor=999),
    country_rates=(
        ShippingRate("DE", flat_fee_minor=499, per_item_fee_minor=100, free_over_minor=10_000),
    ),
)


def test_a_country_rate_charges_flat_plus_per_item_and_tax_on_items_and_shipping() -> None:
    [part] = price_parts(
        [item("a", 2, 1000), item("a", 1, 500)],
        currency="USD",
        country_code="DE",
        profiles={"a": PROFILE},
        tax_basis_points=1900,
    )
    # Items 25.00; shipping 4.99 + 3 x 1.00 = 7.99; tax 19% of 32.99 = 6.2681 -> 6.27.
    assert part == SellerPart("a", Money(2500, "USD"), Money(799, "USD"), Money(627, "USD"))
    assert part.total == Money(3926, "USD")
    assert part.seller_earnings == Money(3299, "USD")


def test_a_country_without_a_rate_of_its_own_uses_the_default_rate() -> None:
    [part] = price_parts(
        [item("a", 4, 1000)],
        currency="USD",
        country_code="FR",
        profiles={"a": PROFILE},
        tax_basis_points=0,
    )
    assert (part.shipping.minor, part.tax.minor) == (999, 0)  # flat only, no per-item fee


def test_shipping_is_free_at_and_over_the_threshold_of_the_sellers_own_subtotal() -> None:
    at_threshold, below = (
        price_parts(
            [item("a", 1, subtotal), item("b", 1, 50_000)],  # b's big items do not count for a
            currency="USD",
            country_code="DE",
            profiles={"a": PROFILE},
            tax_basis_points=0,
        )[0]
        for subtotal in (10_000, 9_999)
    )
    assert at_threshold.shipping.minor == 0
    assert below.shipping.minor == 499 + 100


def test_a_seller_without_a_profile_or_without_a_matching_rate_ships_free() -> None:
    no_default = ShippingProfile("a", "USD", country_rates=(ShippingRate("DE", 500),))
    parts = price_parts(
        [item("a", 1, 1000), item("b", 1, 1000)],
        currency="USD",
        country_code="IT",
        profiles={"a": no_default},
        tax_basis_points=2200,
    )
    assert [(p.seller_id, p.shipping.minor, p.tax.minor) for p in parts] == [
        ("a", 0, 220),
        ("b", 0, 220),
    ]


@pytest.mark.parametrize(
    ("amount", "points", "expected"),
    [
        (1000, 1900, 190),
        (2699, 1900, 513),  # 512.81 rounds up
        (2650, 1000, 265),
        (25, 2000, 5),
        (5, 1000, 1),  # 0.5 rounds half up
        (4, 1000, 0),  # 0.4 rounds down
        (15, 5000, 8),  # 7.5 rounds half up
        (0, 2500, 0),
        (1234, 0, 0),
    ],
)
def test_tax_is_rounded_half_up(amount: int, points: int, expected: int) -> None:
    assert tax_of(amount, points) == expected


def test_tax_is_rounded_per_part_and_the_order_sums_its_parts_to_the_cent() -> None:
    # Each part's tax is 0.5 cents before rounding: per part it rounds to 1 cent each,
    # so the order's tax is 2 cents (not round(1.0) of the summed amounts computed apart).
    parts = price_parts(
        [item("a", 1, 5), item("b", 1, 5)],
        currency="USD",
        country_code="SE",
        profiles={},
        tax_basis_points=1000,
    )
    assert [p.tax.minor for p in parts] == [1, 1]
    order = Order.place(
        order_id=uuid.uuid4(),
        buyer_id=uuid.uuid4(),
        items=[item("a", 1, 5), item("b", 1, 5)],
        shipping_address=ShippingAddress("Ada", "1 Main St", "Stockholm", "SE"),
        at=AT,
        parts=parts,
    )
    sums = sum_parts(parts, "USD")
    assert (order.subtotal, order.sums.tax, order.total) == (
        Money(10, "USD"),
        Money(2, "USD"),
        Money(12, "USD"),
    )
    assert order.total == sums.total == Money(sum(p.total.minor for p in parts), "USD")
    assert order.seller_total("a") == Money(6, "USD")


def test_a_profile_in_another_currency_than_the_order_is_refused() -> None:
    euro = ShippingProfile("a", "EUR", default_rate=ShippingRate("", 500))
    with pytest.raises(ShippingCurrencyMismatch) as raised:
        price_parts(
            [item("a", 1, 1000)],
            currency="USD",
            country_code="DE",
            profiles={"a": euro},
            tax_basis_points=0,
        )
    assert (raised.value.seller_id, raised.value.currency) == ("a", "EUR")


def test_an_order_placed_without_parts_is_free_and_untaxed() -> None:
    order = Order.place(
        order_id=uuid.uuid4(),
        buyer_id=uuid.uuid4(),
        items=[item("a", 2, 1000), item("b", 1, 300)],
        shipping_address=ShippingAddress("Ada", "1 Main St", "Berlin", "DE"),
        at=AT,
    )
    assert order.total == order.subtotal == Money(2300, "USD")
    assert [p.total.minor for p in order.seller_parts] == [2000, 300]


def test_parts_must_cover_exactly_the_sellers_of_the_items() -> None:
    with pytest.raises(ValueError, match="one part per seller"):
        Order.place(
            order_id=uuid.uuid4(),
            buyer_id=uuid.uuid4(),
            items=[item("a", 1, 1000), item("b", 1, 1000)],
            shipping_address=ShippingAddress("Ada", "1 Main St", "Berlin", "DE"),
            at=AT,
            parts=[SellerPart("a", Money(1000, "USD"), Money(0, "USD"), Money(0, "USD"))],
        )


def test_the_tax_on_a_returned_share_of_a_part_is_proportional_and_rounded_half_up() -> None:
    part = SellerPart("a", Money(2500, "USD"), Money(799, "USD"), Money(627, "USD"))
    assert part.tax_on(1000) == 190  # 627 x 1000 / 3299 = 190.06
    assert part.tax_on(3299) == 627
    untaxed = SellerPart("a", Money(0, "USD"), Money(0, "USD"), Money(0, "USD"))
    assert untaxed.tax_on(100) == 0
