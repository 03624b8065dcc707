"""The order service and the two it calls, served in-process for contract tests.

The product and user services are real, on the run's real backends; buyers are signed up
through the user service's API. Test modules import the fixtures they use from here.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
import pytest_asyncio
from google.type import money_pb2
from marketplace.order.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc
from marketplace.product.v1 import product_pb2, product_service_pb2, product_service_pb2_grpc
from marketplace.user.v1 import user_service_pb2, user_service_pb2_grpc
from pymongo import AsyncMongoClient

from services.common.identity import Role
from services.common.money import Money
from services.common.proto_money import money_to_proto
from services.common.rpc_status import RemoteError
from services.order.adapters.payments import SandboxGateway
from services.order.app import build_app
from services.order.config import Settings
from services.product.adapters.mongo.products import MongoProductRepository
from services.product.app import build_app as product_build_app
from services.user.app import build_app as user_build_app
from services.user.config import Settings as UserSettings
from tests.support import user as user_support
from tests.support.failures import rpc_failure
from tests.support.inprocess import InProcessService, serve_in_process
from tests.support.product import create_categories, product_settings
from tests.support.servers import Backends
from tests.support.tokens import TestTokens, bearer

MIGRATIONS = Path("services/order/migrations")
USER_MIGRATIONS = Path("services/user/migrations")
SECRET = "order-contract-test-internal-secret"
PRICE = Money(1999, "USD")
BUYER_PASSWORD = "order-test-buyer-password"


@dataclass
class ProductService:
    served: InProcessService
    stub: product_service_pb2_grpc.ProductServiceAsyncStub
    repository: MongoProductRepository
    seller_token: str


@dataclass
class UserService:
    """The real user service, which checkout asks whether a buyer may buy.

    Buyers are signed up through its API (CreateUser) and suspended through it
    (SuspendUser); the order tests never touch its tables.
    """

    served: InProcessService
    tokens: TestTokens

    @property
    def stub(self) -> user_service_pb2_grpc.UserServiceAsyncStub:
        return user_service_pb2_grpc.UserServiceStub(self.served.channel)

    async def new_buyer(self) -> str:
        """The id of a new customer account, signed up as a buyer would."""
        name = f"b{uuid.uuid4().hex[:24]}"
        user = await self.stub.CreateUser(
            user_service_pb2.CreateUserRequest(
                email=f"{name}@example.com", username=name, password=BUYER_PASSWORD
            )
        )
        return user.user_id

    async def buyer_token(self) -> str:
        """An access token of a new buyer's account."""
        return self.tokens.mint(await self.new_buyer())

    async def suspend(self, user_id: str) -> None:
        """Suspend the account, as an admin does."""
        await self.stub.SuspendUser(
            user_service_pb2.SuspendUserRequest(user_id=user_id, reason="order test"),
            metadata=bearer(self.tokens.mint(roles=(Role.ADMIN,))),
        )


def user_settings(backends: Backends, database: str) -> UserSettings:
    """The user service on a fresh database, trusting this module's internal secret."""
    return user_support.user_settings(
        backends.database_url(database, USER_MIGRATIONS), internal_secret=SECRET
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def accounts(backends: Backends, tokens: TestTokens) -> AsyncIterator[UserService]:
    """The user service in-process on a fresh database, trusting the test tokens."""
    settings = user_settings(backends, "order_users")
    async with serve_in_process(
        settings, lambda: user_build_app(settings, key_source=tokens.key_source())
    ) as served:
        yield UserService(served, tokens)


@dataclass
class OrderService:
    served: InProcessService
    stub: order_service_pb2_grpc.OrderServiceAsyncStub
    gateway: SandboxGateway
    db: asyncpg.Connection[asyncpg.Record]
    accounts: UserService


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def product(backends: Backends, tokens: TestTokens) -> AsyncIterator[ProductService]:
    # No test here reads the order event stream: product_settings leaves the consumer off.
    settings = product_settings(
        backends, "products", internal_secret=SECRET, shutdown_grace_seconds=1
    )
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(backends.mongo_url, tz_aware=True)
    try:
        async with serve_in_process(
            settings, lambda: product_build_app(settings, key_source=tokens.key_source())
        ) as served:
            stub = product_service_pb2_grpc.ProductServiceStub(served.channel)
            # The order tests list their products in this one category of the tree.
            await create_categories(stub, tokens, {"home": ["lighting"]})
            yield ProductService(
                served,
                stub,
                MongoProductRepository(client[settings.mongo_database]),
                tokens.mint(roles=(Role.SELLER,)),
            )
    finally:
        await client.close()


@pytest.fixture(scope="module")
def database_url(backends: Backends) -> str:
    return backends.database_url("orders", MIGRATIONS)


def order_settings(
    database_url: str, product_target: str, redis_url: str, *, user_target: str
) -> Settings:
    """The order service in-process on port 0, with short payment and RPC timeouts."""
    return Settings(
        database_url=database_url,
        user_target=user_target,
        redis_url=redis_url,
        events_stream=f"test.order.events.{uuid.uuid4().hex[:8]}",
        environment="test",
        grpc_host="127.0.0.1",
        grpc_port=0,
        ops_port=0,
        internal_secret=SECRET,
        product_target=product_target,
        payment_latency_ms=10,
        payment_timeout_seconds=0.3,
        rpc_timeout_seconds=2,
        shutdown_notice_seconds=0,
        shutdown_grace_seconds=1,
    )


@pytest_asyncio.fixture(loop_scope="session")
async def orders(
    database_url: str,
    product: ProductService,
    accounts: UserService,
    tokens: TestTokens,
    backends: Backends,
) -> AsyncIterator[OrderService]:
    """A fresh order service per test, so its sandbox gateway counts only this test's charges."""
    settings = order_settings(
        database_url,
        product.served.target,
        backends.redis_url,
        user_target=accounts.served.target,
    )
    gateway = SandboxGateway(latency_seconds=0.01, timeout_seconds=settings.payment_timeout_seconds)
    async with serving_orders(settings, accounts, tokens, gateway) as served:
        yield served


@asynccontextmanager
async def serving_orders(
    settings: Settings, accounts: UserService, tokens: TestTokens, gateway: SandboxGateway
) -> AsyncIterator[OrderService]:
    """The order service in-process with `settings`, charging through `gateway`."""
    db = await asyncpg.connect(str(settings.database_url))
    try:
        async with serve_in_process(
            settings,
            lambda: build_app(settings, key_source=tokens.key_source(), payment_gateway=gateway),
        ) as served:
            stub = order_service_pb2_grpc.OrderServiceStub(served.channel)
            yield OrderService(served, stub, gateway, db, accounts)
    finally:
        await db.close()


async def create_product(
    product: ProductService,
    stock: int,
    price: Money = PRICE,
    title: str = "Desk lamp",
    *,
    seller_token: str | None = None,
) -> str:
    """A published listing, by the product fixture's seller unless `seller_token` names one."""
    created = await product.stub.CreateProduct(
        product_service_pb2.CreateProductRequest(
            product=product_pb2.Product(
                title=title,
                category="home",
                list_price=money_to_proto(price),
                initial_stock=stock,
            ),
            publish=True,
        ),
        metadata=bearer(seller_token or product.seller_token),
    )
    return created.product_id


async def stock(product: ProductService, product_id: str) -> tuple[int, int, int]:
    """(available through the API, on hand, reserved) of a product."""
    seen = await product.stub.GetProduct(
        product_service_pb2.GetProductRequest(product_id=product_id)
    )
    stored = await product.repository.get(product_id)
    assert stored is not None
    return seen.stock_available, stored.inventory.on_hand, stored.inventory.reserved


def order_request(
    *lines: tuple[str, int], token: str = "tok_visa"
) -> order_service_pb2.CreateOrderRequest:
    return order_service_pb2.CreateOrderRequest(
        items=[order_pb2.OrderItem(product_id=p, quantity=q) for p, q in lines],
        shipping_address=order_pb2.ShippingAddress(
            recipient_name="Ada Lovelace", line1="1 Main St", city="Berlin", country_code="DE"
        ),
        payment_method_token=token,
    )


async def place(
    orders: OrderService,
    buyer_token: str,
    request: order_service_pb2.CreateOrderRequest,
    key: str | None = None,
) -> order_pb2.Order:
    """Place an order as the buyer `buyer_token` stands for."""
    metadata = (*bearer(buyer_token), ("idempotency-key", key or str(uuid.uuid4())))
    return await orders.stub.CreateOrder(request, metadata=metadata)


async def place_failure(
    orders: OrderService,
    buyer_token: str,
    request: order_service_pb2.CreateOrderRequest,
    key: str | None = None,
) -> RemoteError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await place(orders, buyer_token, request, key)
    return rpc_failure(raised)


async def count(orders: OrderService, sql: str, *args: object) -> int:
    value = await orders.db.fetchval(sql, *args)
    assert isinstance(value, int)
    return value


def money(value: money_pb2.Money) -> Money:
    return Money(value.units * 100 + value.nanos // 10_000_000, value.currency_code)
