"""The chassis' resilience policy over real gRPC: deadlines propagate, only idempotent calls
are retried, across a stalled and a stopped peer.

Every server here is the real chassis (mTLS, interceptors) serving a probe of the product
contract; the channels are the chassis factory's, whose service config comes from the
contract's idempotency levels (GetProduct reads, CreateProduct writes without a key).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from marketplace.product.v1 import product_pb2, product_service_pb2, product_service_pb2_grpc

from services.common.access import AccessPolicy
from services.common.channels import ClientTls, create_channel, service_config
from services.common.config import Environment, ServiceSettings
from services.common.identity import Role
from services.common.server import RunningServer, ServiceApp, running_server
from services.devmesh.tls import MeshTls
from tests.support.tokens import TestTokens, bearer

SERVICE = "marketplace.product.v1.ProductService"


@dataclass
class Peer(product_service_pb2_grpc.ProductServiceServicer):
    """A product-contract peer that counts calls and may stall or fail them."""

    name: str
    stall: asyncio.Event | None = None
    fail_first: int = 0
    calls: dict[str, int] = field(default_factory=dict)
    deadlines: list[float | None] = field(default_factory=list)
    # Set each time a call arrives (the test waits on it, then clears it).
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def _enter(self, method: str, context: Any) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1
        self.deadlines.append(context.time_remaining())
        self.arrived.set()
        if self.fail_first > 0:
            self.fail_first -= 1
            await context.abort(grpc.StatusCode.UNAVAILABLE, "not now")
        if self.stall is not None:
            await self.stall.wait()

    async def GetProduct(self, request: Any, context: Any) -> product_pb2.Product:
        await self._enter("GetProduct", context)
        return product_pb2.Product(product_id=request.product_id, title=self.name)

    async def CreateProduct(self, request: Any, context: Any) -> product_pb2.Product:
        await self._enter("CreateProduct", context)
        return product_pb2.Product(title=self.name)


class Front(product_service_pb2_grpc.ProductServiceServicer):
    """Serves SearchProducts by calling a peer's GetProduct with no deadline of its own."""

    def __init__(self, peer: grpc.aio.Channel) -> None:
        self._peer = product_service_pb2_grpc.ProductServiceStub(peer)

    async def SearchProducts(
        self, request: Any, context: Any
    ) -> product_service_pb2.SearchProductsResponse:
        product = await self._peer.GetProduct(product_service_pb2.GetProductRequest(product_id="p"))
        return product_service_pb2.SearchProductsResponse(products=[product])


def _settings() -> ServiceSettings:
    return ServiceSettings(
        environment=Environment.TEST,
        grpc_host="127.0.0.1",
        grpc_port=0,
        ops_port=0,
        shutdown_notice_seconds=0,
        shutdown_grace_seconds=0,
    )


@asynccontextmanager
async def serve(servicer: Any, tokens: TestTokens) -> AsyncIterator[RunningServer]:
    app = ServiceApp(
        name="probe",
        servicers=[(product_service_pb2_grpc.add_ProductServiceServicer_to_server, servicer)],
        service_names=[SERVICE],
        policy=AccessPolicy.from_contract(SERVICE),
        key_source=tokens.key_source(),
    )
    async with running_server(_settings(), app) as server:
        yield server


def order_tls(mesh_tls: MeshTls) -> ClientTls:
    files = mesh_tls.services["order"]
    return ClientTls.from_files(mesh_tls.ca_path, files.cert_path, files.key_path)


def test_the_service_config_retries_only_what_the_contract_declares_idempotent() -> None:
    config = service_config()
    retried = {
        (name["service"], name["method"])
        for entry in config["methodConfig"]
        if "retryPolicy" in entry
        for name in entry["name"]
    }
    assert (SERVICE, "GetProduct") in retried
    assert ("marketplace.order.v1.OrderService", "CreateOrder") in retried  # keyed write
    assert ("marketplace.product.v1.ProductInternalService", "ReserveInventory") in retried
    assert (SERVICE, "CreateProduct") not in retried
    assert ("marketplace.order.v1.OrderService", "CancelOrder") not in retried
    assert all("hedgingPolicy" not in entry for entry in config["methodConfig"])
    assert config["retryThrottling"] == {"maxTokens": 10, "tokenRatio": 0.1}


async def test_an_outgoing_call_never_outlives_the_incoming_one(
    tokens: TestTokens, mesh_tls: MeshTls
) -> None:
    """A 300 ms call whose handler calls a stalled peer ends in ~300 ms, and the peer saw
    the shortened deadline, not the channel's 5 s default.
    """
    peer = Peer("stalled", stall=asyncio.Event())
    async with AsyncExitStack() as stack:
        peer_server = await stack.enter_async_context(serve(peer, tokens))
        peer_channel = create_channel(
            f"127.0.0.1:{peer_server.grpc_port}", tls=order_tls(mesh_tls), timeout_seconds=5.0
        )
        stack.push_async_callback(peer_channel.close)
        front = await stack.enter_async_context(serve(Front(peer_channel), tokens))
        client = create_channel(f"127.0.0.1:{front.grpc_port}", tls=order_tls(mesh_tls))
        stack.push_async_callback(client.close)
        stub = product_service_pb2_grpc.ProductServiceStub(client)
        started = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await stub.SearchProducts(product_service_pb2.SearchProductsRequest(), timeout=0.3)
        elapsed = time.monotonic() - started
        peer.stall.set()  # type: ignore[union-attr]
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert elapsed < 0.6, elapsed
    assert peer.calls == {"GetProduct": 1}
    [seen] = peer.deadlines
    assert seen is not None and seen <= 0.3, seen


async def test_a_call_without_a_deadline_gets_the_channels(
    tokens: TestTokens, mesh_tls: MeshTls
) -> None:
    """Outside any incoming call (a worker), a call that sets no deadline still has one."""
    peer = Peer("stalled", stall=asyncio.Event())
    async with serve(peer, tokens) as server:
        async with create_channel(
            f"127.0.0.1:{server.grpc_port}", tls=order_tls(mesh_tls), timeout_seconds=0.4
        ) as channel:
            stub = product_service_pb2_grpc.ProductServiceStub(channel)
            started = time.monotonic()
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.GetProduct(product_service_pb2.GetProductRequest(product_id="p"))
            elapsed = time.monotonic() - started
        peer.stall.set()  # type: ignore[union-attr]
    assert raised.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    # Without a deadline the call would wait on the stalled peer for ever; the bound is loose
    # because the first call on a new channel also pays its TLS handshake on a busy machine.
    assert 0.3 < elapsed < 2.0, elapsed
    [seen] = peer.deadlines
    assert seen is not None and 0 < seen <= 0.4, seen


async def test_a_read_is_retried_and_a_write_is_not(tokens: TestTokens, mesh_tls: MeshTls) -> None:
    """An UNAVAILABLE answer: the read is tried again and succeeds, the write fails once."""
    peer = Peer("flaky", fail_first=1)
    async with serve(peer, tokens) as server:
        async with create_channel(
            f"127.0.0.1:{server.grpc_port}", tls=order_tls(mesh_tls)
        ) as channel:
            stub = product_service_pb2_grpc.ProductServiceStub(channel)
            product = await stub.GetProduct(product_service_pb2.GetProductRequest(product_id="p"))
            assert product.title == "flaky"
            assert peer.calls["GetProduct"] == 2

            peer.fail_first = 1
            seller = bearer(tokens.mint(roles=(Role.SELLER,)))
            with pytest.raises(grpc.aio.AioRpcError) as raised:
                await stub.CreateProduct(
                    product_service_pb2.CreateProductRequest(), metadata=seller
                )
            assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
            assert peer.calls["CreateProduct"] == 1


async def test_across_a_stopped_peer_reads_move_on_and_writes_fail_once(
    tokens: TestTokens, mesh_tls: MeshTls
) -> None:
    """Two instances, balanced per call; one stalls on a call and is stopped mid-call. The
    read in flight is retried on the other instance; a write in flight is not.
    """
    stalled = Peer("stalled", stall=asyncio.Event())
    healthy = Peer("healthy")
    async with AsyncExitStack() as stack:
        doomed_context = serve(stalled, tokens)
        doomed = await doomed_context.__aenter__()
        alive = await stack.enter_async_context(serve(healthy, tokens))
        target = f"ipv4:127.0.0.1:{doomed.grpc_port},127.0.0.1:{alive.grpc_port}"
        channel = create_channel(
            target,
            tls=order_tls(mesh_tls),
            server_name="product",
            options=[("grpc.lb_policy_name", "round_robin")],
        )
        stack.push_async_callback(channel.close)
        stub = product_service_pb2_grpc.ProductServiceStub(channel)
        await channel.channel_ready()
        seller = bearer(tokens.mint(roles=(Role.SELLER,)))

        # Calls alternate between the two; send until one of each kind sits on the stalled one.
        reads = [
            asyncio.ensure_future(
                stub.GetProduct(product_service_pb2.GetProductRequest(product_id=str(i)))
            )
            for i in range(4)
        ]
        writes = [
            asyncio.ensure_future(
                stub.CreateProduct(product_service_pb2.CreateProductRequest(), metadata=seller)
            )
            for _ in range(4)
        ]
        async with asyncio.timeout(5):
            while (
                stalled.calls.get("GetProduct", 0) < 1 or stalled.calls.get("CreateProduct", 0) < 1
            ):
                stalled.arrived.clear()
                await stalled.arrived.wait()
        await asyncio.sleep(0.1)
        await doomed_context.__aexit__(None, None, None)  # stopped with calls in flight

        read_results = await asyncio.gather(*reads, return_exceptions=True)
        write_results = await asyncio.gather(*writes, return_exceptions=True)
        stalled.stall.set()  # type: ignore[union-attr]

    assert all(isinstance(r, product_pb2.Product) for r in read_results), read_results
    assert {r.title for r in read_results if isinstance(r, product_pb2.Product)} == {"healthy"}
    failed = [r for r in write_results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(failed) == stalled.calls.get("CreateProduct", 0) >= 1
    assert healthy.calls.get("CreateProduct", 0) == len(writes) - len(failed)
