"""The product service's composition root: MongoDB, repositories, servicers and access policy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import aiohttp
from marketplace.product.v1 import product_service_pb2_grpc
from pymongo import AsyncMongoClient

from services.common.auth import JwksKeySource, KeySource
from services.common.interceptors import AccessPolicy
from services.common.server import ServiceApp
from services.product.adapters.mongo import ensure_indexes
from services.product.adapters.repository import (
    MongoProductRepository,
    MongoReservationStore,
    MongoStockStore,
)
from services.product.config import Settings
from services.product.servicer import ProductInternalServicer, ProductServicer

PRODUCT_SERVICE = "marketplace.product.v1.ProductService"
PRODUCT_INTERNAL_SERVICE = "marketplace.product.v1.ProductInternalService"

POLICY = AccessPolicy(
    public_methods=frozenset(
        f"/{PRODUCT_SERVICE}/{method}"
        for method in (
            "GetProduct",
            "BatchGetProducts",
            "SearchProducts",
            "ListCategories",
            "ListReviews",
            "ListRecommendations",
        )
    ),
    internal_services=frozenset({PRODUCT_INTERNAL_SERVICE}),
)


@asynccontextmanager
async def build_app(
    settings: Settings, *, key_source: KeySource | None = None
) -> AsyncIterator[ServiceApp]:
    """Connect to MongoDB, make sure the indexes exist, and wire the servicers.

    Args:
        settings: The product service's settings.
        key_source: The keys tokens are verified with; by default the user service's JWKS.

    Yields:
        The app to serve; its clients close when the block exits.
    """
    async with AsyncExitStack() as stack:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            str(settings.mongo_url), tz_aware=True, appname="product"
        )
        stack.push_async_callback(client.close)
        db = client[settings.mongo_database]
        await ensure_indexes(db)
        if key_source is None:
            http = aiohttp.ClientSession()
            stack.push_async_callback(http.close)
            key_source = JwksKeySource(settings.jwks_url, http)
        products = MongoProductRepository(db)
        internal = ProductInternalServicer(
            products,
            MongoStockStore(db),
            MongoReservationStore(db),
            wait_seconds=settings.reservation_wait_seconds,
            lease_seconds=settings.reservation_lease_seconds,
        )
        yield ServiceApp(
            name="product",
            servicers=[
                (
                    product_service_pb2_grpc.add_ProductServiceServicer_to_server,
                    ProductServicer(products),
                ),
                (product_service_pb2_grpc.add_ProductInternalServiceServicer_to_server, internal),
            ],
            service_names=[PRODUCT_SERVICE, PRODUCT_INTERNAL_SERVICE],
            policy=POLICY,
            key_source=key_source,
        )
