"""The typed client against small in-process gRPC servers: retries, errors, tokens, pages."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf import duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from marketplace.order.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc
from marketplace.user.v1 import user_pb2, user_service_pb2, user_service_pb2_grpc
from marketplace_client import (
    IDEMPOTENCY_KEY_HEADER,
    InvalidArgumentError,
    MarketplaceClient,
    NotFoundError,
    ResourceExhaustedError,
    TokenProvider,
    UnavailableError,
    UserInternalClient,
    create_channel,
    service_config,
)


def _rich_abort_metadata(status: status_pb2.Status) -> tuple[tuple[str, bytes], ...]:
    return (("grpc-status-details-bin", status.SerializeToString()),)


class FakeOrders(order_service_pb2_grpc.OrderServiceServicer):
    """Seven orders in pages; the first call of each method after `fail_once` is UNAVAILABLE."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.fail_once: set[str] = set()
        self.keys: list[tuple[str, str]] = []

    async def _maybe_fail(self, name: str, context: grpc.aio.ServicerContext) -> None:  # type: ignore[type-arg]
        self.calls[name] = self.calls.get(name, 0) + 1
        if name in self.fail_once:
            self.fail_once.discard(name)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "briefly down")

    async def ListOrders(
        self,
        request: order_service_pb2.ListOrdersRequest,
        context: grpc.aio.ServicerContext,  # type: ignore[type-arg]
    ) -> order_service_pb2.ListOrdersResponse:
        await self._maybe_fail("ListOrders", context)
        start = int(request.page_token or "0")
        end = min(start + request.page_size, 7)
        return order_service_pb2.ListOrdersResponse(
            orders=[order_pb2.Order(order_id=f"o{i}") for i in range(start, end)],
            next_page_token=str(end) if end < 7 else "",
        )

    async def CancelOrder(
        self,
        request: order_service_pb2.CancelOrderRequest,
        context: grpc.aio.ServicerContext,  # type: ignore[type-arg]
    ) -> order_pb2.Order:
        await self._maybe_fail("CancelOrder", context)
        return order_pb2.Order(order_id=request.order_id)

    async def CreateOrder(
        self,
        request: order_service_pb2.CreateOrderRequest,
        context: grpc.aio.ServicerContext,  # type: ignore[type-arg]
    ) -> order_pb2.Order:
        header = dict(context.invocation_metadata() or ()).get(IDEMPOTENCY_KEY_HEADER, "")
        self.keys.append((request.request_id, str(header)))
        await self._maybe_fail("CreateOrder", context)
        if not request.items:
            status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="no items")
            info = error_details_pb2.ErrorInfo(
                reason="EMPTY_ORDER", domain="order.marketplace", metadata={"max": "50"}
            )
            bad = error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field="items", description="at least one item", reason="REQUIRED"
                    )
                ]
            )
            status.details.add().Pack(info)
            status.details.add().Pack(bad)
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "no items", _rich_abort_metadata(status)
            )
        return order_pb2.Order(order_id="new")


class FakeUsers(user_service_pb2_grpc.UserServiceServicer):
    """Sign-in with tokens that say they last 100 seconds; counts every call."""

    def __init__(self) -> None:
        self.logins = 0
        self.refreshes = 0
        self.refresh_broken = False

    async def Login(
        self,
        request: user_service_pb2.LoginRequest,
        context: grpc.aio.ServicerContext,  # type: ignore[type-arg]
    ) -> user_service_pb2.LoginResponse:
        if request.password != "right":
            status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message="slow down")
            status.details.add().Pack(
                error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=30))
            )
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED, "slow down", _rich_abort_metadata(status)
            )
        self.logins += 1
        return user_service_pb2.LoginResponse(
            access_token=f"login-{self.logins}", refresh_token="r", expires_in=100
        )

    async def RefreshToken(
        self,
        request: user_service_pb2.RefreshTokenRequest,
        context: grpc.aio.ServicerContext,  # type: ignore[type-arg]
    ) -> user_service_pb2.RefreshTokenResponse:
        if self.refresh_broken:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, "session ended")
        self.refreshes += 1
        return user_service_pb2.RefreshTokenResponse(
            access_token=f"refresh-{self.refreshes}", refresh_token="r", expires_in=100
        )

    async def GetUser(
        self,
        request: user_service_pb2.GetUserRequest,
        context: grpc.aio.ServicerContext,  # type: ignore[type-arg]
    ) -> user_pb2.User:
        auth = dict(context.invocation_metadata() or ()).get("authorization", "")
        return user_pb2.User(user_id=request.user_id, display_name=str(auth))


@pytest.fixture()
async def servers() -> AsyncIterator[tuple[str, FakeUsers, FakeOrders]]:
    server = grpc.aio.server()
    users, orders = FakeUsers(), FakeOrders()
    user_service_pb2_grpc.add_UserServiceServicer_to_server(users, server)
    order_service_pb2_grpc.add_OrderServiceServicer_to_server(orders, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}", users, orders
    await server.stop(None)


def test_service_config_retries_only_reads_and_keyed_writes() -> None:
    config = service_config()
    retried = {
        (name["service"], name.get("method", "*"))
        for entry in config["methodConfig"]
        if "retryPolicy" in entry
        for name in entry["name"]
    }
    order = "marketplace.order.v1.OrderService"
    assert (order, "ListOrders") in retried
    assert (order, "CreateOrder") in retried
    assert (order, "RefundOrder") in retried
    assert (order, "CancelOrder") not in retried
    assert (order, "*") not in retried
    assert all("timeout" in entry for entry in config["methodConfig"])
    json.dumps(config)


async def test_reads_are_retried_and_cancel_is_not(
    servers: tuple[str, FakeUsers, FakeOrders],
) -> None:
    target, _, orders = servers
    async with MarketplaceClient.connect(target, plaintext=True) as client:
        orders.fail_once = {"ListOrders", "CancelOrder"}
        listed = [o.order_id async for o in client.list_orders(page_size=3)]
        assert listed == [f"o{i}" for i in range(7)]
        # Three pages, the first one tried twice.
        assert orders.calls["ListOrders"] == 4
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await client.orders.CancelOrder(order_service_pb2.CancelOrderRequest(order_id="o1"))
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE
        assert orders.calls["CancelOrder"] == 1


async def test_create_order_sends_one_key_in_field_and_metadata_across_retries(
    servers: tuple[str, FakeUsers, FakeOrders],
) -> None:
    target, _, orders = servers
    async with MarketplaceClient.connect(target, plaintext=True) as client:
        orders.fail_once = {"CreateOrder"}
        await client.create_order([("p1", 1)], payment_method_token="tok_visa")
        await client.create_order([("p1", 1)], payment_method_token="tok_visa")
    # The retried first call (two attempts) carries one key; the second call a new one.
    assert len(orders.keys) == 3
    assert orders.keys[0] == orders.keys[1]
    assert orders.keys[0][0] == orders.keys[0][1] != ""
    assert orders.keys[2][0] != orders.keys[0][0]


async def test_error_details_become_typed_exceptions(
    servers: tuple[str, FakeUsers, FakeOrders],
) -> None:
    target, _, _ = servers
    async with MarketplaceClient.connect(target, plaintext=True) as client:
        with pytest.raises(InvalidArgumentError) as raised:
            await client.create_order([], payment_method_token="tok_visa")
    error = raised.value
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert (error.reason, error.domain, error.metadata) == (
        "EMPTY_ORDER",
        "order.marketplace",
        {"max": "50"},
    )
    assert [(v.field, v.reason) for v in error.field_violations] == [("items", "REQUIRED")]
    assert str(error) == "INVALID_ARGUMENT EMPTY_ORDER: no items"


async def test_token_provider_signs_in_refreshes_before_expiry_and_recovers(
    servers: tuple[str, FakeUsers, FakeOrders],
) -> None:
    target, users, _ = servers
    now = [1000.0]
    channel = create_channel(target, plaintext=True)
    try:
        tokens = TokenProvider(channel, "a@example.org", "right", clock=lambda: now[0])
        assert await tokens.token() == "login-1"
        now[0] += 30
        assert await tokens.token() == "login-1"
        # Inside the 60-second margin before expiry: rotated, not signed in again.
        now[0] += 20
        assert await tokens.token() == "refresh-1"
        assert await tokens.metadata() == (("authorization", "Bearer refresh-1"),)
        users.refresh_broken = True
        now[0] += 100
        assert await tokens.token() == "login-2"
        assert (users.logins, users.refreshes) == (2, 1)
    finally:
        await channel.close()


async def test_wrong_password_carries_retry_info(
    servers: tuple[str, FakeUsers, FakeOrders],
) -> None:
    target, _, _ = servers
    async with MarketplaceClient.connect(
        target, plaintext=True, email="a@example.org", password="wrong"
    ) as client:
        with pytest.raises(ResourceExhaustedError) as raised:
            await client.me()
    assert raised.value.retry_delay == 30.0


async def test_signed_in_calls_carry_the_bearer_token(
    servers: tuple[str, FakeUsers, FakeOrders],
) -> None:
    target, _, _ = servers
    async with MarketplaceClient.connect(
        target, plaintext=True, email="a@example.org", password="right"
    ) as client:
        me = await client.me()
    assert me.display_name == "Bearer login-1"


async def test_an_unreachable_server_is_unavailable() -> None:
    async with MarketplaceClient.connect("127.0.0.1:1", plaintext=True) as client:
        with pytest.raises(UnavailableError):
            await client.get_order("o1")


class FakeInternalUsers(user_service_pb2_grpc.UserInternalServiceServicer):
    """Refuses unknown users with the user service's reason; echoes the call's metadata."""

    async def GetShippingAddress(
        self,
        request: user_service_pb2.GetShippingAddressRequest,
        context: grpc.aio.ServicerContext,  # type: ignore[type-arg]
    ) -> user_service_pb2.GetShippingAddressResponse:
        if request.user_id != "u1":
            status = status_pb2.Status(code=code_pb2.NOT_FOUND, message="no such user")
            status.details.add().Pack(
                error_details_pb2.ErrorInfo(reason="USER_NOT_FOUND", domain="user.marketplace")
            )
            await context.abort(
                grpc.StatusCode.NOT_FOUND, "no such user", _rich_abort_metadata(status)
            )
        secret = dict(context.invocation_metadata() or ()).get("x-internal-token", "")
        return user_service_pb2.GetShippingAddressResponse(
            address=user_pb2.Address(address_id=request.address_id, line1=str(secret))
        )


def test_service_config_gives_the_internal_methods_a_deadline_and_retries() -> None:
    internal_timeout = 1.5
    config = service_config(internal_timeout=internal_timeout)
    entries = {
        (name["service"], name.get("method", "*")): entry
        for entry in config["methodConfig"]
        for name in entry["name"]
    }
    for service, method in (
        ("marketplace.user.v1.UserInternalService", "GetShippingAddress"),
        ("marketplace.product.v1.ProductInternalService", "ReserveInventory"),
        ("marketplace.product.v1.ProductInternalService", "ReleaseReservation"),
    ):
        entry = entries[service, method]
        assert entry["timeout"] == f"{internal_timeout}s"
        assert entry["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]


async def test_an_internal_client_on_a_channel_it_did_not_make_decodes_refusals() -> None:
    server = grpc.aio.server()
    user_service_pb2_grpc.add_UserInternalServiceServicer_to_server(FakeInternalUsers(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            users = UserInternalClient(channel, metadata=(("x-internal-token", "s3cret"),))
            address = await users.get_shipping_address("u1", "a1")
            assert (address.address_id, address.line1) == ("a1", "s3cret")
            with pytest.raises(NotFoundError) as refused:
                await users.get_shipping_address("u2")
            assert refused.value.reason == "USER_NOT_FOUND"

            # A client built over the caller's channel leaves it open when it closes.
            client = MarketplaceClient.over(channel)
            await client.close()
            assert channel.get_state() is not grpc.ChannelConnectivity.SHUTDOWN
            assert (await users.get_shipping_address("u1")).line1 == "s3cret"
    finally:
        await server.stop(None)
