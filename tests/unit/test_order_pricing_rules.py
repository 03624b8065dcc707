"""The pricing use cases on in-memory rules: who may set what, masks, and checkout pricing."""

from __future__ import annotations

import pytest

from services.common.errors import FailedPrecondition, NotFound, PermissionDenied
from services.common.identity import Caller, Role
from services.common.money import Money
from services.order.domain.model import OrderItem
from services.order.domain.pricing import ShippingProfile, ShippingRate
from services.order.service_layer import pricing
from tests.fakes.clock import FixedClock
from tests.fakes.pricing import FakePricing
from tests.fakes.transaction import WritesAtOnce

SELLER = Caller("seller-1", frozenset({Role.SELLER}))
BUYER = Caller("buyer-1", frozenset({Role.CUSTOMER}))
ADMIN = Caller("admin-1", frozenset({Role.ADMIN}))


class Work(WritesAtOnce):
    """A unit of work over the fake rules."""

    def __init__(self, rules: FakePricing) -> None:
        self.pricing = rules


def update(
    caller: Caller,
    *,
    currency: str = "USD",
    default: ShippingRate | None = None,
    countries: tuple[ShippingRate, ...] = (),
    fields: frozenset[str] = frozenset(),
) -> pricing.UpdateShippingProfile:
    return pricing.UpdateShippingProfile(caller, currency, default, countries, fields)


async def test_only_sellers_set_a_profile_and_only_admins_touch_tax_rates() -> None:
    rules = FakePricing()
    with pytest.raises(PermissionDenied):
        await pricing.update_shipping_profile(
            update(BUYER), uow=lambda: Work(rules), clock=FixedClock()
        )
    for caller in (SELLER, BUYER):
        with pytest.raises(PermissionDenied):
            await pricing.set_tax_rate(
                pricing.SetTaxRate(caller, "DE", 1900, allow_missing=True),
                uow=lambda: Work(rules),
                clock=FixedClock(),
            )
        with pytest.raises(PermissionDenied):
            await pricing.delete_tax_rate(caller, "DE", uow=lambda: Work(rules))
    assert rules.shipping == {} and rules.taxes == {}


async def test_a_masked_update_keeps_the_other_rates_and_refuses_a_currency_change() -> None:
    rules = FakePricing()
    uow = lambda: Work(rules)  # noqa: E731
    await pricing.update_shipping_profile(
        update(SELLER, default=ShippingRate("", 500)), uow=uow, clock=FixedClock()
    )
    patched = await pricing.update_shipping_profile(
        update(SELLER, countries=(ShippingRate("DE", 300),), fields=frozenset({"country_rates"})),
        uow=uow,
        clock=FixedClock(),
    )
    assert patched.default_rate == ShippingRate("", 500)
    assert patched.country_rates == (ShippingRate("DE", 300),)
    with pytest.raises(FailedPrecondition):
        await pricing.update_shipping_profile(
            update(SELLER, currency="EUR", fields=frozenset({"default_rate"})),
            uow=uow,
            clock=FixedClock(),
        )
    assert rules.shipping["seller-1"].currency == "USD"


async def test_a_tax_rate_is_created_only_when_allowed_and_deleting_a_missing_one_is_not_found() -> (
    None
):
    rules = FakePricing()
    uow = lambda: Work(rules)  # noqa: E731
    with pytest.raises(NotFound):
        await pricing.set_tax_rate(
            pricing.SetTaxRate(ADMIN, "DE", 1900, allow_missing=False), uow=uow, clock=FixedClock()
        )
    await pricing.set_tax_rate(
        pricing.SetTaxRate(ADMIN, "DE", 1900, allow_missing=True), uow=uow, clock=FixedClock()
    )
    assert [
        r.basis_points for r in await pricing.list_tax_rates(ADMIN, after="", limit=10, uow=uow)
    ] == [1900]
    await pricing.delete_tax_rate(ADMIN, "DE", uow=uow)
    with pytest.raises(NotFound):
        await pricing.delete_tax_rate(ADMIN, "DE", uow=uow)


async def test_checkout_pricing_reads_the_sellers_rates_and_the_destination_tax() -> None:
    rules = FakePricing(
        shipping={"s1": ShippingProfile("s1", "USD", country_rates=(ShippingRate("DE", 400, 50),))}
    )
    uow = lambda: Work(rules)  # noqa: E731
    await pricing.set_tax_rate(
        pricing.SetTaxRate(ADMIN, "DE", 1900, allow_missing=True), uow=uow, clock=FixedClock()
    )
    items = [
        OrderItem("p1", "s1", "Lamp", 2, Money(1000, "USD")),
        OrderItem("p2", "s2", "Shade", 1, Money(999, "USD")),
    ]
    parts = await pricing.price_order(items, "de", uow=uow)
    assert [(p.seller_id, p.shipping.minor, p.tax.minor) for p in parts] == [
        ("s1", 500, 475),  # 19% of 25.00
        ("s2", 0, 190),  # 19% of 9.99 = 1.8981
    ]
    rules.shipping["s2"] = ShippingProfile("s2", "EUR", default_rate=ShippingRate("", 100))
    with pytest.raises(FailedPrecondition) as refused:
        await pricing.price_order(items, "DE", uow=uow)
    assert refused.value.metadata == {"seller_id": "s2", "currency": "EUR"}
