"""Search on the seeded demo catalog: relevance, filters, facet counts, sorts and cursors."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import pytest_asyncio
from marketplace.product.v1 import product_pb2, product_service_pb2

from services.common.identity import Role
from services.product.config import Settings
from services.product.demo_catalog import demo_categories, demo_products
from services.product.domain.model import attribute_pair
from tests.support.failures import failure_of
from tests.support.inprocess import InProcessService
from tests.support.product import as_seller, create, product_settings, product_stub, serve_product
from tests.support.servers import Backends
from tests.support.tokens import TestTokens, bearer

pytestmark = pytest.mark.asyncio(loop_scope="session")

if TYPE_CHECKING:
    from tests.support.product import ProductStub

CATALOG = demo_products()


@pytest.fixture(scope="module")
def settings(backends: Backends) -> Settings:
    return product_settings(backends, "products_search", internal_secret="product-search-secret")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def seeded(
    settings: Settings, tokens: TestTokens
) -> AsyncIterator[tuple[InProcessService, str]]:
    """The demo catalog listed by one seller in a database of its own."""
    seller = str(uuid.uuid4())
    metadata = as_seller(tokens, seller)
    async with serve_product(settings, tokens) as (served, _):
        stub = product_stub(served)
        admin = bearer(tokens.mint(roles=(Role.ADMIN,)))
        for category in demo_categories():  # parents first, as the dev seed creates them
            await stub.CreateCategory(
                product_service_pb2.CreateCategoryRequest(category=category), metadata=admin
            )
        gate = asyncio.Semaphore(16)

        async def list_one(message: product_pb2.Product) -> None:
            async with gate:
                await stub.CreateProduct(
                    product_service_pb2.CreateProductRequest(product=message, publish=True),
                    metadata=metadata,
                )

        await asyncio.gather(*(list_one(m) for m in CATALOG))
        yield served, seller


@pytest.fixture
def stub(seeded: tuple[InProcessService, str]) -> ProductStub:
    return product_stub(seeded[0])


def pairs_of(message: product_pb2.Product) -> set[str]:
    values: set[str] = set()
    for name, value in message.attributes.items():
        kind = value.WhichOneof("kind")
        raw: str | float | bool = (
            value.text_value
            if kind == "text_value"
            else value.bool_value
            if kind == "bool_value"
            else float(value.number_value)
        )
        values.add(attribute_pair(name, raw))
    return values


def price_of(message: product_pb2.Product) -> int:
    money = message.sale_price if message.HasField("sale_price") else message.list_price
    return money.units * 100 + money.nanos // 10_000_000


async def everything(stub: ProductStub, **fields: Any) -> list[product_pb2.Product]:
    found: list[product_pb2.Product] = []
    token = ""
    while True:
        page = await stub.SearchProducts(
            product_service_pb2.SearchProductsRequest(page_size=50, page_token=token, **fields)
        )
        found.extend(page.products)
        token = page.next_page_token
        if not token:
            return found


async def test_relevance_puts_the_best_text_match_first(stub: ProductStub) -> None:
    result = await stub.SearchProducts(
        product_service_pb2.SearchProductsRequest(query="wireless headphones")
    )
    assert result.products[0].title.startswith("Aurora ANC Wireless Headphones")
    assert all(p.category == "electronics" for p in result.products[:4])
    sourdough = await stub.SearchProducts(
        product_service_pb2.SearchProductsRequest(query="sourdough")
    )
    assert sourdough.products[0].title.startswith("The Sourdough Year")


async def test_facet_counts_match_the_catalog(
    stub: ProductStub, seeded: tuple[InProcessService, str]
) -> None:
    result = await stub.SearchProducts(
        product_service_pb2.SearchProductsRequest(seller_id=seeded[1], page_size=1)
    )
    assert result.total_size == len(CATALOG)
    facets = {f.field: {v.value: v.count for v in f.values} for f in result.facets}
    assert facets["category"] == Counter(p.category for p in CATALOG)
    assert facets["subcategory"] == Counter(p.subcategory for p in CATALOG)
    colours = Counter(
        pair.partition("=")[2]
        for p in CATALOG
        for pair in pairs_of(p)
        if pair.startswith("colour=")
    )
    assert facets["attributes.colour"] == colours
    ordered = [v.count for f in result.facets if f.field == "category" for v in f.values]
    assert ordered == sorted(ordered, reverse=True)  # most frequent first

    electronics = await stub.SearchProducts(
        product_service_pb2.SearchProductsRequest(seller_id=seeded[1], category="electronics")
    )
    narrowed = {f.field: {v.value: v.count for v in f.values} for f in electronics.facets}
    assert narrowed["category"] == {
        "electronics": sum(p.category == "electronics" for p in CATALOG)
    }


@pytest.mark.parametrize(
    "filters",
    [
        ["wireless=true"],
        ["colour=Black"],
        ["watts=65"],
        ["material=cotton", "size=M"],
        ["brand=summitline", "waterproof=true"],
    ],
)
async def test_attribute_filters_match_text_numbers_and_booleans(
    stub: ProductStub, seeded: tuple[InProcessService, str], filters: list[str]
) -> None:
    wanted = {
        attribute_pair(name, value.lower())
        if not value.replace(".", "").isdigit()
        else f"{name}={float(value):g}"
        for name, _, value in (f.partition("=") for f in filters)
    }
    expected = {p.title for p in CATALOG if wanted <= pairs_of(p)}
    assert expected, "the filter should match something in the demo catalog"
    found = await everything(stub, seller_id=seeded[1], attribute_filters=filters)
    assert {p.title for p in found} == expected


async def test_price_stock_and_rating_filters(
    stub: ProductStub, seeded: tuple[InProcessService, str]
) -> None:
    found = await everything(
        stub, seller_id=seeded[1], min_price_minor=2000, max_price_minor=5000, in_stock_only=True
    )
    expected = {p.title for p in CATALOG if 2000 <= price_of(p) <= 5000 and p.initial_stock > 0}
    assert {p.title for p in found} == expected
    assert (
        await stub.SearchProducts(
            product_service_pb2.SearchProductsRequest(seller_id=seeded[1], min_rating=1)
        )
    ).total_size == 0  # nothing is reviewed in this catalog yet


@pytest.mark.parametrize(
    ("order", "key"),
    [
        (product_service_pb2.SORT_ORDER_PRICE_ASCENDING, lambda p: price_of(p)),
        (product_service_pb2.SORT_ORDER_PRICE_DESCENDING, lambda p: -price_of(p)),
        (product_service_pb2.SORT_ORDER_NEWEST, lambda p: -p.create_time.ToMilliseconds()),
    ],
)
async def test_sorted_pages_cover_the_catalog_once_in_order(
    stub: ProductStub, seeded: tuple[InProcessService, str], order: int, key: Any
) -> None:
    found = await everything(stub, seller_id=seeded[1], sort_order=order)
    assert len(found) == len(CATALOG) == len({p.product_id for p in found})
    keys = [key(p) for p in found]
    assert keys == sorted(keys)


async def test_cursors_stay_stable_when_products_are_added_between_pages(
    stub: ProductStub, seeded: tuple[InProcessService, str], tokens: TestTokens
) -> None:
    request = product_service_pb2.SearchProductsRequest(
        seller_id=seeded[1], sort_order=product_service_pb2.SORT_ORDER_PRICE_ASCENDING, page_size=40
    )
    first = await stub.SearchProducts(request)
    # A cheaper product lands before the cursor: an offset would now repeat an item.
    await create(
        stub,
        tokens,
        seller_id=seeded[1],
        list_price=first.products[0].effective_price,
        title=f"Late arrival {uuid.uuid4().hex[:6]}",
    )
    request.page_token = first.next_page_token
    second = await stub.SearchProducts(request)
    first_ids = [p.product_id for p in first.products]
    assert not set(first_ids) & {p.product_id for p in second.products}
    assert price_of(second.products[0]) >= price_of(first.products[-1])


async def test_page_size_is_capped_and_bad_tokens_refused(
    stub: ProductStub, seeded: tuple[InProcessService, str]
) -> None:
    capped = await stub.SearchProducts(
        product_service_pb2.SearchProductsRequest(seller_id=seeded[1], page_size=1000)
    )
    assert len(capped.products) == 100 and capped.next_page_token
    forged = await failure_of(
        stub.SearchProducts(
            product_service_pb2.SearchProductsRequest(seller_id=seeded[1], page_token="bm9wZQ")
        )
    )
    assert forged.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_text_search_sorted_by_price_pages_by_cursor(
    stub: ProductStub, seeded: tuple[InProcessService, str]
) -> None:
    fields: dict[str, Any] = {
        "seller_id": seeded[1],
        "query": "cotton",
        "sort_order": product_service_pb2.SORT_ORDER_PRICE_ASCENDING,
    }
    whole = await stub.SearchProducts(product_service_pb2.SearchProductsRequest(**fields))
    paged: list[product_pb2.Product] = []
    token = ""
    while True:
        page = await stub.SearchProducts(
            product_service_pb2.SearchProductsRequest(page_size=2, page_token=token, **fields)
        )
        paged.extend(page.products)
        token = page.next_page_token
        if not token:
            break
    assert len(whole.products) > 2
    assert [p.product_id for p in paged] == [p.product_id for p in whole.products]
    prices = [price_of(p) for p in paged]
    assert prices == sorted(prices)


@pytest.mark.parametrize("query", ["wireless headphones", "noise cancelling headphones", "cotton"])
async def test_text_search_totals_and_facets_count_exactly_the_matches(
    stub: ProductStub, seeded: tuple[InProcessService, str], query: str
) -> None:
    result = await stub.SearchProducts(
        product_service_pb2.SearchProductsRequest(seller_id=seeded[1], query=query, page_size=100)
    )
    found = list(result.products)
    assert found and result.total_size == len(found)
    facets = {f.field: {v.value: v.count for v in f.values} for f in result.facets}
    assert facets["category"] == Counter(p.category for p in found)
    brands = Counter(
        pair.partition("=")[2] for p in found for pair in pairs_of(p) if pair.startswith("brand=")
    )
    assert facets.get("attributes.brand", {}) == brands
