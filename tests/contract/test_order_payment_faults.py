"""Checkout under payment faults, with the order service and the gateway as real processes.

The sandbox gateway runs as its own process keeping its charges in a state file, and is
stalled (its fault control) or killed; the order service runs as its own process with
its production defaults for leases and reconciliation, and is killed mid-saga. The
product and user services run in the test's process on real MongoDB-wire and PostgreSQL.
Each test retries the checkout with the same Idempotency-Key, as a client would, until
the answer is final, and checks what the buyer was told against where the money is.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import grpc
import pytest
from marketplace.order.v1 import order_pb2, order_service_pb2_grpc

from services.common.rpc_status import RemoteError, remote_error
from services.devmesh.processes import free_port
from services.order.adapters.inventory import GrpcInventory
from tests.support.inprocess import mesh_channel
from tests.support.order import (
    MIGRATIONS,
    SECRET,
    ProductService,
    create_product,
    order_request,
    product,
    stock,
)
from tests.support.order_process import Accounts, OrderProcess, accounts
from tests.support.sandbox_gateway import GatewayProcess
from tests.support.servers import Backends
from tests.support.tokens import TestTokens, bearer

__all__ = ["accounts", "product"]

# A correctness bound for "the client's retry gets its final answer", not a performance
# figure: far above the lease and reconcile interval, far below the old 70-83 s.
FINAL_WITHIN = 30.0
RETRYABLE = {"REQUEST_IN_PROGRESS", "PAYMENT_PENDING"}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = GatewayProcess(tmp_path_factory.mktemp("gateway-state")).start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def order_process(
    backends: Backends,
    product: ProductService,
    accounts: Accounts,
    gateway: GatewayProcess,
    tmp_path: Path,
) -> OrderProcess:
    """The order service with its default lease and reconcile settings and a 1 s payment timeout."""
    port = free_port()
    env = {
        "ORDER_ENVIRONMENT": "test",
        "ORDER_DATABASE_URL": backends.database_url("orders_faults", MIGRATIONS),
        "ORDER_GRPC_HOST": "127.0.0.1",
        "ORDER_GRPC_PORT": str(port),
        "ORDER_OPS_PORT": str(free_port()),
        "ORDER_JWKS_URL": accounts.jwks_url,
        "ORDER_INTERNAL_SECRET": SECRET,
        "ORDER_PRODUCT_TARGET": product.served.target,
        "ORDER_USER_TARGET": accounts.users.served.target,
        "ORDER_REDIS_URL": backends.redis_url,
        "ORDER_EVENTS_STREAM": f"test.order.faults.{uuid.uuid4().hex[:8]}",
        "ORDER_PAYMENT_GATEWAY_URL": gateway.url,
        "ORDER_PAYMENT_GATEWAY_API_KEY": gateway.api_key,
        "ORDER_PAYMENT_TIMEOUT_SECONDS": "1",
        "ORDER_SHUTDOWN_NOTICE_SECONDS": "0",
        "ORDER_SHUTDOWN_GRACE_SECONDS": "1",
    }
    return OrderProcess(env, tmp_path / "order.log", port)


class Buyer:
    """One buyer's checkout with one Idempotency-Key, retried until its answer is final."""

    def __init__(self, target: str, metadata: tuple[tuple[str, str], ...], product_id: str):
        self.target = target
        self.metadata = metadata
        self.request = order_request((product_id, 1))

    async def checkout(self) -> order_pb2.Order | RemoteError:
        async with mesh_channel(self.target, "edge", retries=False) as channel:
            stub = order_service_pb2_grpc.OrderServiceStub(channel)
            try:
                return await stub.CreateOrder(self.request, metadata=self.metadata, timeout=20)
            except grpc.aio.AioRpcError as error:
                return remote_error(error)

    async def final_answer(self) -> order_pb2.Order | RemoteError:
        async with asyncio.timeout(FINAL_WITHIN):
            while True:
                answer = await self.checkout()
                if isinstance(answer, order_pb2.Order) or answer.reason not in RETRYABLE:
                    return answer
                await asyncio.sleep(0.5)


async def new_buyer(accounts: Accounts, tokens: TestTokens, target: str, product_id: str) -> Buyer:
    buyer = await accounts.users.new_buyer()
    metadata = (*bearer(tokens.mint(buyer)), ("idempotency-key", f"faults-{uuid.uuid4()}"))
    return Buyer(target, metadata, product_id)


async def checkout_while_stalled(
    buyer: Buyer, gateway: GatewayProcess, operation: str, seconds: float
) -> order_pb2.Order | RemoteError:
    """One checkout while the gateway stalls `operation`; the stalled call still completes."""
    await gateway.stall(operation, seconds)
    try:
        return await buyer.checkout()
    finally:
        await gateway.unstall(operation)


async def test_a_capture_stalled_past_the_timeout_is_reported_pending_and_ends_paid(
    order_process: OrderProcess,
    product: ProductService,
    accounts: Accounts,
    gateway: GatewayProcess,
    tokens: TestTokens,
) -> None:
    product_id = await create_product(product, stock=4)
    before = await charge_ids(gateway)
    served = await order_process.start()
    try:
        buyer = await new_buyer(accounts, tokens, order_process.target, product_id)
        first = await checkout_while_stalled(buyer, gateway, "capture", 4)
        # Not "cancelled, nothing charged": the capture's outcome was not known.
        assert isinstance(first, RemoteError)
        assert (first.code, first.reason) == (grpc.StatusCode.UNAVAILABLE, "PAYMENT_PENDING")

        final = await buyer.final_answer()
        assert isinstance(final, order_pb2.Order), final
        assert (final.order_id, final.status) == (
            first.metadata["order_id"],
            order_pb2.ORDER_STATUS_PAID,
        )
    finally:
        served.stop(timeout=5)
    [charge] = [c for c in await gateway.charges() if c["authorization_id"] not in before]
    assert (charge["status"], charge["refunded_minor"]) == ("captured", 0)
    assert await stock(product, product_id) == (3, 3, 0)  # sold, once


async def test_a_capture_that_lands_after_the_stock_went_back_is_refunded_and_recorded(
    order_process: OrderProcess,
    product: ProductService,
    accounts: Accounts,
    gateway: GatewayProcess,
    tokens: TestTokens,
) -> None:
    product_id = await create_product(product, stock=4)
    before = await charge_ids(gateway)
    served = await order_process.start()
    try:
        buyer = await new_buyer(accounts, tokens, order_process.target, product_id)
        await gateway.stall("capture", 4)
        try:
            first = await buyer.checkout()
            assert isinstance(first, RemoteError) and first.reason == "PAYMENT_PENDING"
            order_id = uuid.UUID(first.metadata["order_id"])
            # Meanwhile the hold lapses (as the product service's expiry sweeper would).
            channel = mesh_channel(product.served.target)
            try:
                await GrpcInventory(channel, 2.0).release(order_id)
            finally:
                await channel.close()
        finally:
            await gateway.unstall("capture")

        final = await buyer.final_answer()
        assert isinstance(final, RemoteError)
        assert (final.code, final.reason) == (grpc.StatusCode.UNAVAILABLE, "ORDER_INTERRUPTED")
        assert "refunded in full" in await _message(buyer)
    finally:
        served.stop(timeout=5)
    [charge] = [c for c in await gateway.charges() if c["authorization_id"] not in before]
    assert (charge["status"], charge["refunded_minor"]) == ("captured", charge["amount_minor"])
    db = await asyncpg.connect(order_process.env["ORDER_DATABASE_URL"])
    try:
        assert await db.fetchval("SELECT status FROM orders WHERE id = $1", order_id) == "cancelled"
        payments = await db.fetch(
            "SELECT status, refunded_minor FROM payments WHERE order_id = $1 ORDER BY created_at",
            order_id,
        )
        assert [(p["status"], p["refunded_minor"]) for p in payments] == [
            ("captured", 0),
            ("refunded", charge["amount_minor"]),
        ]
        events = await db.fetch("SELECT event_type FROM outbox WHERE order_id = $1", order_id)
        assert len(events) == 3  # placed, paid, cancelled: the refund is announced
    finally:
        await db.close()
    assert await stock(product, product_id) == (4, 4, 0)


async def test_an_authorise_stalled_past_the_timeout_leaves_no_live_hold(
    order_process: OrderProcess,
    product: ProductService,
    accounts: Accounts,
    gateway: GatewayProcess,
    tokens: TestTokens,
) -> None:
    product_id = await create_product(product, stock=4)
    before = await charge_ids(gateway)
    served = await order_process.start()
    try:
        buyer = await new_buyer(accounts, tokens, order_process.target, product_id)
        first = await checkout_while_stalled(buyer, gateway, "authorize", 3)
        assert isinstance(first, RemoteError)
        assert (first.code, first.reason) == (grpc.StatusCode.UNAVAILABLE, "PAYMENT_PENDING")

        final = await buyer.final_answer()
        assert isinstance(final, RemoteError)
        assert (final.code, final.reason) == (grpc.StatusCode.UNAVAILABLE, "ORDER_INTERRUPTED")
        assert "nothing was charged" in (await _message(buyer))
    finally:
        served.stop(timeout=5)
    # The authorisation the stalled call made after all was found and voided.
    new = [c for c in await gateway.charges() if c["authorization_id"] not in before]
    assert [c["status"] for c in new] == ["voided"]
    assert await stock(product, product_id) == (4, 4, 0)


async def test_the_gateway_killed_mid_capture_remembers_its_charges_and_the_hold_is_voided(
    order_process: OrderProcess,
    product: ProductService,
    accounts: Accounts,
    gateway: GatewayProcess,
    tokens: TestTokens,
) -> None:
    product_id = await create_product(product, stock=4)
    before = await charge_ids(gateway)
    served = await order_process.start()
    try:
        buyer = await new_buyer(accounts, tokens, order_process.target, product_id)
        await gateway.stall("capture", 60)
        first = await buyer.checkout()
        assert isinstance(first, RemoteError)
        assert first.reason == "PAYMENT_PENDING"  # the capture was received, not finished
        charges = await gateway.charges()
        await asyncio.to_thread(gateway.kill)  # mid-capture: the capture never happened
        await asyncio.to_thread(gateway.start)
        # A processor does not forget: the same holds are there after the restart. Their
        # status may already have moved on (the reconciler can void the hold at once).
        remembered = {c["authorization_id"]: c["amount_minor"] for c in await gateway.charges()}
        assert remembered == {c["authorization_id"]: c["amount_minor"] for c in charges}

        final = await buyer.final_answer()
        assert isinstance(final, RemoteError)
        assert (final.code, final.reason) == (grpc.StatusCode.UNAVAILABLE, "ORDER_INTERRUPTED")
    finally:
        served.stop(timeout=5)
    new = [c for c in await gateway.charges() if c["authorization_id"] not in before]
    assert [c["status"] for c in new] == ["voided"]
    assert await stock(product, product_id) == (4, 4, 0)


@pytest.mark.parametrize(
    ("crash_at", "paid"), [("after_authorize", False), ("after_capture", True)]
)
async def test_a_retry_after_an_order_service_crash_gets_its_final_answer_promptly(
    crash_at: str,
    paid: bool,
    order_process: OrderProcess,
    product: ProductService,
    accounts: Accounts,
    tokens: TestTokens,
) -> None:
    product_id = await create_product(product, stock=4)
    buyer = await new_buyer(accounts, tokens, order_process.target, product_id)
    crashing = await order_process.start(crash_at=crash_at)
    try:
        dropped = await buyer.checkout()
        assert isinstance(dropped, RemoteError) and dropped.code == grpc.StatusCode.UNAVAILABLE
        assert crashing.process is not None
        assert await asyncio.to_thread(crashing.process.wait, 10) == 70
    finally:
        crashing.stop(timeout=5)

    restarted = await order_process.start()  # with the default lease and reconcile settings
    try:
        final = await buyer.final_answer()  # within FINAL_WITHIN of the restart
    finally:
        restarted.stop(timeout=5)
    if paid:
        assert isinstance(final, order_pb2.Order), final
        assert final.status == order_pb2.ORDER_STATUS_PAID
        assert await stock(product, product_id) == (3, 3, 0)
    else:
        assert isinstance(final, RemoteError)
        assert (final.code, final.reason) == (grpc.StatusCode.UNAVAILABLE, "ORDER_INTERRUPTED")
        assert await stock(product, product_id) == (4, 4, 0)


async def charge_ids(gateway: GatewayProcess) -> set[str]:
    return {c["authorization_id"] for c in await gateway.charges()}


async def _message(buyer: Buyer) -> str:
    async with mesh_channel(buyer.target, "edge", retries=False) as channel:
        stub = order_service_pb2_grpc.OrderServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.CreateOrder(buyer.request, metadata=buyer.metadata, timeout=20)
    return raised.value.details() or ""
