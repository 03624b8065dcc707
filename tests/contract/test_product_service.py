"""The product service over real gRPC on the MongoDB wire server: statuses and effects."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import pytest_asyncio
from google.type import money_pb2
from marketplace.product.v1 import product_pb2, product_service_pb2, product_service_pb2_grpc
from pymongo import AsyncMongoClient

from services.common.identity import Role
from services.common.rpc_status import remote_error
from services.product.config import Settings
from tests.support.failures import failure_of, violated_fields
from tests.support.inprocess import InProcessService
from tests.support.product import (
    create,
    internal_stub,
    product,
    product_settings,
    product_stub,
    reserve_request,
    serve_product,
    usd,
    word,
)
from tests.support.servers import Backends
from tests.support.tokens import TestTokens, bearer

SECRET = "product-contract-secret"
pytestmark = pytest.mark.asyncio(loop_scope="session")

if TYPE_CHECKING:
    from tests.support.product import InternalStub, ProductStub


@pytest.fixture(scope="module")
def settings(backends: Backends) -> Settings:
    return product_settings(
        backends,
        "products_contract",
        internal_secret=SECRET,
        # This module has always run with the default 2 s shutdown notice and a 1 s grace.
        shutdown_grace_seconds=1.0,
        shutdown_notice_seconds=2.0,
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def service(settings: Settings, tokens: TestTokens) -> AsyncIterator[InProcessService]:
    # Unlike the other modules, the app runs its background workers here.
    async with serve_product(settings, tokens, start_workers=True) as (served, _):
        yield served


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def mongo(settings: Settings) -> AsyncIterator[Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(str(settings.mongo_url))
    yield client[settings.mongo_database]
    await client.close()


@pytest.fixture
def stub(service: InProcessService) -> ProductStub:
    return product_stub(service)


@pytest.fixture
def internal(service: InProcessService) -> InternalStub:
    return internal_stub(service)


def newest_first(*products: product_pb2.Product) -> list[str]:
    """Ids in search's default order: newest first, ties (same millisecond) by id descending."""
    ordered = sorted(
        products, key=lambda p: (p.create_time.ToMilliseconds(), p.product_id), reverse=True
    )
    return [p.product_id for p in ordered]


async def stock_of(mongo: Any, product_id: str) -> dict[str, int]:
    doc = await mongo.products.find_one({"_id": product_id})
    inventory: dict[str, int] = doc["inventory"]
    return inventory


# --- CreateProduct -------------------------------------------------------------------------


async def test_seller_creates_a_published_product(stub: ProductStub, tokens: TestTokens) -> None:
    seller = str(uuid.uuid4())
    created = await create(
        stub,
        tokens,
        seller_id=seller,
        sale_price=usd(59, 99),
        attributes={
            "colour": product_pb2.AttributeValue(text_value="navy"),
            "weight_g": product_pb2.AttributeValue(number_value=420),
            "machine_washable": product_pb2.AttributeValue(bool_value=True),
        },
        image_urls=["https://img.example.com/sweater.jpg"],
        product_id="ignored-output-only",
    )

    assert created.product_id != "ignored-output-only"
    uuid.UUID(created.product_id)
    assert created.seller_id == seller
    assert created.state == product_pb2.PRODUCT_STATE_PUBLISHED
    assert created.effective_price == usd(59, 99)
    assert created.list_price == usd(80)
    assert created.stock_available == 10
    assert created.etag == "1"
    assert created.create_time.seconds > 0 and created.update_time == created.create_time
    assert created.attributes["colour"].text_value == "navy"
    assert created.attributes["weight_g"].number_value == 420
    assert created.attributes["machine_washable"].bool_value is True

    fetched = await stub.GetProduct(
        product_service_pb2.GetProductRequest(product_id=created.product_id)
    )
    assert fetched == created


async def test_admin_may_create_and_publish_false_makes_a_draft(
    stub: ProductStub, tokens: TestTokens
) -> None:
    admin = tokens.mint(roles=(Role.ADMIN,))
    created = await stub.CreateProduct(
        product_service_pb2.CreateProductRequest(product=product()), metadata=bearer(admin)
    )
    assert created.state == product_pb2.PRODUCT_STATE_DRAFT
    assert created.effective_price == usd(80)


async def test_customers_are_denied_and_anonymous_callers_unauthenticated(
    stub: ProductStub, tokens: TestTokens
) -> None:
    title_word = word()
    request = product_service_pb2.CreateProductRequest(
        product=product(title=f"Denied {title_word}"), publish=True
    )
    denied = await failure_of(
        stub.CreateProduct(request, metadata=bearer(tokens.mint(roles=(Role.CUSTOMER,))))
    )
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    assert denied.reason == "ROLE_REQUIRED"

    anonymous = await failure_of(stub.CreateProduct(request))
    assert anonymous.code == grpc.StatusCode.UNAUTHENTICATED

    found = await stub.SearchProducts(product_service_pb2.SearchProductsRequest(query=title_word))
    assert found.total_size == 0


async def test_an_invalid_product_lists_every_violation_and_stores_nothing(
    stub: ProductStub, tokens: TestTokens, mongo: Any
) -> None:
    seller = str(uuid.uuid4())
    bad = product_pb2.Product(
        title="",
        description="x" * 5001,
        category="Not A Slug",
        subcategory="-bad",
        list_price=usd(10),
        sale_price=usd(12),
        initial_stock=-1,
        attributes={
            "Bad Key": product_pb2.AttributeValue(text_value="x"),
            "empty": product_pb2.AttributeValue(),
            "long": product_pb2.AttributeValue(text_value="y" * 201),
        },
        image_urls=["http://insecure.example.com/a.jpg", "not a url"],
    )
    token = tokens.mint(seller, roles=(Role.SELLER,))
    result = await failure_of(
        stub.CreateProduct(
            product_service_pb2.CreateProductRequest(product=bad, publish=True),
            metadata=bearer(token),
        )
    )
    assert result.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violated_fields(result)) == {
        "product.title",
        "product.description",
        "product.category",
        "product.subcategory",
        "product.sale_price",
        "product.initial_stock",
        "product.attributes[Bad Key]",
        "product.attributes[empty]",
        "product.attributes[long]",
        "product.image_urls[0]",
        "product.image_urls[1]",
    }
    assert await mongo.products.count_documents({"seller_id": seller}) == 0


@pytest.mark.parametrize(
    ("fields", "violated"),
    [
        ({"list_price": None}, "product.list_price"),
        ({"list_price": usd(0)}, "product.list_price"),
        (
            {"list_price": money_pb2.Money(currency_code="usd", units=5)},
            "product.list_price.currency_code",
        ),
        (
            {"list_price": money_pb2.Money(currency_code="USD", units=5, nanos=1)},
            "product.list_price.nanos",
        ),
        ({"sale_price": money_pb2.Money(currency_code="EUR", units=5)}, "product.sale_price"),
        ({"title": "t" * 201}, "product.title"),
        ({"title": "   "}, "product.title"),
        ({"category": ""}, "product.category"),
        ({"initial_stock": 1_000_001}, "product.initial_stock"),
        (
            {"image_urls": [f"https://img.example.com/{i}.jpg" for i in range(11)]},
            "product.image_urls",
        ),
        (
            {
                "attributes": {
                    f"a{i}": product_pb2.AttributeValue(bool_value=True) for i in range(51)
                }
            },
            "product.attributes",
        ),
    ],
)
async def test_each_rule_of_a_new_product_is_enforced(
    stub: ProductStub, tokens: TestTokens, mongo: Any, fields: dict[str, Any], violated: str
) -> None:
    seller = str(uuid.uuid4())
    message = product()
    for name, value in fields.items():
        if value is None:
            message.ClearField(name)  # type: ignore[arg-type]
        elif isinstance(value, list):
            getattr(message, name).extend(value)
        elif isinstance(value, dict):
            for key, item in value.items():
                getattr(message, name)[key].CopyFrom(item)
        elif isinstance(value, money_pb2.Money):
            getattr(message, name).CopyFrom(value)
        else:
            setattr(message, name, value)
    result = await failure_of(
        stub.CreateProduct(
            product_service_pb2.CreateProductRequest(product=message),
            metadata=bearer(tokens.mint(seller, roles=(Role.SELLER,))),
        )
    )
    assert result.code == grpc.StatusCode.INVALID_ARGUMENT
    assert violated in violated_fields(result)
    assert await mongo.products.count_documents({"seller_id": seller}) == 0


# --- GetProduct and BatchGetProducts -------------------------------------------------------


async def test_drafts_are_visible_to_their_seller_and_admins_only(
    stub: ProductStub, tokens: TestTokens
) -> None:
    seller = str(uuid.uuid4())
    draft = await create(stub, tokens, seller_id=seller, publish=False)
    request = product_service_pb2.GetProductRequest(product_id=draft.product_id)

    anonymous = await failure_of(stub.GetProduct(request))
    assert anonymous.code == grpc.StatusCode.NOT_FOUND
    assert anonymous.reason == "PRODUCT_NOT_FOUND"
    other_seller = tokens.mint(roles=(Role.SELLER,))
    assert (await failure_of(stub.GetProduct(request, metadata=bearer(other_seller)))).code == (
        grpc.StatusCode.NOT_FOUND
    )

    own = await stub.GetProduct(request, metadata=bearer(tokens.mint(seller, roles=(Role.SELLER,))))
    assert own.state == product_pb2.PRODUCT_STATE_DRAFT
    admin = await stub.GetProduct(request, metadata=bearer(tokens.mint(roles=(Role.ADMIN,))))
    assert admin.product_id == draft.product_id


async def test_get_product_validates_its_id(stub: ProductStub) -> None:
    empty = await failure_of(stub.GetProduct(product_service_pb2.GetProductRequest()))
    assert empty.code == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(empty) == ["product_id"]
    missing = await failure_of(
        stub.GetProduct(product_service_pb2.GetProductRequest(product_id=str(uuid.uuid4())))
    )
    assert missing.code == grpc.StatusCode.NOT_FOUND


async def test_batch_get_returns_visible_products_in_the_order_asked(
    stub: ProductStub, tokens: TestTokens
) -> None:
    first = await create(stub, tokens)
    second = await create(stub, tokens)
    draft = await create(stub, tokens, publish=False)
    asked = [second.product_id, str(uuid.uuid4()), draft.product_id, first.product_id]
    response = await stub.BatchGetProducts(
        product_service_pb2.BatchGetProductsRequest(product_ids=asked)
    )
    assert [p.product_id for p in response.products] == [second.product_id, first.product_id]

    too_many = await failure_of(
        stub.BatchGetProducts(product_service_pb2.BatchGetProductsRequest(product_ids=["x"] * 101))
    )
    assert too_many.code == grpc.StatusCode.INVALID_ARGUMENT
    none = await failure_of(stub.BatchGetProducts(product_service_pb2.BatchGetProductsRequest()))
    assert violated_fields(none) == ["product_ids"]


# --- SearchProducts ------------------------------------------------------------------------


async def test_text_search_finds_published_products_by_relevance(
    stub: ProductStub, tokens: TestTokens
) -> None:
    term = word()
    strong = await create(
        stub, tokens, title=f"{term} lamp", description=f"The {term} lamp, a true {term}."
    )
    weak = await create(stub, tokens, title="Desk lamp", description=f"Works with {term} bulbs.")
    await create(stub, tokens, title=f"{term} draft", publish=False)

    response = await stub.SearchProducts(product_service_pb2.SearchProductsRequest(query=term))
    assert [p.product_id for p in response.products] == [strong.product_id, weak.product_id]
    assert response.total_size == 2
    assert response.next_page_token == ""
    category = next(f for f in response.facets if f.field == "category")
    assert [(v.value, v.count) for v in category.values] == [("apparel", 2)]


async def test_search_filters_by_category_price_stock_seller_and_attribute(
    stub: ProductStub, tokens: TestTokens
) -> None:
    category = f"cat-{uuid.uuid4().hex[:10]}"
    seller = str(uuid.uuid4())
    cheap = await create(stub, tokens, category=category, list_price=usd(5), seller_id=seller)
    sold_out = await create(stub, tokens, category=category, list_price=usd(20), initial_stock=0)
    on_sale = await create(
        stub,
        tokens,
        category=category,
        list_price=usd(100),
        sale_price=usd(15),
        attributes={"colour": product_pb2.AttributeValue(text_value="red")},
    )
    await create(stub, tokens, category=f"{category}-other", list_price=usd(10))

    async def ids(**filters: Any) -> list[str]:
        request = product_service_pb2.SearchProductsRequest(category=category, **filters)
        return [p.product_id for p in (await stub.SearchProducts(request)).products]

    price_ascending = product_service_pb2.SORT_ORDER_PRICE_ASCENDING
    assert await ids(sort_order=price_ascending) == [
        cheap.product_id,
        on_sale.product_id,
        sold_out.product_id,
    ]
    assert await ids(sort_order=product_service_pb2.SORT_ORDER_PRICE_DESCENDING) == [
        sold_out.product_id,
        on_sale.product_id,
        cheap.product_id,
    ]
    # Newest first by default when there is no query.
    assert await ids() == newest_first(cheap, sold_out, on_sale)
    assert await ids(min_price_minor=1000, max_price_minor=1500, sort_order=price_ascending) == [
        on_sale.product_id
    ]
    assert await ids(in_stock_only=True, sort_order=price_ascending) == [
        cheap.product_id,
        on_sale.product_id,
    ]
    assert await ids(seller_id=seller) == [cheap.product_id]
    assert await ids(attribute_filters=["colour=red"]) == [on_sale.product_id]


async def test_search_pages_cover_every_match_once(stub: ProductStub, tokens: TestTokens) -> None:
    category = f"cat-{uuid.uuid4().hex[:10]}"
    created = [await create(stub, tokens, category=category) for _ in range(7)]

    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        response = await stub.SearchProducts(
            product_service_pb2.SearchProductsRequest(
                category=category, page_size=3, page_token=token
            )
        )
        pages += 1
        assert response.total_size == 7
        seen += [p.product_id for p in response.products]
        token = response.next_page_token
        if not token:
            break
    assert pages == 3
    assert seen == newest_first(*created)  # no duplicates, no gaps


async def test_search_refuses_bad_input(stub: ProductStub) -> None:
    async def refused(**fields: Any) -> list[str]:
        result = await failure_of(
            stub.SearchProducts(product_service_pb2.SearchProductsRequest(**fields))
        )
        assert result.code == grpc.StatusCode.INVALID_ARGUMENT
        return violated_fields(result)

    assert await refused(page_size=-1) == ["page_size"]
    assert await refused(page_token="garbage!") == ["page_token"]
    assert await refused(category="Bad Slug") == ["category"]
    assert await refused(min_price_minor=-5) == ["min_price_minor"]
    assert await refused(min_price_minor=500, max_price_minor=100) == ["max_price_minor"]
    assert await refused(attribute_filters=["colour"]) == ["attribute_filters[0]"]
    assert await refused(min_rating=6) == ["min_rating"]
    assert await refused(sort_order=99) == ["sort_order"]


async def test_a_page_token_only_continues_the_search_it_came_from(
    stub: ProductStub, tokens: TestTokens
) -> None:
    category = f"cat-{uuid.uuid4().hex[:10]}"
    for _ in range(3):
        await create(stub, tokens, category=category)
    first = await stub.SearchProducts(
        product_service_pb2.SearchProductsRequest(category=category, page_size=2)
    )
    assert first.next_page_token
    reused = await failure_of(
        stub.SearchProducts(
            product_service_pb2.SearchProductsRequest(
                category=f"{category}-x", page_size=2, page_token=first.next_page_token
            )
        )
    )
    assert reused.code == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(reused) == ["page_token"]
    # Only the page size may change between pages.
    rest = await stub.SearchProducts(
        product_service_pb2.SearchProductsRequest(
            category=category, page_size=50, page_token=first.next_page_token
        )
    )
    assert len(rest.products) == 1 and rest.next_page_token == ""


async def test_page_size_defaults_to_20_and_is_capped_at_100(
    stub: ProductStub, tokens: TestTokens
) -> None:
    category = f"cat-{uuid.uuid4().hex[:10]}"
    await asyncio.gather(*(create(stub, tokens, category=category) for _ in range(21)))
    default = await stub.SearchProducts(
        product_service_pb2.SearchProductsRequest(category=category)
    )
    assert len(default.products) == 20 and default.next_page_token
    capped = await stub.SearchProducts(
        product_service_pb2.SearchProductsRequest(category=category, page_size=1000)
    )
    assert len(capped.products) == 21 and capped.next_page_token == ""


# --- Reservations ---------------------------------------------------------------------------


async def test_reserve_prices_items_and_is_idempotent(
    stub: ProductStub, internal: InternalStub, tokens: TestTokens, mongo: Any
) -> None:
    seller = str(uuid.uuid4())
    sweater = await create(stub, tokens, seller_id=seller, sale_price=usd(59, 99), initial_stock=5)
    socks = await create(stub, tokens, title="Wool socks", list_price=usd(12), initial_stock=3)
    order = str(uuid.uuid4())
    request = reserve_request(order, (sweater.product_id, 2), (socks.product_id, 3))

    first = await internal.ReserveInventory(request)
    assert [(i.product_id, i.quantity, i.unit_price) for i in first.items] == [
        (sweater.product_id, 2, usd(59, 99)),
        (socks.product_id, 3, usd(12)),
    ]
    assert first.items[0].seller_id == seller
    assert first.items[1].title == "Wool socks"

    again = await internal.ReserveInventory(request)
    assert again == first
    assert await stock_of(mongo, sweater.product_id) == {
        "on_hand": 5,
        "reserved": 2,
        "available": 3,
    }
    assert await stock_of(mongo, socks.product_id) == {"on_hand": 3, "reserved": 3, "available": 0}

    different = await failure_of(
        internal.ReserveInventory(reserve_request(order, (sweater.product_id, 1)))
    )
    assert different.code == grpc.StatusCode.FAILED_PRECONDITION
    assert different.reason == "RESERVATION_MISMATCH"


async def test_commit_sells_the_units_once(
    stub: ProductStub, internal: InternalStub, tokens: TestTokens, mongo: Any
) -> None:
    item = await create(stub, tokens, initial_stock=5)
    order = str(uuid.uuid4())
    await internal.ReserveInventory(reserve_request(order, (item.product_id, 2)))
    commit = product_service_pb2.CommitReservationRequest(order_id=order)
    await internal.CommitReservation(commit)
    await internal.CommitReservation(commit)
    assert await stock_of(mongo, item.product_id) == {"on_hand": 3, "reserved": 0, "available": 3}

    release = await failure_of(
        internal.ReleaseReservation(product_service_pb2.ReleaseReservationRequest(order_id=order))
    )
    assert release.code == grpc.StatusCode.FAILED_PRECONDITION
    assert release.reason == "RESERVATION_COMMITTED"
    unknown = await failure_of(
        internal.CommitReservation(
            product_service_pb2.CommitReservationRequest(order_id=str(uuid.uuid4())),
        )
    )
    assert unknown.code == grpc.StatusCode.NOT_FOUND
    assert unknown.reason == "RESERVATION_NOT_FOUND"


async def test_release_returns_the_units_once(
    stub: ProductStub, internal: InternalStub, tokens: TestTokens, mongo: Any
) -> None:
    item = await create(stub, tokens, initial_stock=5)
    order = str(uuid.uuid4())
    await internal.ReserveInventory(reserve_request(order, (item.product_id, 4)))
    release = product_service_pb2.ReleaseReservationRequest(order_id=order)
    await internal.ReleaseReservation(release)
    await internal.ReleaseReservation(release)
    assert await stock_of(mongo, item.product_id) == {"on_hand": 5, "reserved": 0, "available": 5}

    commit = await failure_of(
        internal.CommitReservation(product_service_pb2.CommitReservationRequest(order_id=order))
    )
    assert commit.code == grpc.StatusCode.FAILED_PRECONDITION
    assert commit.reason == "RESERVATION_RELEASED"
    reserve_again = await failure_of(
        internal.ReserveInventory(reserve_request(order, (item.product_id, 4)))
    )
    assert reserve_again.reason == "RESERVATION_RELEASED"

    unknown_order = str(uuid.uuid4())
    await internal.ReleaseReservation(
        product_service_pb2.ReleaseReservationRequest(order_id=unknown_order)
    )
    assert await mongo.reservations.count_documents({"_id": unknown_order}) == 0


async def test_reserve_is_all_or_nothing(
    stub: ProductStub, internal: InternalStub, tokens: TestTokens, mongo: Any
) -> None:
    plenty = await create(stub, tokens, initial_stock=10)
    scarce = await create(stub, tokens, initial_stock=1)
    draft = await create(stub, tokens, publish=False)
    order = str(uuid.uuid4())

    short = await failure_of(
        internal.ReserveInventory(
            reserve_request(order, (plenty.product_id, 3), (scarce.product_id, 2)),
        )
    )
    assert short.code == grpc.StatusCode.FAILED_PRECONDITION
    assert short.reason == "OUT_OF_STOCK"
    assert short.metadata == {"product_id": scarce.product_id}
    assert await stock_of(mongo, plenty.product_id) == {
        "on_hand": 10,
        "reserved": 0,
        "available": 10,
    }
    assert await mongo.reservations.count_documents({"_id": order}) == 0

    for missing in (draft.product_id, str(uuid.uuid4())):
        unknown = await failure_of(
            internal.ReserveInventory(reserve_request(order, (plenty.product_id, 1), (missing, 1)))
        )
        assert unknown.code == grpc.StatusCode.NOT_FOUND
        assert unknown.reason == "PRODUCT_NOT_FOUND"
        assert unknown.metadata == {"product_id": missing}
    assert (await stock_of(mongo, plenty.product_id))["available"] == 10

    # A failed order id may try again once the items are there.
    ok = await internal.ReserveInventory(
        reserve_request(order, (plenty.product_id, 3), (scarce.product_id, 1))
    )
    assert len(ok.items) == 2


async def test_reserve_refuses_malformed_requests(internal: InternalStub) -> None:
    product_id = str(uuid.uuid4())

    async def refused(request: Any) -> list[str]:
        result = await failure_of(internal.ReserveInventory(request))
        assert result.code == grpc.StatusCode.INVALID_ARGUMENT
        return violated_fields(result)

    assert await refused(reserve_request("", (product_id, 1))) == ["order_id"]
    assert await refused(reserve_request("o")) == ["items"]
    assert await refused(reserve_request("o", (product_id, 0))) == ["items[0].quantity"]
    assert await refused(reserve_request("o", (product_id, 101))) == ["items[0].quantity"]
    assert await refused(reserve_request("o", (product_id, 1), (product_id, 1))) == [
        "items[1].product_id"
    ]
    assert await refused(reserve_request("o", ("", 1))) == ["items[0].product_id"]
    many = [(str(uuid.uuid4()), 1) for _ in range(51)]
    assert await refused(reserve_request("o", *many)) == ["items"]
    commit = await failure_of(
        internal.CommitReservation(product_service_pb2.CommitReservationRequest())
    )
    release = await failure_of(
        internal.ReleaseReservation(product_service_pb2.ReleaseReservationRequest())
    )
    assert violated_fields(commit) == violated_fields(release) == ["order_id"]


async def test_internal_rpcs_admit_only_the_order_services_certificate(
    service: InProcessService, tokens: TestTokens
) -> None:
    """The edge's certificate, even with an admin's token, is not an internal caller."""
    outsider = product_service_pb2_grpc.ProductInternalServiceStub(service.channel)
    request = reserve_request(str(uuid.uuid4()), (str(uuid.uuid4()), 1))
    for metadata in ((), bearer(tokens.mint(roles=(Role.ADMIN,)))):
        result = await failure_of(outsider.ReserveInventory(request, metadata=metadata))
        assert result.code == grpc.StatusCode.PERMISSION_DENIED
        assert result.reason == "CALLER_NOT_ALLOWED"


# --- Concurrency ----------------------------------------------------------------------------


async def test_concurrent_orders_never_oversell(
    stub: ProductStub, internal: InternalStub, tokens: TestTokens, mongo: Any
) -> None:
    item = await create(stub, tokens, initial_stock=5)

    async def order_one() -> str:
        try:
            request = reserve_request(str(uuid.uuid4()), (item.product_id, 1))
            await internal.ReserveInventory(request)
            return "OK"
        except grpc.aio.AioRpcError as error:
            return remote_error(error).reason

    outcomes = await asyncio.gather(*(order_one() for _ in range(30)))
    assert outcomes.count("OK") == 5
    assert outcomes.count("OUT_OF_STOCK") == 25
    assert await stock_of(mongo, item.product_id) == {"on_hand": 5, "reserved": 5, "available": 0}


async def test_concurrent_calls_for_one_order_reserve_once(
    stub: ProductStub, internal: InternalStub, tokens: TestTokens, mongo: Any
) -> None:
    first = await create(stub, tokens, initial_stock=50)
    second = await create(stub, tokens, initial_stock=50)
    request = reserve_request(str(uuid.uuid4()), (first.product_id, 2), (second.product_id, 3))

    responses = await asyncio.gather(*(internal.ReserveInventory(request) for _ in range(10)))
    assert all(response == responses[0] for response in responses)
    assert await stock_of(mongo, first.product_id) == {
        "on_hand": 50,
        "reserved": 2,
        "available": 48,
    }
    assert await stock_of(mongo, second.product_id) == {
        "on_hand": 50,
        "reserved": 3,
        "available": 47,
    }


async def test_a_racing_commit_and_release_settle_one_way(
    stub: ProductStub, internal: InternalStub, tokens: TestTokens, mongo: Any
) -> None:
    for _ in range(5):
        item = await create(stub, tokens, initial_stock=4)
        order = str(uuid.uuid4())
        await internal.ReserveInventory(reserve_request(order, (item.product_id, 4)))
        outcomes = await asyncio.gather(
            internal.CommitReservation(
                product_service_pb2.CommitReservationRequest(order_id=order)
            ),
            internal.ReleaseReservation(
                product_service_pb2.ReleaseReservationRequest(order_id=order)
            ),
            return_exceptions=True,
        )
        failures = [o for o in outcomes if isinstance(o, grpc.aio.AioRpcError)]
        assert len(failures) == 1
        assert failures[0].code() in (
            grpc.StatusCode.FAILED_PRECONDITION,
            grpc.StatusCode.ABORTED,
        )
        stock = await stock_of(mongo, item.product_id)
        committed = not isinstance(outcomes[0], BaseException)
        expected = (
            {"on_hand": 0, "reserved": 0, "available": 0}
            if committed
            else {
                "on_hand": 4,
                "reserved": 0,
                "available": 4,
            }
        )
        assert stock == expected
