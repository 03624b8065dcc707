"""A store outage answers UNAVAILABLE with retry advice, and service resumes when it returns.

Each test owns its PostgreSQL or MongoDB wire server, stalls it (SIGSTOP of every process
of the server) or stops it the hard way, and restarts it on the same port and data.
"""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
import redis.exceptions
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from marketplace.order.v1 import order_service_pb2, order_service_pb2_grpc
from marketplace.product.v1 import product_service_pb2, product_service_pb2_grpc
from marketplace.user.v1 import user_service_pb2, user_service_pb2_grpc
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from services.common.dependencies import Dependency, unavailable_dependency
from services.devmesh import processes
from services.order.app import build_app as order_build_app
from services.order.config import Settings as OrderSettings
from services.user.app import build_app as user_build_app
from tests.support.inprocess import serve_in_process
from tests.support.outages import OwnedServer, owned_mongo, owned_postgres
from tests.support.product import product_settings, serve_product
from tests.support.servers import Backends
from tests.support.tokens import TestTokens, bearer
from tests.support.user import user_settings

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET = "outage-test-internal-secret"
USER_MIGRATIONS = Path("services/user/migrations")
ORDER_MIGRATIONS = Path("services/order/migrations")
# Bounded waits for a pool to reconnect once the store is back.
RECOVERY_ATTEMPTS = 80


@dataclass(frozen=True)
class Outage:
    """What a caller learns from an UNAVAILABLE answer."""

    reason: str
    metadata: dict[str, str]
    retry_seconds: float
    text: str  # everything the caller sees: message and details


def outage(error: grpc.aio.AioRpcError) -> Outage:
    assert error.code() == grpc.StatusCode.UNAVAILABLE, (error.code(), error.details())
    status = rpc_status.from_call(error)
    assert status is not None
    reason, metadata, retry = "", {}, -1.0
    for detail in status.details:
        info, retry_info = error_details_pb2.ErrorInfo(), error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            reason, metadata = info.reason, dict(info.metadata)
        elif detail.Unpack(retry_info):
            retry = retry_info.retry_delay.ToTimedelta().total_seconds()
    return Outage(reason, metadata, retry, f"{error.details()} {status}")


async def expect_outage(call: Callable[[], Awaitable[Any]]) -> Outage:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call()
    return outage(raised.value)


async def until_answered(call: Callable[[], Awaitable[Any]]) -> Any:
    """The first answer that is not UNAVAILABLE, while the pool reconnects."""
    for _ in range(RECOVERY_ATTEMPTS):
        try:
            return await call()
        except grpc.aio.AioRpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE:
                raise
        await asyncio.sleep(0.25)
    return await call()


def assert_names_only_the_kind(seen: Outage, dependency: str, server: OwnedServer) -> None:
    assert seen.reason == "DEPENDENCY_UNAVAILABLE"
    assert seen.metadata == {"dependency": dependency}
    assert seen.retry_seconds > 0
    assert str(server.port) not in seen.text and "127.0.0.1" not in seen.text


async def test_the_user_service_answers_unavailable_while_postgresql_stalls_or_is_down() -> None:
    server, dsn = owned_postgres()
    try:
        url = f"{dsn}/users_outage?sslmode=disable"
        processes.migrate(url, USER_MIGRATIONS)
        settings = user_settings(
            url,
            internal_secret=SECRET,
            shutdown_grace_seconds=0.5,
            db_acquire_timeout_seconds=1,
            db_command_timeout_seconds=1,
        )
        app = lambda: user_build_app(settings, run_email_relay=False)  # noqa: E731
        async with serve_in_process(settings, app) as served:
            stub = user_service_pb2_grpc.UserServiceStub(served.channel)
            name = f"u{uuid.uuid4().hex[:12]}"
            email, password = f"{name}@example.com", "correct horse battery"
            await stub.CreateUser(
                user_service_pb2.CreateUserRequest(
                    email=email, username=name, password=password, display_name="Outage"
                )
            )
            login = await stub.Login(user_service_pb2.LoginRequest(email=email, password=password))

            def get_me() -> Awaitable[Any]:
                return stub.GetUser(
                    user_service_pb2.GetUserRequest(user_id="me"),
                    metadata=bearer(login.access_token),
                    timeout=20,
                )

            assert (await get_me()).email == email

            server.stall()
            try:
                stalled = await expect_outage(get_me)
            finally:
                server.resume()
            assert_names_only_the_kind(stalled, "postgresql", server)
            assert (await until_answered(get_me)).email == email

            server.kill(signal.SIGQUIT)  # PostgreSQL's immediate shutdown
            down = await expect_outage(get_me)
            assert_names_only_the_kind(down, "postgresql", server)
            server.restart()
            assert (await until_answered(get_me)).email == email
    finally:
        server.stop()


async def test_the_order_service_answers_unavailable_on_unary_and_stream_calls_while_postgresql_is_down(
    tokens: TestTokens,
) -> None:
    server, dsn = owned_postgres()
    try:
        url = f"{dsn}/orders_outage?sslmode=disable"
        processes.migrate(url, ORDER_MIGRATIONS)
        settings = OrderSettings(
            database_url=url,
            environment="test",
            grpc_host="127.0.0.1",
            grpc_port=0,
            ops_port=0,
            internal_secret=SECRET,
            shutdown_notice_seconds=0,
            shutdown_grace_seconds=0.5,
            redis_url="redis://127.0.0.1:9/0",  # the relay does not run here
        )
        app = lambda: order_build_app(  # noqa: E731
            settings, key_source=tokens.key_source(), run_background=False
        )
        async with serve_in_process(settings, app) as served:
            stub = order_service_pb2_grpc.OrderServiceStub(served.channel)
            buyer = bearer(tokens.mint())
            order_id = str(uuid.uuid4())

            async def get_order() -> Any:
                return await stub.GetOrder(
                    order_service_pb2.GetOrderRequest(order_id=order_id),
                    metadata=buyer,
                    timeout=20,
                )

            async def watch_order() -> Any:
                call = stub.WatchOrder(
                    order_service_pb2.WatchOrderRequest(order_id=order_id),
                    metadata=buyer,
                    timeout=20,
                )
                return [order async for order in call]

            async def not_found(call: Callable[[], Awaitable[Any]]) -> grpc.StatusCode:
                with pytest.raises(grpc.aio.AioRpcError) as raised:
                    await until_answered(call)
                return raised.value.code()

            assert await not_found(get_order) == grpc.StatusCode.NOT_FOUND

            server.kill(signal.SIGQUIT)
            assert_names_only_the_kind(await expect_outage(get_order), "postgresql", server)
            assert_names_only_the_kind(await expect_outage(watch_order), "postgresql", server)

            server.restart()
            assert await not_found(get_order) == grpc.StatusCode.NOT_FOUND
            assert await not_found(watch_order) == grpc.StatusCode.NOT_FOUND
    finally:
        server.stop()


async def test_the_product_service_answers_unavailable_while_its_mongodb_stalls_or_is_down(
    backends: Backends, tokens: TestTokens
) -> None:
    server, mongo_url = owned_mongo()
    try:
        settings = product_settings(
            backends,
            "products_outage",
            internal_secret=SECRET,
            mongo_url=mongo_url,
            mongo_server_selection_timeout_seconds=1,
            mongo_socket_timeout_seconds=1,
        )
        async with serve_product(settings, tokens) as (served, _workers):
            stub = product_service_pb2_grpc.ProductServiceStub(served.channel)

            def search() -> Awaitable[Any]:
                # A new word each time: the answer cannot come from a cache.
                request = product_service_pb2.SearchProductsRequest(query=uuid.uuid4().hex)
                return stub.SearchProducts(request, timeout=20)

            assert list((await search()).products) == []

            server.stall()
            try:
                stalled = await expect_outage(search)
            finally:
                server.resume()
            assert_names_only_the_kind(stalled, "mongodb", server)
            assert list((await until_answered(search)).products) == []

            server.kill(signal.SIGKILL)
            assert_names_only_the_kind(await expect_outage(search), "mongodb", server)

            server.restart()
            assert list((await until_answered(search)).products) == []
    finally:
        server.stop()


async def test_a_refused_connect_raised_inside_a_driver_is_attributed_to_it() -> None:
    client = Redis(
        host="127.0.0.1", port=9, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    try:
        with pytest.raises(redis.exceptions.ConnectionError) as raised:
            await client.get("anything")
    finally:
        await client.aclose()
    assert unavailable_dependency(raised.value) is Dependency.REDIS
    # ConnectionRefusedError: a plain OSError, told apart only by where it was raised.
    with pytest.raises(OSError) as refused:
        await asyncpg.connect("postgresql://nobody@127.0.0.1:9/none", timeout=0.5)
    assert unavailable_dependency(refused.value) is Dependency.POSTGRESQL
