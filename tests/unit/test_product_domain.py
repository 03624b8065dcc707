"""The product domain and its validation rules, without I/O."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from marketplace.order.v1 import events_pb2, order_pb2
from marketplace.product.v1 import product_service_pb2

from services.common.clock import SystemClock
from services.common.errors import InvalidArgument
from services.common.identity import Caller, Role
from services.common.money import Money
from services.product.adapters.mongo.search import filter_value
from services.product.adapters.order_stream import parse_entry
from services.product.demo_catalog import demo_products
from services.product.domain.commands import (
    CreateProduct,
    CreateReview,
    SearchProducts,
    SortOrder,
)
from services.product.domain.model import (
    Discount,
    Inventory,
    Product,
    ProductState,
    Reservation,
    ReservationLine,
    ReservationState,
    attribute_pair,
    effective_price,
    next_price_change,
    parse_etag,
    to_millis,
)
from services.product.mappers import products as product_mappers
from services.product.service_layer import listings, validation
from services.product.service_layer.order_events import OrderEvent, OrderEventKind
from services.product.service_layer.recommendations import similarity
from services.product.service_layer.reviews import create_review
from tests.fakes.product import FakePurchases, ProductFakes

SELLER = Caller("seller-1", frozenset({Role.SELLER}), email_verified=True)


def command(**fields: Any) -> CreateProduct:
    values: dict[str, Any] = {
        "title": "Linen shirt",
        "description": "",
        "category": "apparel",
        "subcategory": "",
        "attributes": {},
        "list_price": Money(4000, "USD"),
        "sale_price": None,
        "initial_stock": 0,
        "image_urls": (),
        "publish": False,
        "caller": SELLER,
    }
    values.update(fields)
    return CreateProduct(**values)


def violated(create: CreateProduct) -> list[str]:
    with pytest.raises(InvalidArgument) as error:
        validation.validate_create_product(create)
    return [v.field for v in error.value.violations]


def test_the_effective_price_is_the_sale_price_when_set() -> None:
    product = Product(
        product_id="p",
        seller_id="s",
        title="t",
        description="",
        category="c",
        subcategory="",
        attributes={},
        list_price=Money(1000, "USD"),
        sale_price=None,
        inventory=Inventory(on_hand=3, reserved=1),
        state=ProductState.DRAFT,
        image_urls=(),
        create_time=to_millis(SystemClock().now()),
        update_time=to_millis(SystemClock().now()),
    )
    now = SystemClock().now()
    assert product.effective_price_at(now) == Money(1000, "USD")
    on_sale = replace(product, sale_price=Money(800, "USD"))
    assert on_sale.effective_price_at(now) == Money(800, "USD")
    assert product.inventory.available == 2
    assert product.visible_to("s", is_admin=False)
    assert product.visible_to(None, is_admin=True)
    assert not product.visible_to("someone", is_admin=False)
    assert not product.visible_to(None, is_admin=False)
    assert replace(product, state=ProductState.PUBLISHED).visible_to(None, is_admin=False)


def test_a_reservation_recognises_the_same_request_in_any_order() -> None:
    lines = (ReservationLine("a", 1), ReservationLine("b", 2))
    reservation = Reservation("o", ReservationState.RESERVED, lines)
    assert reservation.same_request(tuple(reversed(lines)))
    assert not reservation.same_request((ReservationLine("a", 1),))
    assert not reservation.same_request((ReservationLine("a", 1), ReservationLine("b", 3)))


def test_a_valid_product_passes() -> None:
    validation.validate_create_product(
        command(
            subcategory="shirts",
            sale_price=Money(3500, "USD"),
            attributes={"colour": "white", "weight_g": 180.0, "organic": True},
            image_urls=("https://img.example.com/shirt.jpg",),
            initial_stock=1_000_000,
        )
    )


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"title": ""}, "product.title"),
        ({"category": "Apparel"}, "product.category"),
        ({"category": "a--b"}, "product.category"),
        ({"subcategory": "b-"}, "product.subcategory"),
        ({"list_price": None}, "product.list_price"),
        ({"sale_price": Money(4000, "USD")}, "product.sale_price"),
        ({"sale_price": Money(100, "EUR")}, "product.sale_price"),
        ({"initial_stock": -1}, "product.initial_stock"),
        ({"attributes": {"x": float("nan")}}, "product.attributes[x]"),
        ({"attributes": {"9lives": "yes"}}, "product.attributes[9lives]"),
        ({"image_urls": ("ftp://img.example.com/a.jpg",)}, "product.image_urls[0]"),
        ({"image_urls": ("https:///no-host",)}, "product.image_urls[0]"),
    ],
)
def test_each_invalid_field_is_named(fields: dict[str, Any], field: str) -> None:
    assert field in violated(command(**fields))


def test_the_sort_order_follows_the_query() -> None:
    assert validation.validate_search(SearchProducts()).sort_order is SortOrder.NEWEST
    assert (
        validation.validate_search(SearchProducts(query="lamp")).sort_order is SortOrder.RELEVANCE
    )
    relevance_without_query = SearchProducts(sort_order=SortOrder.RELEVANCE)
    assert validation.validate_search(relevance_without_query).sort_order is SortOrder.NEWEST
    priced = SearchProducts(query="lamp", sort_order=SortOrder.PRICE_ASCENDING)
    assert validation.validate_search(priced).sort_order is SortOrder.PRICE_ASCENDING
    spaced = validation.validate_search(SearchProducts(query="  desk   lamp "))
    assert spaced.query == "desk lamp"


@pytest.mark.parametrize(
    ("category", "subcategory", "field"),
    [
        ("garden", "", "product.category"),
        ("shirts", "", "product.category"),  # a subcategory is not a top-level category
        ("apparel", "sweaters", "product.subcategory"),
    ],
)
async def test_products_name_categories_of_the_tree(
    category: str, subcategory: str, field: str
) -> None:
    fakes = ProductFakes()
    seller = Caller(str(uuid.uuid4()), frozenset({Role.SELLER}), email_verified=True)
    with pytest.raises(InvalidArgument) as error:
        await listings.create_product(
            command(category=category, subcategory=subcategory, caller=seller),
            products=fakes.products,
            categories=fakes.categories,
            clock=SystemClock(),
        )
    assert [v.field for v in error.value.violations] == [field]
    assert fakes.stored == {}
    listed = await listings.create_product(
        command(subcategory="shirts", caller=seller),
        products=fakes.products,
        categories=fakes.categories,
        clock=SystemClock(),
    )
    assert (listed.category, listed.subcategory) == ("apparel", "shirts")


def test_the_demo_catalog_is_valid_and_varied() -> None:
    catalog = demo_products()
    assert catalog == demo_products()  # deterministic
    assert len(catalog) >= 250  # hundreds, so search and recommendations show something
    assert len({p.category for p in catalog}) >= 6
    assert all(p.subcategory and p.attributes for p in catalog)
    assert all(0 <= p.initial_stock <= 200 for p in catalog)
    assert any(p.initial_stock == 0 for p in catalog)
    assert any(p.HasField("sale_price") for p in catalog)
    assert len({p.title for p in catalog}) == len(catalog)
    for message in catalog:
        request = product_service_pb2.CreateProductRequest(product=message, publish=True)
        validation.validate_create_product(
            product_mappers.create_product_command(request, caller=SELLER)
        )


def test_the_best_active_discount_wins_and_discounts_do_not_stack() -> None:
    now = datetime(2026, 6, 1, tzinfo=UTC)
    hour = timedelta(hours=1)
    usd = Money(10_000, "USD")
    ten = Discount("a", now - hour, now + hour, percent_off=10)
    fixed = Discount("b", now - hour, now + hour, amount_off=Money(2_500, "USD"))
    later = Discount("c", now + hour, now + 2 * hour, percent_off=90)
    assert effective_price(usd, None, [ten], now) == Money(9_000, "USD")
    assert effective_price(usd, None, [ten, fixed, later], now) == Money(7_500, "USD")
    assert effective_price(usd, Money(8_000, "USD"), [ten], now) == Money(7_200, "USD")
    assert effective_price(usd, None, [later], now + hour) == Money(1_000, "USD")
    assert effective_price(usd, None, [later], now + 2 * hour) == usd  # the end is exclusive
    odd = Discount("d", now - hour, now + hour, percent_off=33)
    assert effective_price(Money(999, "USD"), None, [odd], now) == Money(999 - 329, "USD")
    huge = Discount("e", now - hour, now + hour, amount_off=Money(50_000, "USD"))
    assert effective_price(usd, None, [huge], now) == Money(1, "USD")
    assert next_price_change([ten, later], now) == now + hour
    assert next_price_change([ten], now + 2 * hour) is None


def test_attribute_pairs_are_normalised_for_filters_and_facets() -> None:
    assert attribute_pair("colour", "  Light   Blue ") == "colour=light blue"
    assert attribute_pair("watts", 65.0) == "watts=65"
    assert attribute_pair("weight_kg", 1.6) == "weight_kg=1.6"
    assert attribute_pair("wireless", True) == "wireless=true"
    assert filter_value("65.0") == "65" and filter_value("TRUE") == "true"
    assert filter_value("Black") == "black"


def test_etags_name_versions() -> None:
    assert parse_etag("7") == 7 and parse_etag('W/"7"') == 7
    assert parse_etag("") is None and parse_etag("seven") is None


def test_similarity_prefers_subcategory_attributes_and_words() -> None:
    anchor = replace(
        a_listing(), title="Trail running shoes", subcategory="shoes", attributes={"colour": "red"}
    )
    twin = replace(anchor, product_id="twin", title="Trail running shoes for mud")
    cousin = replace(anchor, product_id="cousin", title="Road running shoes", attributes={})
    stranger = replace(
        anchor, product_id="x", title="Camping lantern", subcategory="lights", attributes={}
    )
    scores = [similarity(anchor, p) for p in (twin, cousin, stranger)]
    assert scores == sorted(scores, reverse=True) and scores[2] < scores[1]


def test_stream_entries_parse_into_events_and_garbage_is_refused() -> None:
    event = events_pb2.OrderEvent(
        event_id="e1",
        event_type=events_pb2.ORDER_EVENT_TYPE_DELIVERED,
        order=order_pb2.Order(
            order_id="o1",
            buyer_id="b1",
            items=[
                order_pb2.OrderItem(product_id="p1", quantity=1),
                order_pb2.OrderItem(product_id="p1", quantity=2),
                order_pb2.OrderItem(product_id="p2", quantity=1),
            ],
        ),
    )
    parsed = parse_entry(
        {
            b"event_id": b"e1",
            b"type": b"ORDER_EVENT_TYPE_DELIVERED",
            b"payload": event.SerializeToString(),
        }
    )
    assert parsed == OrderEvent(
        "e1", OrderEventKind.DELIVERED, "o1", "b1", ("p1", "p2"), (("p1", 3), ("p2", 1))
    )
    unknown = parse_entry({b"event_id": b"e2", b"type": b"ORDER_EVENT_TYPE_SHIPPED"})
    assert unknown is not None and unknown.kind is OrderEventKind.OTHER
    assert parse_entry({b"payload": b"\xff\xff"}) is None
    assert parse_entry({b"type": b"ORDER_EVENT_TYPE_PAID"}) is None  # no event id


def a_listing() -> Product:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    return Product(
        product_id="anchor",
        seller_id="s",
        title="t",
        description="",
        category="c",
        subcategory="",
        attributes={},
        list_price=Money(100, "USD"),
        sale_price=None,
        inventory=Inventory(1),
        state=ProductState.PUBLISHED,
        image_urls=(),
        create_time=moment,
        update_time=moment,
    )


class RacingPurchases(FakePurchases):
    """Reports the delivery only from the second question on, as if its event landed between."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = 0

    async def has_received(self, buyer_id: str, product_id: str) -> bool:
        self.asked += 1
        return self.asked > 1


async def test_a_delivery_recorded_while_the_review_is_written_still_verifies_it() -> None:
    fakes = ProductFakes(purchases=RacingPurchases())
    seller = Caller(str(uuid.uuid4()), frozenset({Role.SELLER}), email_verified=True)
    product = await listings.create_product(
        command(publish=True, caller=seller),
        products=fakes.products,
        categories=fakes.categories,
        clock=SystemClock(),
    )
    buyer = Caller(str(uuid.uuid4()), frozenset({Role.CUSTOMER}), email_verified=True)
    review = await create_review(
        CreateReview(product_id=product.product_id, rating=5, title="Great", caller=buyer),
        products=fakes.products,
        reviews=fakes.reviews,
        purchases=fakes.purchases,
        clock=SystemClock(),
    )
    assert review.verified_purchase
    assert fakes.reviews.stored[review.review_id].verified_purchase
