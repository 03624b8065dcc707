"""The product cache on real Redis: fresh after every write, and optional when Redis dies."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
import pytest_asyncio
from google.protobuf import field_mask_pb2, timestamp_pb2
from google.type import money_pb2
from marketplace.product.v1 import product_pb2, product_service_pb2
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from services.common.identity import Role
from services.devmesh import processes
from services.product.adapters.cache import ProductCache
from services.product.adapters.mongo.schema import PRODUCTS
from services.product.config import Settings
from tests.support.product import create_categories, product_settings, product_stub, serve_product
from tests.support.servers import Backends
from tests.support.tokens import TestTokens, bearer

pytestmark = pytest.mark.asyncio(loop_scope="session")


def settings_for(backends: Backends, redis_url: str, database: str) -> Settings:
    return product_settings(
        backends,
        "products_cache",
        internal_secret="product-cache-secret",
        mongo_database=database,
        redis_url=redis_url,
        cache_timeout_seconds=0.2,
        cache_retry_after_seconds=0.3,
    )


def new_product() -> product_pb2.Product:
    return product_pb2.Product(
        title=f"Cached lamp {uuid.uuid4().hex[:8]}",
        category="home-kitchen",
        list_price=money_pb2.Money(currency_code="USD", units=30),
        initial_stock=5,
    )


async def published_product(
    stub: Any, tokens: TestTokens
) -> tuple[tuple[tuple[str, str], ...], product_pb2.Product]:
    """A published product in a fresh seller's name, and that seller's credentials."""
    await create_categories(stub, tokens, {"home-kitchen": []})
    seller = bearer(tokens.mint(roles=(Role.SELLER,)))
    created = await stub.CreateProduct(
        product_service_pb2.CreateProductRequest(product=new_product(), publish=True),
        metadata=seller,
    )
    return seller, created


@pytest_asyncio.fixture(loop_scope="session")
async def mongo(backends: Backends) -> AsyncIterator[Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(backends.mongo_url, tz_aware=True)
    yield client[f"products_cache_{uuid.uuid4().hex[:10]}"]
    await client.close()


async def test_reads_come_from_the_cache_and_every_write_refreshes_it(
    backends: Backends, tokens: TestTokens, mongo: Any
) -> None:
    settings = settings_for(backends, backends.redis_url, mongo.name)
    async with serve_product(settings, tokens) as (served, _):
        stub = product_stub(served)
        seller, created = await published_product(stub, tokens)
        request = product_service_pb2.GetProductRequest(product_id=created.product_id)
        assert (await stub.GetProduct(request)).title == created.title
        # Changed behind the service's back (no revision bump): the cached copy still answers,
        # which shows reads are served from the cache.
        await mongo[PRODUCTS].update_one(
            {"_id": created.product_id}, {"$set": {"title": "changed behind the cache"}}
        )
        assert (await stub.GetProduct(request)).title == created.title
        # Every write through the service is visible to the very next read.
        for round_ in range(5):
            current = await stub.GetProduct(request)
            updated = await stub.UpdateProduct(
                product_service_pb2.UpdateProductRequest(
                    product=product_pb2.Product(
                        product_id=created.product_id,
                        title=f"Edited {round_}",
                        etag=current.etag,
                    ),
                    update_mask=field_mask_pb2.FieldMask(paths=["title"]),
                ),
                metadata=seller,
            )
            read = await stub.GetProduct(request)
            assert read.title == f"Edited {round_}" and read.etag == updated.etag
        adjusted = await stub.AdjustInventory(
            product_service_pb2.AdjustInventoryRequest(
                product_id=created.product_id, delta=7, reason="restock"
            ),
            metadata=seller,
        )
        assert (await stub.GetProduct(request)).stock_available == adjusted.available == 12
        await stub.UnpublishProduct(
            product_service_pb2.UnpublishProductRequest(product_id=created.product_id),
            metadata=seller,
        )
        batch = await stub.BatchGetProducts(
            product_service_pb2.BatchGetProductsRequest(product_ids=[created.product_id])
        )
        assert list(batch.products) == []  # anonymous readers no longer see it


async def test_an_older_revision_never_replaces_a_newer_one(backends: Backends, mongo: Any) -> None:
    redis = Redis.from_url(backends.redis_url)
    cache = ProductCache(redis, prefix=f"test:{uuid.uuid4().hex}:")
    product_id = str(uuid.uuid4())
    newer = {"_id": product_id, "revision": 5, "title": "new"}
    older = {"_id": product_id, "revision": 4, "title": "old"}
    await cache.put([newer])
    await cache.put([older])  # a reader that fetched before the write comes back late
    assert (await cache.get_many([product_id]))[product_id]["title"] == "new"
    await redis.aclose()


async def test_the_service_keeps_working_while_redis_is_down(
    backends: Backends, tokens: TestTokens, mongo: Any, tmp_path: Any
) -> None:
    port = processes.free_port()
    redis_process = processes.start_redis(tmp_path, port)
    settings = settings_for(backends, f"redis://127.0.0.1:{port}/0", mongo.name)
    try:
        async with serve_product(settings, tokens) as (served, _):
            stub = product_stub(served)
            seller, created = await published_product(stub, tokens)
            request = product_service_pb2.GetProductRequest(product_id=created.product_id)
            await stub.GetProduct(request)
            probe = Redis(port=port)
            assert await probe.exists(f"product:doc:{created.product_id}")
            await probe.aclose()

            redis_process.stop()
            started = time.monotonic()
            for round_ in range(3):
                current = await stub.GetProduct(request)
                await stub.UpdateProduct(
                    product_service_pb2.UpdateProductRequest(
                        product=product_pb2.Product(
                            product_id=created.product_id,
                            title=f"Offline edit {round_}",
                            etag=current.etag,
                        ),
                        update_mask=field_mask_pb2.FieldMask(paths=["title"]),
                    ),
                    metadata=seller,
                )
                assert (await stub.GetProduct(request)).title == f"Offline edit {round_}"
            # Slower at most by a few short timeouts, not by a hang per call.
            assert time.monotonic() - started < 5

            # Redis comes back with the same data dir empty: reads are fresh and cached again.
            redis_process = processes.start_redis(tmp_path, port)
            await asyncio.sleep(0.4)  # past cache_retry_after_seconds
            assert (await stub.GetProduct(request)).title == "Offline edit 2"
            assert (await stub.GetProduct(request)).title == "Offline edit 2"
            probe = Redis(port=port)
            assert await probe.exists(f"product:doc:{created.product_id}")
            await probe.aclose()
    finally:
        redis_process.stop()


async def test_a_reader_that_fetched_before_a_write_cannot_cache_the_old_copy(
    backends: Backends, tokens: TestTokens, mongo: Any
) -> None:
    settings = settings_for(backends, backends.redis_url, mongo.name)
    async with serve_product(settings, tokens) as (served, _):
        stub = product_stub(served)
        seller, created = await published_product(stub, tokens)
        request = product_service_pb2.GetProductRequest(product_id=created.product_id)
        redis = Redis.from_url(backends.redis_url)
        late_reader = ProductCache(redis)  # the service's own key space
        etag = created.etag
        for round_ in range(5):
            # A reader misses the cache and fetches the product from MongoDB...
            before = await mongo[PRODUCTS].find_one({"_id": created.product_id})
            updated = await stub.UpdateProduct(
                product_service_pb2.UpdateProductRequest(
                    product=product_pb2.Product(
                        product_id=created.product_id, title=f"Round {round_}", etag=etag
                    ),
                    update_mask=field_mask_pb2.FieldMask(paths=["title"]),
                ),
                metadata=seller,
            )
            etag = updated.etag
            # ...and only stores its copy after the write finished.
            await late_reader.put([before])
            assert (await stub.GetProduct(request)).title == f"Round {round_}"
        await redis.aclose()


async def command(redis: Redis, *args: str | bytes) -> Any:
    """A raw Redis command (redis-py types its commands for the sync client too)."""
    return await cast(Callable[..., Awaitable[Any]], redis.execute_command)(*args)


async def test_a_hit_serves_the_stored_message_and_never_a_stale_discount(
    backends: Backends, tokens: TestTokens, mongo: Any
) -> None:
    settings = settings_for(backends, backends.redis_url, mongo.name)
    async with serve_product(settings, tokens) as (served, _):
        stub = product_stub(served)
        seller, created = await published_product(stub, tokens)
        request = product_service_pb2.GetProductRequest(product_id=created.product_id)
        start = datetime.now(UTC) + timedelta(seconds=3)
        start_ts, end_ts = timestamp_pb2.Timestamp(), timestamp_pb2.Timestamp()
        start_ts.FromDatetime(start)
        end_ts.FromDatetime(start + timedelta(hours=1))
        await stub.CreateDiscount(
            product_service_pb2.CreateDiscountRequest(
                product_id=created.product_id,
                discount=product_pb2.Discount(percent_off=50, start_time=start_ts, end_time=end_ts),
            ),
            metadata=seller,
        )
        before = await stub.GetProduct(request)
        assert before.effective_price.units == 30
        # The hash holds the answer itself, serialized: a hit parses it and maps nothing.
        redis = Redis.from_url(backends.redis_url)
        key = f"product:doc:{created.product_id}"
        try:
            view: bytes | None = await command(redis, "HGET", key, "view")
            assert view is not None and view.endswith(before.SerializeToString())
            marked = product_pb2.Product()
            marked.CopyFrom(before)
            marked.title = "served from the stored message"
            await command(
                redis,
                "HSET",
                key,
                "view",
                view.removesuffix(before.SerializeToString()) + marked.SerializeToString(),
            )
            assert (await stub.GetProduct(request)).title == "served from the stored message"
            # Once the discount starts the stored message is out of date: never served.
            await asyncio.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds()) + 0.05)
            during = await stub.GetProduct(request)
            assert during.effective_price.units == 15 and during.title == created.title
        finally:
            await redis.aclose()
