"""Shipping and tax on real PostgreSQL, with the real user and product services in-process.

Sellers set their shipping profiles and an admin the tax rates through PricingService;
orders placed through the API carry the priced seller parts, the sandbox gateway captures
the order total, refunds and cancellations give back what was captured, and the sales
report counts the parts' totals alike by day and by seller.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import grpc
import pytest
import pytest_asyncio
from google.protobuf import field_mask_pb2
from google.type import date_pb2
from marketplace.order.v1 import (
    order_pb2,
    order_service_pb2,
    pricing_pb2,
    pricing_service_pb2,
    pricing_service_pb2_grpc,
)

from services.common.identity import Role
from services.common.money import Money
from services.common.proto_money import money_to_proto
from services.order.adapters.payments import SandboxGateway
from tests.support.failures import failure_of
from tests.support.order import (
    MIGRATIONS,
    OrderService,
    ProductService,
    UserService,
    accounts,
    create_product,
    money,
    order_settings,
    product,
    serving_orders,
    stock,
)
from tests.support.servers import Backends
from tests.support.tokens import TestTokens, bearer

__all__ = ["accounts", "product"]

Metadata = tuple[tuple[str, str], ...]


@pytest_asyncio.fixture(loop_scope="session")
async def orders(
    backends: Backends, product: ProductService, accounts: UserService, tokens: TestTokens
) -> AsyncIterator[OrderService]:
    settings = order_settings(
        backends.database_url("orders_pricing", MIGRATIONS),
        product.served.target,
        backends.redis_url,
        user_target=accounts.served.target,
    ).model_copy(update={"rpc_timeout_seconds": 10, "payment_timeout_seconds": 5.0})
    gateway = SandboxGateway(
        latency_seconds=0.005, timeout_seconds=settings.payment_timeout_seconds
    )
    async with serving_orders(settings, accounts, tokens, gateway) as served:
        yield served


def pricing(orders: OrderService) -> pricing_service_pb2_grpc.PricingServiceAsyncStub:
    return pricing_service_pb2_grpc.PricingServiceStub(orders.served.channel)


def usd(minor: int) -> object:
    return money_to_proto(Money(minor, "USD"))


def rate(
    country: str = "", flat: int = 0, per_item: int = 0, free_over: int | None = None
) -> pricing_pb2.ShippingRate:
    message = pricing_pb2.ShippingRate(
        country_code=country,
        flat_fee=money_to_proto(Money(flat, "USD")),
        per_item_fee=money_to_proto(Money(per_item, "USD")),
    )
    if free_over is not None:
        message.free_over.CopyFrom(money_to_proto(Money(free_over, "USD")))
    return message


async def set_profile(
    orders: OrderService,
    seller: str,
    *,
    default: pricing_pb2.ShippingRate | None = None,
    countries: tuple[pricing_pb2.ShippingRate, ...] = (),
    currency: str = "USD",
) -> pricing_pb2.ShippingProfile:
    profile = pricing_pb2.ShippingProfile(currency_code=currency, country_rates=countries)
    if default is not None:
        profile.default_rate.CopyFrom(default)
    return await pricing(orders).UpdateShippingProfile(
        pricing_service_pb2.UpdateShippingProfileRequest(shipping_profile=profile),
        metadata=bearer(seller),
    )


async def set_tax(orders: OrderService, admin: str, country: str, points: int) -> None:
    await pricing(orders).UpdateTaxRate(
        pricing_service_pb2.UpdateTaxRateRequest(
            tax_rate=pricing_pb2.TaxRate(country_code=country, basis_points=points),
            allow_missing=True,
        ),
        metadata=bearer(admin),
    )


async def listed(product: ProductService, seller: str, price: int = 1000, stock: int = 20) -> str:
    return await create_product(product, stock, Money(price, "USD"), "Kettle", seller_token=seller)


def order_to(country: str, *lines: tuple[str, int]) -> order_service_pb2.CreateOrderRequest:
    return order_service_pb2.CreateOrderRequest(
        items=[order_pb2.OrderItem(product_id=p, quantity=q) for p, q in lines],
        shipping_address=order_pb2.ShippingAddress(
            recipient_name="Ada Lovelace", line1="1 Main St", city="Town", country_code=country
        ),
        payment_method_token="tok_visa",
    )


def keyed(token: str, key: str | None = None) -> Metadata:
    return (*bearer(token), ("idempotency-key", key or uuid.uuid4().hex))


def cents(value: object) -> int:
    return money(value).minor  # type: ignore[arg-type]


def parts_of(order: order_pb2.Order) -> dict[str, tuple[int, int, int, int]]:
    return {
        p.seller_id: (
            cents(p.subtotal),
            cents(p.shipping_total),
            cents(p.tax_total),
            cents(p.total),
        )
        for p in order.parts
    }


def totals_of(order: order_pb2.Order) -> tuple[int, int, int, int]:
    return (
        cents(order.subtotal),
        cents(order.shipping_total),
        cents(order.tax_total),
        cents(order.total),
    )


class Sellers:
    def __init__(self, tokens: TestTokens) -> None:
        self.a, self.b = str(uuid.uuid4()), str(uuid.uuid4())
        self.token_a = tokens.mint(self.a, roles=(Role.SELLER,))
        self.token_b = tokens.mint(self.b, roles=(Role.SELLER,))


async def test_an_order_of_two_sellers_is_priced_per_part_and_the_total_is_captured(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    admin = tokens.mint(roles=(Role.ADMIN,))
    sellers = Sellers(tokens)
    await set_profile(
        orders,
        sellers.token_a,
        default=rate(flat=999),
        countries=(rate("AT", flat=499, per_item=100, free_over=10_000),),
    )
    await set_profile(orders, sellers.token_b, default=rate(per_item=250))
    await set_tax(orders, admin, "AT", 2000)
    product_a = await listed(product, sellers.token_a)
    product_b = await listed(product, sellers.token_b)
    buyer = await orders.accounts.buyer_token()
    key = uuid.uuid4().hex

    placed = await orders.stub.CreateOrder(
        order_to("AT", (product_a, 2), (product_b, 3)), metadata=keyed(buyer, key)
    )

    # A: items 20.00, shipping 4.99 + 2 x 1.00, tax 20% of 26.99 = 5.398 -> 5.40.
    # B: items 30.00, shipping 3 x 2.50, tax 20% of 37.50 = 7.50.
    assert placed.status == order_pb2.ORDER_STATUS_PAID
    assert parts_of(placed) == {
        sellers.a: (2000, 699, 540, 3239),
        sellers.b: (3000, 750, 750, 4500),
    }
    assert totals_of(placed) == (5000, 1449, 1290, 7739)
    charge = orders.gateway.captured()[-1]
    assert charge.amount == Money(7739, "USD")
    assert cents(placed.payment.amount) == 7739
    # Fixed at placement: a later rate change does not move the stored order.
    await set_tax(orders, admin, "AT", 1000)
    read = await orders.stub.GetOrder(
        order_service_pb2.GetOrderRequest(order_id=placed.order_id), metadata=bearer(buyer)
    )
    assert parts_of(read) == parts_of(placed) and totals_of(read) == totals_of(placed)
    replayed = await orders.stub.CreateOrder(
        order_to("AT", (product_a, 2), (product_b, 3)), metadata=keyed(buyer, key)
    )
    assert parts_of(replayed) == parts_of(placed) and totals_of(replayed) == totals_of(placed)
    row = await orders.db.fetchrow(
        "SELECT subtotal_minor, shipping_total_minor, tax_total_minor, total_minor"
        " FROM orders WHERE id = $1",
        uuid.UUID(placed.order_id),
    )
    assert row is not None and tuple(row) == (5000, 1449, 1290, 7739)
    # A seller sees their own part only.
    seen_by_b = await orders.stub.GetOrder(
        order_service_pb2.GetOrderRequest(order_id=placed.order_id),
        metadata=bearer(sellers.token_b),
    )
    assert parts_of(seen_by_b) == {sellers.b: (3000, 750, 750, 4500)}
    assert totals_of(seen_by_b) == (3000, 750, 750, 4500)


async def test_free_over_the_threshold_and_a_country_without_rates_ships_free_untaxed(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    admin = tokens.mint(roles=(Role.ADMIN,))
    sellers = Sellers(tokens)
    await set_profile(
        orders, sellers.token_a, countries=(rate("NL", flat=500, per_item=50, free_over=5000),)
    )
    await set_tax(orders, admin, "NL", 2100)
    product_a = await listed(product, sellers.token_a)
    product_b = await listed(product, sellers.token_b)  # seller B never set a profile
    buyer = await orders.accounts.buyer_token()

    over = await orders.stub.CreateOrder(
        order_to("NL", (product_a, 5), (product_b, 1)), metadata=keyed(buyer)
    )
    # A reaches 50.00: free shipping; B has no profile: free. 21% of 50.00 and of 10.00.
    assert parts_of(over) == {
        sellers.a: (5000, 0, 1050, 6050),
        sellers.b: (1000, 0, 210, 1210),
    }
    # To a country without a rate of A's and without a tax rate: free and untaxed.
    elsewhere = await orders.stub.CreateOrder(order_to("NZ", (product_a, 1)), metadata=keyed(buyer))
    assert totals_of(elsewhere) == (1000, 0, 0, 1000)
    assert orders.gateway.captured()[-1].amount == Money(1000, "USD")


async def test_a_profile_in_another_currency_refuses_checkout_and_releases_the_stock(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    sellers = Sellers(tokens)
    euro = rate(flat=300)
    for field in (euro.flat_fee, euro.per_item_fee):
        field.currency_code = "EUR"
    await set_profile(orders, sellers.token_a, default=euro, currency="EUR")
    product_a = await listed(product, sellers.token_a, stock=4)
    buyer = await orders.accounts.buyer_token()
    captures = len(orders.gateway.charges)
    refused = await failure_of(
        orders.stub.CreateOrder(order_to("DE", (product_a, 2)), metadata=keyed(buyer))
    )
    assert (refused.code, refused.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "SHIPPING_CURRENCY_MISMATCH",
    )
    assert refused.metadata["seller_id"] == sellers.a
    assert (await stock(product, product_a))[0] == 4
    assert len(orders.gateway.charges) == captures  # nothing authorised


async def test_refunds_and_cancellation_give_back_what_was_captured_shipping_and_tax_included(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    admin = tokens.mint(roles=(Role.ADMIN,))
    sellers = Sellers(tokens)
    await set_profile(orders, sellers.token_a, default=rate(flat=500))
    await set_profile(orders, sellers.token_b, default=rate(flat=300))
    await set_tax(orders, admin, "BE", 2100)
    product_a = await listed(product, sellers.token_a)
    product_b = await listed(product, sellers.token_b)
    buyer = await orders.accounts.buyer_token()
    placed = await orders.stub.CreateOrder(
        order_to("BE", (product_a, 1), (product_b, 1)), metadata=keyed(buyer)
    )
    # A: 10.00 + 5.00 + 3.15 = 18.15; B: 10.00 + 3.00 + 2.73 = 15.73.
    assert parts_of(placed) == {
        sellers.a: (1000, 500, 315, 1815),
        sellers.b: (1000, 300, 273, 1573),
    }
    refund = order_service_pb2.RefundOrderRequest(order_id=placed.order_id, reason="lost")
    # A seller refunds at most their whole part, shipping and tax included.
    too_much = await failure_of(
        orders.stub.RefundOrder(
            order_service_pb2.RefundOrderRequest(
                order_id=placed.order_id, reason="lost", amount=money_to_proto(Money(1816, "USD"))
            ),
            metadata=keyed(sellers.token_a),
        )
    )
    assert too_much.reason == "REFUND_EXCEEDS_CAPTURED"
    charge = orders.gateway.captured()[-1]
    assert charge.amount == Money(3388, "USD")
    by_a = await orders.stub.RefundOrder(refund, metadata=keyed(sellers.token_a))
    assert by_a.status == order_pb2.ORDER_STATUS_PARTIALLY_REFUNDED
    assert charge.refunded_minor == 1815
    whole = await orders.stub.RefundOrder(refund, metadata=keyed(admin))
    assert whole.status == order_pb2.ORDER_STATUS_REFUNDED
    assert cents(whole.payment.refunded_amount) == 3388 == cents(whole.total)
    assert charge.refunded_minor == 3388

    # Cancelling a paid order gives back the whole total.
    other = await orders.stub.CreateOrder(order_to("BE", (product_a, 2)), metadata=keyed(buyer))
    assert totals_of(other) == (2000, 500, 525, 3025)
    cancelled = await orders.stub.CancelOrder(
        order_service_pb2.CancelOrderRequest(order_id=other.order_id, reason="changed my mind"),
        metadata=bearer(buyer),
    )
    assert cancelled.status == order_pb2.ORDER_STATUS_CANCELLED
    assert cents(cancelled.payment.refunded_amount) == 3025


async def report(orders: OrderService, admin: str, grouping: int) -> order_service_pb2.SalesReport:
    today = datetime.now(UTC).date()
    day = date_pb2.Date(year=today.year, month=today.month, day=today.day)
    return await orders.stub.GetSalesReport(
        order_service_pb2.GetSalesReportRequest(
            start_date=day,
            end_date=day,
            grouping=grouping,  # type: ignore[arg-type]
        ),
        metadata=bearer(admin),
    )


async def test_sales_reports_count_gross_totals_and_reconcile_by_day_and_by_seller(
    orders: OrderService, product: ProductService, tokens: TestTokens
) -> None:
    admin = tokens.mint(roles=(Role.ADMIN,))
    sellers = Sellers(tokens)
    await set_profile(orders, sellers.token_a, default=rate(flat=333, per_item=17))
    await set_tax(orders, admin, "PL", 2300)
    product_a = await listed(product, sellers.token_a, price=1234)
    product_b = await listed(product, sellers.token_b, price=999)
    buyer = await orders.accounts.buyer_token()
    placed = await orders.stub.CreateOrder(
        order_to("PL", (product_a, 3), (product_b, 2)), metadata=keyed(buyer)
    )
    # An admin refunds 7.77 of the order without naming a seller: split over the parts.
    await orders.stub.RefundOrder(
        order_service_pb2.RefundOrderRequest(
            order_id=placed.order_id, reason="late", amount=money_to_proto(Money(777, "USD"))
        ),
        metadata=keyed(admin),
    )
    by_seller = await report(orders, admin, order_service_pb2.SALES_REPORT_GROUPING_SELLER)
    by_day = await report(orders, admin, order_service_pb2.SALES_REPORT_GROUPING_DAY)
    rows = {r.seller_id: r for r in by_seller.rows}
    part_a, part_b = (parts_of(placed)[s] for s in (sellers.a, sellers.b))
    # Each seller's row is their part's total (items, shipping, tax) less their refund share.
    net = cents(rows[sellers.a].total) + cents(rows[sellers.b].total)
    assert net == part_a[3] + part_b[3] - 777
    assert cents(rows[sellers.a].shipping_total) == part_a[1] == 333 + 3 * 17
    assert cents(rows[sellers.a].tax_total) == part_a[2]
    assert cents(rows[sellers.b].tax_total) == part_b[2]
    # By day and by seller reconcile to the cent over every order of the day.
    assert cents(by_day.total) == cents(by_seller.total)
    assert sum(cents(r.shipping_total) for r in by_day.rows) == sum(
        cents(r.shipping_total) for r in by_seller.rows
    )
    assert sum(cents(r.tax_total) for r in by_day.rows) == sum(
        cents(r.tax_total) for r in by_seller.rows
    )


async def test_sellers_set_only_their_own_profile_and_only_admins_touch_tax_rates(
    orders: OrderService, tokens: TestTokens
) -> None:
    buyer = tokens.mint(roles=(Role.CUSTOMER,))
    seller = tokens.mint(roles=(Role.SELLER,))
    admin = tokens.mint(roles=(Role.ADMIN,))
    stub = pricing(orders)
    profile = pricing_service_pb2.UpdateShippingProfileRequest(
        shipping_profile=pricing_pb2.ShippingProfile(currency_code="USD", default_rate=rate(flat=1))
    )
    tax = pricing_service_pb2.UpdateTaxRateRequest(
        tax_rate=pricing_pb2.TaxRate(country_code="FI", basis_points=2400), allow_missing=True
    )
    for call in (
        stub.UpdateShippingProfile(profile, metadata=bearer(buyer)),
        stub.GetShippingProfile(
            pricing_service_pb2.GetShippingProfileRequest(), metadata=bearer(admin)
        ),
        stub.UpdateTaxRate(tax, metadata=bearer(seller)),
        stub.ListTaxRates(pricing_service_pb2.ListTaxRatesRequest(), metadata=bearer(seller)),
        stub.DeleteTaxRate(
            pricing_service_pb2.DeleteTaxRateRequest(country_code="FI"), metadata=bearer(buyer)
        ),
    ):
        denied = await failure_of(call)
        assert (denied.code, denied.reason) == (grpc.StatusCode.PERMISSION_DENIED, "ROLE_REQUIRED")
    unauthenticated = await failure_of(stub.UpdateTaxRate(tax))
    assert unauthenticated.code == grpc.StatusCode.UNAUTHENTICATED
    assert not any(
        r.country_code == "FI"
        for r in (
            await stub.ListTaxRates(
                pricing_service_pb2.ListTaxRatesRequest(), metadata=bearer(admin)
            )
        ).tax_rates
    )

    # The seller's profile: empty until set, then exactly what was set, then patched.
    empty = await stub.GetShippingProfile(
        pricing_service_pb2.GetShippingProfileRequest(), metadata=bearer(seller)
    )
    assert not empty.HasField("default_rate") and not empty.country_rates
    await stub.UpdateShippingProfile(profile, metadata=bearer(seller))
    patched = await stub.UpdateShippingProfile(
        pricing_service_pb2.UpdateShippingProfileRequest(
            shipping_profile=pricing_pb2.ShippingProfile(
                currency_code="USD", country_rates=[rate("fr", flat=700)]
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["country_rates"]),
        ),
        metadata=bearer(seller),
    )
    assert cents(patched.default_rate.flat_fee) == 1  # kept: not in the mask
    assert [(r.country_code, cents(r.flat_fee)) for r in patched.country_rates] == [("FR", 700)]
    assert patched.name.startswith("sellers/") and patched.name.endswith("/shippingProfile")
    read = await stub.GetShippingProfile(
        pricing_service_pb2.GetShippingProfileRequest(), metadata=bearer(seller)
    )
    assert read == patched

    # Admins: create only with allow_missing, replace, list, delete; NOT_FOUND after.
    missing = await failure_of(
        stub.UpdateTaxRate(
            pricing_service_pb2.UpdateTaxRateRequest(tax_rate=tax.tax_rate),
            metadata=bearer(admin),
        )
    )
    assert (missing.code, missing.reason) == (grpc.StatusCode.NOT_FOUND, "TAX_RATE_NOT_FOUND")
    created = await stub.UpdateTaxRate(tax, metadata=bearer(admin))
    assert (created.name, created.basis_points) == ("taxRates/FI", 2400)
    listed_rates = await stub.ListTaxRates(
        pricing_service_pb2.ListTaxRatesRequest(), metadata=bearer(admin)
    )
    assert ("FI", 2400) in [(r.country_code, r.basis_points) for r in listed_rates.tax_rates]
    await stub.DeleteTaxRate(
        pricing_service_pb2.DeleteTaxRateRequest(country_code="FI"), metadata=bearer(admin)
    )
    gone = await failure_of(
        stub.DeleteTaxRate(
            pricing_service_pb2.DeleteTaxRateRequest(country_code="FI"), metadata=bearer(admin)
        )
    )
    assert (gone.code, gone.reason) == (grpc.StatusCode.NOT_FOUND, "TAX_RATE_NOT_FOUND")


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (
            pricing_service_pb2.UpdateTaxRateRequest(
                tax_rate=pricing_pb2.TaxRate(country_code="FI", basis_points=10_001),
                allow_missing=True,
            ),
            "tax_rate.basis_points",
        ),
        (
            pricing_service_pb2.UpdateTaxRateRequest(
                tax_rate=pricing_pb2.TaxRate(country_code="XX", basis_points=100),
                allow_missing=True,
            ),
            "tax_rate.country_code",
        ),
    ],
)
async def test_bad_tax_rates_are_invalid_arguments(
    orders: OrderService,
    tokens: TestTokens,
    request_: pricing_service_pb2.UpdateTaxRateRequest,
    field: str,
) -> None:
    bad = await failure_of(
        pricing(orders).UpdateTaxRate(request_, metadata=bearer(tokens.mint(roles=(Role.ADMIN,))))
    )
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in bad.violations] == [field]


async def test_bad_shipping_profiles_are_invalid_arguments(
    orders: OrderService, tokens: TestTokens
) -> None:
    seller = tokens.mint(roles=(Role.SELLER,))
    negative = rate("DE", flat=100)
    negative.flat_fee.units = -1
    for profile, field in (
        (pricing_pb2.ShippingProfile(currency_code="US"), "shipping_profile.currency_code"),
        (
            pricing_pb2.ShippingProfile(currency_code="USD", country_rates=[negative]),
            "shipping_profile.country_rates[0].flat_fee",
        ),
        (
            pricing_pb2.ShippingProfile(
                currency_code="USD", country_rates=[rate("DE"), rate("de")]
            ),
            "shipping_profile.country_rates",
        ),
    ):
        bad = await failure_of(
            pricing(orders).UpdateShippingProfile(
                pricing_service_pb2.UpdateShippingProfileRequest(shipping_profile=profile),
                metadata=bearer(seller),
            )
        )
        assert bad.code == grpc.StatusCode.INVALID_ARGUMENT
        assert field in [v.field for v in bad.violations]


async def test_concurrent_masked_updates_of_one_profile_keep_both_changes(
    orders: OrderService, tokens: TestTokens
) -> None:
    seller = tokens.mint(roles=(Role.SELLER,))
    stub = pricing(orders)
    await set_profile(orders, seller, default=rate(flat=1), countries=(rate("DE", flat=1),))

    async def masked(field: str, profile: pricing_pb2.ShippingProfile) -> None:
        await stub.UpdateShippingProfile(
            pricing_service_pb2.UpdateShippingProfileRequest(
                shipping_profile=profile, update_mask=field_mask_pb2.FieldMask(paths=[field])
            ),
            metadata=bearer(seller),
        )

    for round_ in range(2, 7):
        # Each update names one field and keeps the other: neither may undo the other.
        await asyncio.gather(
            masked(
                "default_rate",
                pricing_pb2.ShippingProfile(currency_code="USD", default_rate=rate(flat=round_)),
            ),
            masked(
                "country_rates",
                pricing_pb2.ShippingProfile(
                    currency_code="USD", country_rates=[rate("DE", flat=round_)]
                ),
            ),
        )
        stored = await stub.GetShippingProfile(
            pricing_service_pb2.GetShippingProfileRequest(), metadata=bearer(seller)
        )
        assert cents(stored.default_rate.flat_fee) == round_
        assert [(r.country_code, cents(r.flat_fee)) for r in stored.country_rates] == [
            ("DE", round_)
        ]
