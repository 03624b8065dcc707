"""Product test helpers: settings, the served app and its stubs, and domain factories."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import timestamp_pb2
from google.type import money_pb2
from marketplace.product.v1 import product_pb2, product_service_pb2, product_service_pb2_grpc

from services.common.clock import SystemClock
from services.common.identity import Role
from services.common.money import Money
from services.product.app import ProductWorkers, build_app
from services.product.config import Settings
from services.product.domain.model import Inventory, Product, ProductState, to_millis
from tests.support.inprocess import InProcessService, serve_in_process
from tests.support.servers import Backends
from tests.support.tokens import TestTokens, bearer

if TYPE_CHECKING:  # the async stub types exist in the generated stubs only
    ProductStub = product_service_pb2_grpc.ProductServiceAsyncStub
    InternalStub = product_service_pb2_grpc.ProductInternalServiceAsyncStub

# The served app and the workers it built, which tests drive with `run_once()`.
ServedProduct = tuple[InProcessService, ProductWorkers]


def product_settings(
    backends: Backends, database_prefix: str, *, internal_secret: str = "", **overrides: Any
) -> Settings:
    """Settings for a product server on free ports, with a MongoDB database of its own.

    The defaults keep tests fast: a short shutdown, no notice period, and no order event
    consumer; without `internal_secret` the settings' default secret stays. `overrides` replace any of them (or the database name and Redis URL).
    """
    values: dict[str, Any] = {
        "environment": "test",
        "grpc_host": "127.0.0.1",
        "grpc_port": 0,
        "ops_port": 0,
        "shutdown_grace_seconds": 0.5,
        "shutdown_notice_seconds": 0.0,
        "mongo_url": backends.mongo_url,
        "mongo_database": f"{database_prefix}_{uuid.uuid4().hex[:10]}",
        "redis_url": backends.redis_url,
        "consume_order_events": False,
    }
    if internal_secret:
        values["internal_secret"] = internal_secret
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


def a_product(**fields: Any) -> Product:
    """A published product with stock, a sale price and attributes; `fields` override any."""
    now = to_millis(SystemClock().now())
    values: dict[str, Any] = {
        "product_id": str(uuid.uuid4()),
        "seller_id": str(uuid.uuid4()),
        "title": "Walnut cutting board",
        "description": "End-grain walnut, oiled.",
        "category": "kitchen",
        "subcategory": "boards",
        "attributes": {"material": "walnut", "length_cm": 40.0, "dishwasher_safe": False},
        "list_price": Money(4500, "USD"),
        "sale_price": Money(3900, "USD"),
        "inventory": Inventory(on_hand=5),
        "state": ProductState.PUBLISHED,
        "image_urls": ("https://img.example.com/board.jpg",),
        "create_time": now,
        "update_time": now,
    }
    values.update(fields)
    return Product(**values)


# --- API messages and calls of the contract tests ----------------------------------------


def usd(units: int, cents: int = 0) -> money_pb2.Money:
    """US dollars as google.type.Money."""
    return money_pb2.Money(currency_code="USD", units=units, nanos=cents * 10_000_000)


def word() -> str:
    """A word no other product carries, to find a test's own products by text."""
    return "zq" + uuid.uuid4().hex[:12]


def product(**fields: Any) -> product_pb2.Product:
    """A valid new product; naming another category drops the default "sweaters" subcategory.

    Category ids are unique across the tree, so "sweaters" can sit under "apparel" only.
    """
    values: dict[str, Any] = {
        "title": f"Merino wool sweater {word()}",
        "description": "A warm sweater knitted from merino wool.",
        "category": "apparel",
        "subcategory": "sweaters",
        "list_price": usd(80),
        "initial_stock": 10,
    }
    if "category" in fields and "subcategory" not in fields:
        del values["subcategory"]
    values.update(fields)
    return product_pb2.Product(**values)


async def create(
    stub: ProductStub,
    tokens: TestTokens,
    *,
    seller_id: str | None = None,
    publish: bool = True,
    **fields: Any,
) -> product_pb2.Product:
    """A product of `seller_id` (a new seller by default), its categories made first."""
    message = product(**fields)
    subcategories = [message.subcategory] if message.subcategory else []
    await create_categories(stub, tokens, {message.category: subcategories})
    token = tokens.mint(seller_id or str(uuid.uuid4()), roles=(Role.SELLER,))
    request = product_service_pb2.CreateProductRequest(product=message, publish=publish)
    return await stub.CreateProduct(request, metadata=bearer(token))


def reserve_request(
    order_id: str, *items: tuple[str, int]
) -> product_service_pb2.ReserveInventoryRequest:
    """A ReserveInventory request for (product id, quantity) items."""
    return product_service_pb2.ReserveInventoryRequest(
        order_id=order_id,
        items=[product_service_pb2.ReservationItem(product_id=p, quantity=q) for p, q in items],
    )


def stamp(moment: datetime) -> timestamp_pb2.Timestamp:
    """A time as a protobuf Timestamp."""
    value = timestamp_pb2.Timestamp()
    value.FromDatetime(moment)
    return value


def discount(
    start: datetime, end: datetime, *, percent: int = 0, amount: Any = None
) -> product_pb2.Discount:
    """A percentage discount, or a fixed one when `amount` is given, for a period."""
    message = product_pb2.Discount(start_time=stamp(start), end_time=stamp(end))
    if amount is not None:
        message.amount_off.CopyFrom(amount)
    else:
        message.percent_off = percent
    return message
