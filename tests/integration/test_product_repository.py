"""The product service's MongoDB adapters on the MongoDB wire server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from services.common.clock import SystemClock
from services.common.money import Money
from services.product.adapters.mongo.products import MongoProductRepository
from services.product.adapters.mongo.reservations import MongoReservationStore
from services.product.adapters.mongo.schema import Database, ensure_indexes
from services.product.adapters.mongo.search import MongoCatalogSearch
from services.product.adapters.mongo.stock import MongoStockStore
from services.product.domain.commands import SearchFilter, SortOrder
from services.product.domain.model import (
    LISTED_STATES,
    PRODUCT_SCHEMA_VERSION,
    Inventory,
    PricedItem,
    ProductState,
    ReservationLine,
    ReservationState,
    to_millis,
)
from services.product.service_layer.ports import HoldOutcome, LedgerNote
from tests.support.product import a_product
from tests.support.servers import Backends

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def db(backends: Backends) -> AsyncIterator[Database]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(backends.mongo_url, tz_aware=True)
    database = client[f"products_integration_{uuid.uuid4().hex[:10]}"]
    await ensure_indexes(database)
    await ensure_indexes(database)  # a restart finds the indexes already there
    yield database
    await client.close()


CLOCK = SystemClock()


def note(reason: str = "test") -> LedgerNote:
    return LedgerNote(reason, "tests", CLOCK.now())


async def test_a_product_round_trips(db: Database) -> None:
    products = MongoProductRepository(db)
    product = a_product()
    await products.add(product)
    assert await products.get(product.product_id) == product
    assert await products.get(str(uuid.uuid4())) is None
    stored = await db.products.find_one({"_id": product.product_id})
    assert stored is not None
    assert stored["schema_version"] == PRODUCT_SCHEMA_VERSION
    assert stored["effective_price_minor"] == 3900
    assert stored["inventory"] == {"on_hand": 5, "reserved": 0, "available": 5}


async def test_get_many_returns_the_existing_ones(db: Database) -> None:
    products = MongoProductRepository(db)
    one, two = a_product(), a_product()
    await products.add(one)
    await products.add(two)
    found = await products.get_many([one.product_id, str(uuid.uuid4()), two.product_id])
    assert found == {one.product_id: one, two.product_id: two}


async def test_search_matches_filters_and_counts_facets(db: Database) -> None:
    products, catalog = MongoProductRepository(db), MongoCatalogSearch(db)
    category = f"cat-{uuid.uuid4().hex[:8]}"
    earlier = to_millis(CLOCK.now()) - timedelta(
        seconds=1
    )  # distinct times: "newest" has a fixed answer
    red = a_product(
        category=category,
        subcategory="a",
        attributes={"colour": "red"},
        create_time=earlier,
        update_time=earlier,
    )
    blue = a_product(category=category, subcategory="b", attributes={"colour": "blue"})
    empty = a_product(category=category, subcategory="a", inventory=Inventory(on_hand=0))
    draft = a_product(category=category, state=ProductState.DRAFT)
    for product in (red, blue, empty, draft):
        await products.add(product)

    page = await catalog.search(
        SearchFilter(category=category), states=LISTED_STATES, offset=0, limit=10
    )
    assert {p.product_id for p in page.products} == {
        red.product_id,
        blue.product_id,
        empty.product_id,
    }
    assert page.total_size == 3
    assert [(f.value, f.count) for f in page.facets["subcategory"]] == [("a", 2), ("b", 1)]

    in_stock = await catalog.search(
        SearchFilter(category=category, in_stock_only=True, sort_order=SortOrder.NEWEST),
        states=LISTED_STATES,
        offset=0,
        limit=10,
    )
    assert [p.product_id for p in in_stock.products] == [blue.product_id, red.product_id]
    coloured = await catalog.search(
        SearchFilter(category=category, attributes=(("colour", "red"),)),
        states=LISTED_STATES,
        offset=0,
        limit=10,
    )
    assert [p.product_id for p in coloured.products] == [red.product_id]
    second = await catalog.search(
        SearchFilter(category=category), states=LISTED_STATES, offset=2, limit=2
    )
    assert len(second.products) == 1 and second.total_size == 3


async def test_a_hold_is_taken_given_back_and_sold_once_per_order(db: Database) -> None:
    products, stock = MongoProductRepository(db), MongoStockStore(db)
    product = a_product(inventory=Inventory(on_hand=5))
    await products.add(product)
    order = str(uuid.uuid4())

    first = await stock.hold(product.product_id, order, 3, note(), states=LISTED_STATES)
    again = await stock.hold(product.product_id, order, 3, note(), states=LISTED_STATES)
    assert first.outcome is again.outcome is HoldOutcome.HELD
    assert first.product is not None and first.product.inventory == Inventory(5, 3)

    other = await stock.hold(product.product_id, str(uuid.uuid4()), 3, note(), states=LISTED_STATES)
    assert other.outcome is HoldOutcome.OUT_OF_STOCK

    await asyncio.gather(
        stock.unhold(product.product_id, order, note()),
        stock.unhold(product.product_id, order, note()),
    )
    after_release = await products.get(product.product_id)
    assert after_release is not None and after_release.inventory == Inventory(5, 0)

    sold_order = str(uuid.uuid4())
    await stock.hold(product.product_id, sold_order, 2, note(), states=LISTED_STATES)
    await asyncio.gather(
        stock.sell_hold(product.product_id, sold_order, note()),
        stock.sell_hold(product.product_id, sold_order, note()),
    )
    doc = await db.products.find_one({"_id": product.product_id})
    assert doc is not None
    assert doc["inventory"] == {"on_hand": 3, "reserved": 0, "available": 3}
    assert doc["holds"] == {}

    assert (
        await stock.hold(str(uuid.uuid4()), order, 1, note(), states=LISTED_STATES)
    ).outcome is HoldOutcome.NOT_FOUND
    draft = a_product(state=ProductState.DRAFT)
    await products.add(draft)
    assert (
        await stock.hold(draft.product_id, order, 1, note(), states=LISTED_STATES)
    ).outcome is HoldOutcome.NOT_FOUND


async def test_concurrent_holds_never_oversell(db: Database) -> None:
    products, stock = MongoProductRepository(db), MongoStockStore(db)
    product = a_product(inventory=Inventory(on_hand=7))
    await products.add(product)
    results = await asyncio.gather(
        *(
            stock.hold(product.product_id, str(uuid.uuid4()), 2, note(), states=LISTED_STATES)
            for _ in range(20)
        )
    )
    assert sum(r.outcome is HoldOutcome.HELD for r in results) == 3
    doc = await db.products.find_one({"_id": product.product_id})
    assert doc is not None
    assert doc["inventory"] == {"on_hand": 7, "reserved": 6, "available": 1}
    assert len(doc["holds"]) == 3


async def test_only_one_concurrent_claim_of_an_order_wins(db: Database) -> None:
    reservations = MongoReservationStore(db)
    order = str(uuid.uuid4())
    lines = (ReservationLine(str(uuid.uuid4()), 1),)
    claims = await asyncio.gather(
        *(reservations.claim(order, lines, lease_seconds=30, now=CLOCK.now()) for _ in range(10))
    )
    assert claims.count(None) == 1
    assert all(c is not None and c.state is ReservationState.PENDING for c in claims if c)
    assert not await reservations.take_over(order, lease_seconds=30, now=CLOCK.now())


async def test_an_expired_claim_can_be_taken_over_once(db: Database) -> None:
    reservations = MongoReservationStore(db)
    order = str(uuid.uuid4())
    await reservations.claim(order, (ReservationLine("p", 1),), lease_seconds=0, now=CLOCK.now())
    await asyncio.sleep(0.01)
    won = await asyncio.gather(
        *(reservations.take_over(order, lease_seconds=30, now=CLOCK.now()) for _ in range(5))
    )
    assert won.count(True) == 1


async def test_reservation_transitions_are_conditional(db: Database) -> None:
    reservations = MongoReservationStore(db)
    order = str(uuid.uuid4())
    lines = (ReservationLine("p1", 2),)
    await reservations.claim(order, lines, lease_seconds=30, now=CLOCK.now())
    item = PricedItem("p1", "s1", "Board", 2, Money(3900, "USD"))
    await reservations.mark_reserved(order, [item], expires_in_seconds=900, now=CLOCK.now())
    reserved = await reservations.get(order)
    assert reserved is not None
    assert reserved.state is ReservationState.RESERVED and reserved.items == (item,)

    moved = await reservations.transition(
        order, from_states=(ReservationState.RESERVED,), to_state=ReservationState.COMMITTING
    )
    assert moved is not None and moved.state is ReservationState.COMMITTING
    assert (
        await reservations.transition(
            order, from_states=(ReservationState.RESERVED,), to_state=ReservationState.RELEASING
        )
        is None
    )
    await reservations.abandon(order)  # only pending claims are abandoned
    assert await reservations.get(order) is not None
