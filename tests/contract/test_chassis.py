"""The shared chassis over real gRPC: statuses with details, auth, health, reflection, drain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from marketplace.product.v1 import product_pb2, product_service_pb2, product_service_pb2_grpc

from services.common.access import AccessPolicy
from services.common.config import Environment, ServiceSettings
from services.common.errors import ErrorKind, FieldViolation, InvalidArgument, NotFound
from services.common.identity import Role, current_caller
from services.common.rpc_status import remote_error
from services.common.server import ServiceApp, running_server
from tests.support.inprocess import client_channel
from tests.support.tokens import TestTokens, bearer

SERVICE = "marketplace.product.v1.ProductService"
INTERNAL = "marketplace.product.v1.ProductInternalService"
SECRET = "chassis-test-secret"


class Probe(product_service_pb2_grpc.ProductServiceServicer):
    """A servicer exercising each path of the interceptors."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def GetProduct(self, request: Any, context: Any) -> product_pb2.Product:
        if request.product_id == "slow":
            await self.release.wait()
            return product_pb2.Product(product_id="slow")
        if request.product_id == "bug":
            raise RuntimeError("a bug with a secret inside")
        if not request.product_id:
            raise InvalidArgument([FieldViolation("product_id", "is required")])
        raise NotFound("product not found", reason="PRODUCT_NOT_FOUND")

    async def CreateProduct(self, request: Any, context: Any) -> product_pb2.Product:
        caller = current_caller()
        caller.require_any_role(Role.SELLER)
        return product_pb2.Product(seller_id=caller.user_id)


class InternalProbe(product_service_pb2_grpc.ProductInternalServiceServicer):
    async def ReleaseReservation(self, request: Any, context: Any) -> Any:
        return product_service_pb2.ReleaseReservationResponse()


def settings(grace: float = 5.0, notice: float = 0.0) -> ServiceSettings:
    return ServiceSettings(
        shutdown_notice_seconds=notice,
        environment=Environment.TEST,
        grpc_host="127.0.0.1",
        grpc_port=0,
        ops_port=0,
        internal_secret=SECRET,
        shutdown_grace_seconds=grace,
        error_domain="probe.marketplace.example.com",
    )


def open_channel(port: int, identity: str = "edge") -> grpc.aio.Channel:
    """A channel to the probe server presenting `identity`'s test certificate."""
    return client_channel(settings(), f"127.0.0.1:{port}", identity)


@asynccontextmanager
async def probe_app(tokens: TestTokens, probe: Probe) -> AsyncIterator[ServiceApp]:
    yield ServiceApp(
        name="probe",
        servicers=[
            (product_service_pb2_grpc.add_ProductServiceServicer_to_server, probe),
            (
                product_service_pb2_grpc.add_ProductInternalServiceServicer_to_server,
                InternalProbe(),
            ),
        ],
        service_names=[SERVICE, INTERNAL],
        # The contract's own policy: GetProduct is public, ReleaseReservation internal.
        policy=AccessPolicy.from_contract(SERVICE, INTERNAL),
        key_source=tokens.key_source(),
    )


async def code_of(call: Any) -> tuple[grpc.StatusCode, Any]:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    return error.value.code(), rpc_status.from_call(error.value)


async def test_errors_map_to_statuses_with_details(tokens: TestTokens) -> None:
    probe = Probe()
    async with probe_app(tokens, probe) as app, running_server(settings(), app) as server:
        async with open_channel(server.grpc_port) as channel:
            stub = product_service_pb2_grpc.ProductServiceStub(channel)

            code, status = await code_of(stub.GetProduct(product_service_pb2.GetProductRequest()))
            assert code == grpc.StatusCode.INVALID_ARGUMENT
            bad_request = error_details_pb2.BadRequest()
            assert any(d.Unpack(bad_request) for d in status.details)
            assert bad_request.field_violations[0].field == "product_id"

            code, status = await code_of(
                stub.GetProduct(product_service_pb2.GetProductRequest(product_id="x"))
            )
            assert code == grpc.StatusCode.NOT_FOUND
            info = error_details_pb2.ErrorInfo()
            assert status.details[0].Unpack(info) and info.reason == "PRODUCT_NOT_FOUND"

            with pytest.raises(grpc.aio.AioRpcError) as bug:
                await stub.GetProduct(product_service_pb2.GetProductRequest(product_id="bug"))
            assert bug.value.code() == grpc.StatusCode.INTERNAL
            assert "secret" not in (bug.value.details() or "")

            code, _ = await code_of(
                stub.SearchProducts(
                    product_service_pb2.SearchProductsRequest(), metadata=bearer(tokens.mint())
                )
            )
            assert code == grpc.StatusCode.UNIMPLEMENTED


async def test_a_client_parses_a_failed_call_back_into_a_typed_error(tokens: TestTokens) -> None:
    probe = Probe()
    async with probe_app(tokens, probe) as app, running_server(settings(), app) as server:
        async with open_channel(server.grpc_port) as channel:
            stub = product_service_pb2_grpc.ProductServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as invalid:
                await stub.GetProduct(product_service_pb2.GetProductRequest())
            with pytest.raises(grpc.aio.AioRpcError) as missing:
                await stub.GetProduct(product_service_pb2.GetProductRequest(product_id="x"))
    bad = remote_error(invalid.value)
    assert (bad.code, bad.kind, bad.domain) == (
        grpc.StatusCode.INVALID_ARGUMENT,
        ErrorKind.INVALID_ARGUMENT,
        "probe.marketplace.example.com",
    )
    assert [v.field for v in bad.violations] == ["product_id"]
    again = bad.to_domain_error()
    assert isinstance(again, InvalidArgument) and again.violations == list(bad.violations)
    gone = remote_error(missing.value)
    assert (gone.reason, gone.kind) == ("PRODUCT_NOT_FOUND", ErrorKind.NOT_FOUND)
    assert isinstance(gone.to_domain_error(), NotFound)


async def test_tokens_and_roles_are_enforced(tokens: TestTokens) -> None:
    probe = Probe()
    async with probe_app(tokens, probe) as app, running_server(settings(), app) as server:
        async with open_channel(server.grpc_port) as channel:
            stub = product_service_pb2_grpc.ProductServiceStub(channel)
            request = product_service_pb2.CreateProductRequest()
            assert (await code_of(stub.CreateProduct(request)))[
                0
            ] == grpc.StatusCode.UNAUTHENTICATED
            forged = TestTokens().mint(roles=(Role.SELLER,))  # signed by keys nobody trusts
            code, _ = await code_of(stub.CreateProduct(request, metadata=bearer(forged)))
            assert code == grpc.StatusCode.UNAUTHENTICATED
            expired = tokens.mint(roles=(Role.SELLER,), ttl_seconds=-60)
            code, _ = await code_of(stub.CreateProduct(request, metadata=bearer(expired)))
            assert code == grpc.StatusCode.UNAUTHENTICATED
            customer = tokens.mint(roles=(Role.CUSTOMER,))
            code, _ = await code_of(stub.CreateProduct(request, metadata=bearer(customer)))
            assert code == grpc.StatusCode.PERMISSION_DENIED
            seller = tokens.mint("seller-1", roles=(Role.SELLER,))
            created = await stub.CreateProduct(request, metadata=bearer(seller))
            assert created.seller_id == "seller-1"

            # Internal RPCs go by the caller's certificate: the edge's is refused even
            # with a seller's token, the order service's is admitted.
            internal = product_service_pb2_grpc.ProductInternalServiceStub(channel)
            release = product_service_pb2.ReleaseReservationRequest(order_id="o")
            code, _ = await code_of(internal.ReleaseReservation(release, metadata=bearer(seller)))
            assert code == grpc.StatusCode.PERMISSION_DENIED
        async with open_channel(server.grpc_port, "order") as order_channel:
            internal = product_service_pb2_grpc.ProductInternalServiceStub(order_channel)
            await internal.ReleaseReservation(release)


async def test_health_reflection_and_metrics(tokens: TestTokens) -> None:
    async with probe_app(tokens, Probe()) as app, running_server(settings(), app) as server:
        async with open_channel(server.grpc_port) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            for name in (SERVICE, INTERNAL, ""):
                answer = await health.Check(health_pb2.HealthCheckRequest(service=name))
                assert answer.status == health_pb2.HealthCheckResponse.SERVING

            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            responses = reflection.ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")])
            )
            names = set()
            async for response in responses:
                names |= {s.name for s in response.list_services_response.service}
            assert {SERVICE, INTERNAL, "grpc.health.v1.Health"} <= names

            stub = product_service_pb2_grpc.ProductServiceStub(channel)
            await code_of(stub.GetProduct(product_service_pb2.GetProductRequest(product_id="x")))
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{server.ops_port}/metrics") as response:
                text = await response.text()
        assert (
            'grpc_server_handled_total{grpc_code="NOT_FOUND",grpc_method="GetProduct",'
            f'grpc_service="{SERVICE}"}} 1.0'
        ) in text


async def test_shutdown_turns_not_serving_and_drains_in_flight_calls(tokens: TestTokens) -> None:
    probe = Probe()
    async with probe_app(tokens, probe) as app:
        context = running_server(settings(grace=5, notice=1.0), app)
        server = await context.__aenter__()
        channel = open_channel(server.grpc_port)
        stub = product_service_pb2_grpc.ProductServiceStub(channel)
        in_flight = asyncio.ensure_future(
            stub.GetProduct(product_service_pb2.GetProductRequest(product_id="slow"))
        )
        await asyncio.sleep(0.1)
        stopping = asyncio.ensure_future(context.__aexit__(None, None, None))
        await asyncio.sleep(0.1)
        # During the notice period health checkers see NOT_SERVING and stop routing here.
        health = health_pb2_grpc.HealthStub(channel)
        answer = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE))
        assert answer.status == health_pb2.HealthCheckResponse.NOT_SERVING
        await asyncio.sleep(1.2)
        # Past the notice the server drains: new calls are refused, the slow one goes on.
        code, _ = await code_of(
            stub.GetProduct(product_service_pb2.GetProductRequest(product_id="x"))
        )
        assert code == grpc.StatusCode.UNAVAILABLE
        assert not stopping.done()
        probe.release.set()
        assert (await in_flight).product_id == "slow"
        await stopping
        await channel.close()


async def test_the_plaintext_health_port_serves_health_and_nothing_else(
    tokens: TestTokens,
) -> None:
    """The kubelet's grpc probes cannot present a certificate: they get health alone."""
    probe_settings = settings().model_copy(update={"health_port": 0})
    async with probe_app(tokens, Probe()) as app, running_server(probe_settings, app) as server:
        assert server.health_port not in (0, server.grpc_port)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.health_port}") as channel:
            answer = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=SERVICE)
            )
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
            stub = product_service_pb2_grpc.ProductServiceStub(channel)
            code, _ = await code_of(
                stub.GetProduct(product_service_pb2.GetProductRequest(product_id="x"))
            )
            assert code == grpc.StatusCode.UNIMPLEMENTED
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(), timeout=5
                )
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # mTLS only
