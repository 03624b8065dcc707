"""The order service killed mid-checkout and restarted: the reconciler settles the order.

The order service runs as a real process that dies (os._exit, no cleanup) at a chosen saga
step; the sandbox payment gateway runs as its own process, so the charge it holds survives
the crash as a real processor's would; the product and user services run in the test's
process on real MongoDB-wire and PostgreSQL. After a restart without the crash setting,
only durable state (the orders database, the gateway's idempotency keys, the product
service's reservation) tells the reconciler what to do.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import grpc
import pytest
import pytest_asyncio
from marketplace.order.v1 import order_pb2, order_service_pb2_grpc

from services.devmesh.mesh import grpc_serving, http_status
from services.devmesh.processes import ManagedProcess, free_port
from services.user.app import build_app as user_build_app
from services.user.config import Settings as UserSettings
from tests.contract.test_order_service import (
    MIGRATIONS,
    SECRET,
    USER_MIGRATIONS,
    ProductService,
    UserService,
    create_product,
    failure,
    order_request,
    product,  # the module-scoped fixture, shared
    stock,
)
from tests.support.crashing_order import CRASH_AT_ENV
from tests.support.inprocess import mesh_channel, serve_in_process
from tests.support.servers import Backends
from tests.support.tls import probe_credentials
from tests.support.tokens import TestTokens, bearer

__all__ = ["product"]

SERVICE = "marketplace.order.v1.OrderService"


@dataclass
class Accounts:
    """The user service, which also serves the test tokens' JWKS to the order process."""

    users: UserService
    jwks_url: str


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def accounts(backends: Backends, tokens: TestTokens) -> AsyncIterator[Accounts]:
    url = backends.database_url("order_crash_users", USER_MIGRATIONS)
    settings = UserSettings(
        database_url=url,
        environment="test",
        grpc_host="127.0.0.1",
        grpc_port=0,
        ops_port=0,
        internal_secret=SECRET,
        shutdown_notice_seconds=0,
        shutdown_grace_seconds=1,
    )
    async with (
        asyncpg.create_pool(url, min_size=1, max_size=2) as db,
        # Signing with the test tokens' ring: its JWKS endpoint vouches for them.
        serve_in_process(
            settings, lambda: user_build_app(settings, key_ring=tokens.ring)
        ) as served,
    ):
        jwks = f"http://127.0.0.1:{served.server.ops_port}/.well-known/jwks.json"
        yield Accounts(UserService(served, db), jwks)


@dataclass
class Gateway:
    """The sandbox gateway process and a way to read its charges."""

    url: str
    api_key: str

    async def charges(self) -> list[dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{self.url}/v1/charges", headers={"Authorization": f"Bearer {self.api_key}"}
            ) as response,
        ):
            assert response.status == 200
            body = await response.json()
        charges: list[dict[str, Any]] = body["charges"]
        return charges


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    port, key = free_port(), secrets.token_urlsafe(16)
    process = ManagedProcess(
        "payment-gateway",
        [sys.executable, "-m", "services.order.sandbox_gateway"],
        tmp_path_factory.mktemp("gateway") / "gateway.log",
        env={
            "SANDBOX_GATEWAY_PORT": str(port),
            "SANDBOX_GATEWAY_API_KEY": key,
            "SANDBOX_GATEWAY_LATENCY_MS": "5",
        },
    ).start()
    try:
        url = f"http://127.0.0.1:{port}"
        process.wait_ready(lambda: http_status(f"{url}/healthz") == 200, timeout=30)
        yield Gateway(url, key)
    finally:
        process.stop(timeout=5)


@dataclass
class OrderProcess:
    """How to start the order service as its own process, with or without a crash."""

    env: dict[str, str]
    log: Path
    port: int

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, crash_at: str = "") -> ManagedProcess:
        # The crash hook lives in the tests: a crashing run starts the test entry point.
        module = "tests.support.crashing_order" if crash_at else "services.order"
        env = {**self.env, CRASH_AT_ENV: crash_at}
        process = ManagedProcess("order", [sys.executable, "-m", module], self.log, env=env).start()
        # Polled from a thread: the product and user services share this test's loop.
        await asyncio.to_thread(
            process.wait_ready, lambda: grpc_serving(self.target, SERVICE, probe_credentials()), 30
        )
        return process


@pytest.fixture
def order_process(
    backends: Backends,
    product: ProductService,
    accounts: Accounts,
    gateway: Gateway,
    tmp_path: Path,
) -> OrderProcess:
    database_url = backends.database_url("orders_crash", MIGRATIONS)
    port = free_port()
    env = {
        "ORDER_ENVIRONMENT": "test",
        "ORDER_DATABASE_URL": database_url,
        "ORDER_GRPC_HOST": "127.0.0.1",
        "ORDER_GRPC_PORT": str(port),
        "ORDER_OPS_PORT": str(free_port()),
        "ORDER_JWKS_URL": accounts.jwks_url,
        "ORDER_INTERNAL_SECRET": SECRET,
        "ORDER_PRODUCT_TARGET": product.served.target,
        "ORDER_USER_TARGET": accounts.users.served.target,
        "ORDER_REDIS_URL": backends.redis_url,
        "ORDER_EVENTS_STREAM": f"test.order.crash.{uuid.uuid4().hex[:8]}",
        "ORDER_PAYMENT_GATEWAY_URL": gateway.url,
        "ORDER_PAYMENT_GATEWAY_API_KEY": gateway.api_key,
        # Short enough for a test, far longer than this test's saga (milliseconds).
        "ORDER_RECONCILE_AFTER_SECONDS": "0.5",
        "ORDER_RECONCILE_INTERVAL_SECONDS": "0.2",
        "ORDER_SHUTDOWN_NOTICE_SECONDS": "0",
        "ORDER_SHUTDOWN_GRACE_SECONDS": "1",
    }
    return OrderProcess(env, tmp_path / "order.log", port)


async def settled(database_url: str, order_id: uuid.UUID) -> asyncpg.Record:
    """The order row once the reconciler has moved it out of PENDING (and committed stock)."""
    db = await asyncpg.connect(database_url)
    try:
        async with asyncio.timeout(15):
            while True:
                row = await db.fetchrow(
                    "SELECT status, stock_committed FROM orders WHERE id = $1", order_id
                )
                if row is not None and (
                    row["status"] == "cancelled"
                    or (row["status"] == "paid" and row["stock_committed"])
                ):
                    return row
                await asyncio.sleep(0.1)
    finally:
        await db.close()


async def order_id_of_key(database_url: str, key: str) -> uuid.UUID:
    db = await asyncpg.connect(database_url)
    try:
        order_id = await db.fetchval("SELECT order_id FROM idempotency_keys WHERE key = $1", key)
    finally:
        await db.close()
    assert isinstance(order_id, uuid.UUID)
    return order_id


@pytest.mark.parametrize(
    ("crash_at", "outcome"),
    [
        ("after_record", "cancelled"),  # the order is written, no money moved yet
        ("after_authorize", "voided"),  # money held, not taken
        ("after_capture", "paid"),  # money taken, the order still PENDING
        ("after_paid", "paid"),  # PAID, the reservation not yet committed
    ],
)
async def test_a_crash_mid_checkout_is_finished_or_compensated_after_a_restart(
    crash_at: str,
    outcome: str,
    order_process: OrderProcess,
    product: ProductService,
    accounts: Accounts,
    gateway: Gateway,
    tokens: TestTokens,
) -> None:
    product_id = await create_product(product, stock=4)
    buyer = str(uuid.uuid4())
    await accounts.users.register(buyer)
    key = f"crash-{crash_at}-{uuid.uuid4()}"
    metadata = (*bearer(tokens.mint(buyer)), ("idempotency-key", key))
    charges_before = len(await gateway.charges())

    crashing = await order_process.start(crash_at=crash_at)
    try:
        async with mesh_channel(order_process.target, "edge") as channel:
            stub = order_service_pb2_grpc.OrderServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.CreateOrder(
                    order_request((product_id, 1)), metadata=metadata, timeout=10
                )
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE  # the connection dropped
        assert crashing.process is not None
        assert await asyncio.to_thread(crashing.process.wait, 10) == 70  # os._exit, no cleanup
    finally:
        crashing.stop(timeout=5)

    database_url = order_process.env["ORDER_DATABASE_URL"]
    order_id = await order_id_of_key(database_url, key)
    assert (await stock(product, product_id))[2] == 1  # the crash left the unit reserved

    restarted = await order_process.start()
    try:
        row = await settled(database_url, order_id)
        async with mesh_channel(order_process.target, "edge") as channel:
            stub = order_service_pb2_grpc.OrderServiceStub(channel)
            if outcome == "paid":
                retried = await stub.CreateOrder(order_request((product_id, 1)), metadata=metadata)
                assert (retried.order_id, retried.status) == (
                    str(order_id),
                    order_pb2.ORDER_STATUS_PAID,
                )
            else:
                with pytest.raises(grpc.aio.AioRpcError) as replayed:
                    await stub.CreateOrder(order_request((product_id, 1)), metadata=metadata)
                interrupted = failure(replayed.value)
                assert (interrupted.code, interrupted.reason) == (
                    grpc.StatusCode.UNAVAILABLE,
                    "ORDER_INTERRUPTED",
                )
                assert interrupted.metadata["order_id"] == str(order_id)
    finally:
        restarted.stop(timeout=5)

    charges = (await gateway.charges())[charges_before:]
    if outcome == "paid":
        assert row["status"] == "paid"
        assert [c["status"] for c in charges] == ["captured"]  # exactly one capture
        assert await stock(product, product_id) == (3, 3, 0)  # sold, not just held
    else:
        assert row["status"] == "cancelled"
        expected = ["voided"] if outcome == "voided" else []
        assert [c["status"] for c in charges] == expected
        assert await stock(product, product_id) == (4, 4, 0)  # released
