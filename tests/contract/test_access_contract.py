"""Every RPC of the contract over the real chassis: its access option decides who may call it.

Each method of the nine services is served by a stand-in that answers an empty response,
so the only thing between a call and that answer is the auth interceptor and the policy the
contract's options built.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import MethodDescriptor
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from marketplace.order.v1 import (
    cart_service_pb2,  # noqa: F401  (registers the services)
    order_internal_service_pb2,  # noqa: F401  (registers the services)
    order_service_pb2,  # noqa: F401  (registers the services)
    payout_service_pb2,  # noqa: F401  (registers the services)
    return_service_pb2,  # noqa: F401  (registers the services)
)
from marketplace.product.v1 import product_service_pb2  # noqa: F401
from marketplace.user.v1 import user_service_pb2  # noqa: F401

from services.common.access import Access, AccessPolicy, contract_access, contract_callers
from services.common.config import Environment, ServiceSettings
from services.common.server import RunningServer, ServiceApp, running_server
from tests.support.inprocess import client_channel
from tests.support.tls import TEST_IDENTITIES
from tests.support.tokens import TestTokens, bearer

SERVICES = (
    "marketplace.user.v1.UserService",
    "marketplace.user.v1.UserInternalService",
    "marketplace.product.v1.ProductService",
    "marketplace.product.v1.ProductInternalService",
    "marketplace.order.v1.OrderService",
    "marketplace.order.v1.CartService",
    "marketplace.order.v1.ReturnService",
    "marketplace.order.v1.OrderInternalService",
    "marketplace.order.v1.PayoutService",
)
SECRET = "access-contract-secret"
POOL = descriptor_pool.Default()


def _methods() -> list[MethodDescriptor]:
    return [m for name in SERVICES for m in POOL.FindServiceByName(name).methods]


def _handler(method: MethodDescriptor) -> grpc.RpcMethodHandler[Any, Any]:
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    if method.server_streaming:

        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            yield response_class()

        return grpc.unary_stream_rpc_method_handler(
            stream,
            request_deserializer=request_class.FromString,
            response_serializer=response_class.SerializeToString,
        )

    async def unary(request: Any, context: Any) -> Any:
        return response_class()

    return grpc.unary_unary_rpc_method_handler(
        unary,
        request_deserializer=request_class.FromString,
        response_serializer=response_class.SerializeToString,
    )


def _add_stand_ins(_: object, server: grpc.aio.Server) -> None:
    for name in SERVICES:
        service = POOL.FindServiceByName(name)
        handlers = {m.name: _handler(m) for m in service.methods}
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(name, handlers),))


def _settings(**overrides: Any) -> ServiceSettings:
    return ServiceSettings(
        **overrides,
        environment=Environment.TEST,
        grpc_host="127.0.0.1",
        grpc_port=0,
        ops_port=0,
        internal_secret=SECRET,
        shutdown_grace_seconds=1.0,
        shutdown_notice_seconds=0.0,
    )


def _reason(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert any(detail.Unpack(info) for detail in status.details)
    return info.reason


async def _call(
    channel: grpc.aio.Channel, method: MethodDescriptor, metadata: tuple[tuple[str, str], ...]
) -> grpc.aio.AioRpcError | None:
    """Call `method` with an empty request; the error it answers, or None on success."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    request = message_factory.GetMessageClass(method.input_type)()
    identity: Callable[[bytes], bytes] = bytes
    try:
        if method.server_streaming:
            call: Any = channel.unary_stream(
                path, request_serializer=None, response_deserializer=identity
            )
            async for _ in call(request.SerializeToString(), metadata=metadata):
                pass
        else:
            unary: Any = channel.unary_unary(
                path, request_serializer=None, response_deserializer=identity
            )
            await unary(request.SerializeToString(), metadata=metadata)
    except grpc.aio.AioRpcError as error:
        return error
    return None


def _app(tokens: TestTokens) -> ServiceApp:
    return ServiceApp(
        name="access-contract",
        servicers=[(_add_stand_ins, None)],
        service_names=list(SERVICES),
        policy=AccessPolicy.from_contract(*SERVICES),
        key_source=tokens.key_source(),
    )


@pytest.fixture
async def server(tokens: TestTokens) -> AsyncIterator[RunningServer]:
    async with running_server(_settings(), _app(tokens)) as running:
        yield running


@pytest.fixture
async def channel(server: RunningServer) -> AsyncIterator[grpc.aio.Channel]:
    """A channel presenting the edge's certificate: valid, but no internal caller."""
    async with client_channel(_settings(), f"127.0.0.1:{server.grpc_port}", "edge") as opened:
        yield opened


async def test_without_a_token_authenticated_rpcs_refuse_and_public_ones_answer(
    channel: grpc.aio.Channel,
) -> None:
    access = contract_access(SERVICES)
    outcomes: dict[str, str] = {}
    for method in _methods():
        error = await _call(channel, method, ())
        outcomes[method.full_name] = (
            "ok" if error is None else f"{error.code().name} {_reason(error)}"
        )
    expected = {
        Access.PUBLIC: "ok",
        Access.AUTHENTICATED: "UNAUTHENTICATED TOKEN_MISSING",
        Access.INTERNAL: "PERMISSION_DENIED CALLER_NOT_ALLOWED",
    }
    assert outcomes == {
        path.lstrip("/").replace("/", "."): expected[level] for path, level in access.items()
    }
    assert "ok" in outcomes.values()
    assert "UNAUTHENTICATED TOKEN_MISSING" in outcomes.values()


async def test_with_a_token_every_public_rpc_answers_and_internal_ones_refuse_the_edge(
    channel: grpc.aio.Channel, tokens: TestTokens
) -> None:
    access = contract_access(SERVICES)
    signed_in = bearer(tokens.mint())
    for method in _methods():
        level = access[f"/{method.containing_service.full_name}/{method.name}"]
        error = await _call(channel, method, signed_in)
        if level is Access.INTERNAL:
            assert error is not None, method.full_name
            assert error.code() == grpc.StatusCode.PERMISSION_DENIED, method.full_name
            assert _reason(error) == "CALLER_NOT_ALLOWED", method.full_name
        else:
            assert error is None, method.full_name


async def test_internal_rpcs_admit_exactly_the_service_identities_the_contract_lists(
    server: RunningServer,
) -> None:
    """Every identity the test CA signs calls every internal RPC: the listed callers get
    through, every other valid certificate is refused with AIP-193 details naming it.
    """
    callers = contract_callers(SERVICES)
    assert callers, "the contract has internal RPCs"
    outcomes: dict[tuple[str, str], str] = {}
    expected: dict[tuple[str, str], str] = {}
    target = f"127.0.0.1:{server.grpc_port}"
    for identity in TEST_IDENTITIES:
        async with client_channel(_settings(), target, identity) as channel:
            for method in _methods():
                path = f"/{method.containing_service.full_name}/{method.name}"
                if path not in callers:
                    continue
                error = await _call(channel, method, ())
                if error is None:
                    outcomes[(identity, path)] = "ok"
                else:
                    outcomes[(identity, path)] = f"{error.code().name} {_reason(error)}"
                    status = rpc_status.from_call(error)
                    assert status is not None
                    info = error_details_pb2.ErrorInfo()
                    assert any(d.Unpack(info) for d in status.details)
                    assert info.metadata["caller"].endswith(f"/service/{identity}")
                expected[(identity, path)] = (
                    "ok" if identity in callers[path] else "PERMISSION_DENIED CALLER_NOT_ALLOWED"
                )
    assert outcomes == expected
    assert "ok" in outcomes.values()
    assert "PERMISSION_DENIED CALLER_NOT_ALLOWED" in outcomes.values()


async def test_without_a_certificate_internal_rpcs_are_unauthenticated(
    tokens: TestTokens,
) -> None:
    """A dev server that asked for plaintext sees no certificate: internal RPCs refuse."""
    settings = _settings(plaintext=True)
    async with running_server(settings, _app(tokens)) as running:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.grpc_port}") as channel:
            for method in _methods():
                path = f"/{method.containing_service.full_name}/{method.name}"
                if path in contract_callers(SERVICES):
                    error = await _call(channel, method, ())
                    assert error is not None
                    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
                    assert _reason(error) == "INTERNAL_ONLY"
