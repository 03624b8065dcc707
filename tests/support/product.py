"""The product service served in-process for contract tests, on the run's real backends."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import grpc
from marketplace.product.v1 import product_pb2, product_service_pb2, product_service_pb2_grpc

from services.common.identity import Role
from services.product.app import ProductWorkers, build_app
from services.product.config import Settings
from tests.support.inprocess import InProcessService, serve_in_process
from tests.support.servers import Backends
from tests.support.tokens import TestTokens, bearer

if TYPE_CHECKING:  # the async stub types exist in the generated stubs only
    ProductStub = product_service_pb2_grpc.ProductServiceAsyncStub
    InternalStub = product_service_pb2_grpc.ProductInternalServiceAsyncStub

# The served app and the workers it built, which tests drive with `run_once()`.
ServedProduct = tuple[InProcessService, ProductWorkers]


def product_settings(
    backends: Backends, database_prefix: str, *, internal_secret: str, **overrides: Any
) -> Settings:
    """Settings for a product server on free ports, with a MongoDB database of its own.

    The defaults keep tests fast: a short shutdown, no notice period, and no order event
    consumer. `overrides` replace any of them (or the database name and Redis URL).
    """
    values: dict[str, Any] = {
        "environment": "test",
        "grpc_host": "127.0.0.1",
        "grpc_port": 0,
        "ops_port": 0,
        "internal_secret": internal_secret,
        "shutdown_grace_seconds": 0.5,
        "shutdown_notice_seconds": 0.0,
        "mongo_url": backends.mongo_url,
        "mongo_database": f"{database_prefix}_{uuid.uuid4().hex[:10]}",
        "redis_url": backends.redis_url,
        "consume_order_events": False,
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def serve_product(
    settings: Settings, tokens: TestTokens, *, start_workers: bool = False
) -> AsyncIterator[ServedProduct]:
    """Serve the real product app trusting `tokens`; its workers run only if asked to."""
    workers: list[ProductWorkers] = []
    async with serve_in_process(
        settings,
        lambda: build_app(
            settings, key_source=tokens.key_source(), start_workers=start_workers, workers=workers
        ),
    ) as service:
        yield service, workers[0]


def product_stub(service: InProcessService) -> ProductStub:
    """The public API of a served product app."""
    return product_service_pb2_grpc.ProductServiceStub(service.channel)


def internal_stub(service: InProcessService) -> InternalStub:
    """The internal API of a served product app, called as the order service (its cert)."""
    return product_service_pb2_grpc.ProductInternalServiceStub(service.internal_channel)


def as_seller(tokens: TestTokens, seller_id: str) -> Any:
    """gRPC metadata for `seller_id` signed in as a seller."""
    return bearer(tokens.mint(seller_id, roles=(Role.SELLER,)))


async def create_categories(
    stub: ProductStub, tokens: TestTokens, tree: Mapping[str, Iterable[str]]
) -> None:
    """Create each top-level category of `tree` and its subcategories, as an admin.

    Products may only name categories of the tree, so tests create the ones they use
    first, through the API as an admin would. A category that exists already is fine,
    which lets every test of a module name the same ones.
    """
    admin = bearer(tokens.mint(roles=(Role.ADMIN,)))
    for parent, children in tree.items():
        for category_id, parent_id in [(parent, ""), *((child, parent) for child in children)]:
            category = product_pb2.Category(
                category_id=category_id, parent_id=parent_id, display_name=category_id.title()
            )
            try:
                await stub.CreateCategory(
                    product_service_pb2.CreateCategoryRequest(category=category), metadata=admin
                )
            except grpc.aio.AioRpcError as error:
                if error.code() != grpc.StatusCode.ALREADY_EXISTS:
                    raise
