"""Every service starts again on the data it wrote before: restarts after Ctrl-C or a crash."""

from __future__ import annotations

import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from pymongo import AsyncMongoClient

from services.common.clock import SystemClock
from services.common.money import Money
from services.devmesh.mesh import grpc_serving
from services.devmesh.processes import ManagedProcess, free_port
from services.order.app import build_app as order_build_app
from services.order.config import Settings as OrderSettings
from services.product.adapters.mongo.products import MongoProductRepository
from services.product.adapters.mongo.schema import INDEXES, PRODUCTS, Database, ensure_indexes
from services.product.app import build_app as product_build_app
from services.product.domain.model import Inventory, Product, ProductState, to_millis
from services.user.app import build_app as user_build_app
from tests.support.product import product_settings
from tests.support.servers import Backends
from tests.support.tls import probe_credentials
from tests.support.tokens import TestTokens
from tests.support.user import user_settings

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET = "restart-test-internal-secret"
ORDER_MIGRATIONS = Path("services/order/migrations")
USER_MIGRATIONS = Path("services/user/migrations")


@pytest_asyncio.fixture(loop_scope="session")
async def mongo(backends: Backends) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(backends.mongo_url, tz_aware=True)
    yield client
    await client.close()


def a_lamp() -> Product:
    now = to_millis(SystemClock().now())
    return Product(
        product_id=str(uuid.uuid4()),
        seller_id=str(uuid.uuid4()),
        title="Brass reading lamp",
        description="A warm lamp for long evenings.",
        category="home",
        subcategory="lighting",
        attributes={},
        list_price=Money(5900, "USD"),
        sale_price=None,
        inventory=Inventory(on_hand=3),
        state=ProductState.PUBLISHED,
        image_urls=(),
        create_time=now,
        update_time=now,
    )


async def text_matches(db: Database, word: str) -> list[str]:
    cursor = db[PRODUCTS].find({"$text": {"$search": word}}, {"_id": 1})
    return [str(doc["_id"]) async for doc in cursor]


async def test_index_set_up_on_existing_data_creates_nothing_and_search_still_works(
    mongo: AsyncMongoClient[dict[str, Any]],
) -> None:
    db = mongo[f"products_restart_{uuid.uuid4().hex[:10]}"]
    assert await ensure_indexes(db) == list(INDEXES)
    lamp = a_lamp()
    await MongoProductRepository(db).add(lamp)

    assert await ensure_indexes(db) == []  # a restart: everything is there already
    assert await ensure_indexes(db) == []

    assert await text_matches(db, "lamp") == [lamp.product_id]


async def test_the_product_app_starts_twice_on_its_own_data(
    backends: Backends, tokens: TestTokens
) -> None:
    settings = product_settings(backends, "products_restart", internal_secret=SECRET)
    async with product_build_app(settings, key_source=tokens.key_source(), start_workers=False):
        pass
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(backends.mongo_url, tz_aware=True)
    try:
        await MongoProductRepository(client[settings.mongo_database]).add(a_lamp())
    finally:
        await client.close()

    async with product_build_app(settings, key_source=tokens.key_source(), start_workers=False):
        pass
    async with product_build_app(settings, key_source=tokens.key_source(), start_workers=False):
        pass


def product_process(backends: Backends, database: str, log: Path) -> tuple[ManagedProcess, str]:
    port = free_port()
    env = {
        "PRODUCT_ENVIRONMENT": "test",
        "PRODUCT_GRPC_HOST": "127.0.0.1",
        "PRODUCT_GRPC_PORT": str(port),
        "PRODUCT_OPS_PORT": str(free_port()),
        "PRODUCT_INTERNAL_SECRET": SECRET,
        "PRODUCT_MONGO_URL": backends.mongo_url,
        "PRODUCT_MONGO_DATABASE": database,
        "PRODUCT_REDIS_URL": backends.redis_url,
        "PRODUCT_JWKS_URL": "http://127.0.0.1:9/.well-known/jwks.json",
        "PRODUCT_SHUTDOWN_GRACE_SECONDS": "0.5",
        "PRODUCT_SHUTDOWN_NOTICE_SECONDS": "0",
    }
    process = ManagedProcess("product", [sys.executable, "-m", "services.product"], log, env=env)
    return process, f"127.0.0.1:{port}"


async def test_the_product_service_process_restarts_on_its_data_after_a_crash_and_a_stop(
    backends: Backends, mongo: AsyncMongoClient[dict[str, Any]]
) -> None:
    database = f"products_process_{uuid.uuid4().hex[:10]}"
    log = backends.state_dir / "logs" / f"product-restart-{database}.log"
    service = "marketplace.product.v1.ProductService"

    first, target = product_process(backends, database, log)
    first.start().wait_ready(lambda: grpc_serving(target, service, probe_credentials()))
    await MongoProductRepository(mongo[database]).add(a_lamp())
    first.signal(signal.SIGKILL)  # a crash: no shutdown at all
    assert first.process is not None and first.process.wait(10) == -signal.SIGKILL

    second, target = product_process(backends, database, log)
    try:
        second.start().wait_ready(lambda: grpc_serving(target, service, probe_credentials()))
    finally:
        assert second.stop() == 0  # Ctrl-C / SIGTERM: a clean stop

    third, target = product_process(backends, database, log)
    try:
        third.start().wait_ready(lambda: grpc_serving(target, service, probe_credentials()))
    finally:
        third.stop()


async def test_the_order_app_starts_twice_on_the_same_database(
    backends: Backends, tokens: TestTokens
) -> None:
    url = backends.database_url("orders_restart", ORDER_MIGRATIONS)
    settings = OrderSettings(
        environment="test",
        grpc_host="127.0.0.1",
        grpc_port=0,
        ops_port=0,
        database_url=url,
        redis_url=backends.redis_url,
        internal_secret=SECRET,
    )
    for _ in range(2):
        async with order_build_app(settings, key_source=tokens.key_source()):
            pass


async def test_the_user_app_with_demo_accounts_starts_twice_on_the_same_database(
    backends: Backends,
) -> None:
    url = backends.database_url("users_restart", USER_MIGRATIONS)
    settings = user_settings(url, environment="dev", seed_demo_accounts=True)
    for _ in range(2):
        async with user_build_app(settings, run_email_relay=False):
            pass
