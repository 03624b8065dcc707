"""Malformed text never reaches a handler: NUL, control characters, invalid UTF-8, huge strings
and tampered page tokens answer INVALID_ARGUMENT with a field violation, in every service."""

from __future__ import annotations

import base64
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
import pytest_asyncio
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from google.rpc import error_details_pb2
from google.type import money_pb2
from grpc_status import rpc_status
from marketplace.order.v1 import (
    cart_service_pb2,
    order_internal_service_pb2,
    order_service_pb2,
    payout_service_pb2,
    pricing_service_pb2,
    return_service_pb2,
)
from marketplace.product.v1 import product_pb2, product_service_pb2, product_service_pb2_grpc
from marketplace.user.v1 import user_service_pb2
from pymongo import AsyncMongoClient

from services.common.access import contract_callers
from services.common.identity import Role
from services.order.app import build_app as order_build_app
from services.order.config import Settings as OrderSettings
from services.product.app import build_app as product_build_app
from services.user.app import build_app as user_build_app
from tests.support import user as user_support
from tests.support.inprocess import (
    INTERNAL_CALLER,
    InProcessService,
    mesh_channel,
    serve_in_process,
)
from tests.support.product import create_categories, product_settings
from tests.support.servers import Backends
from tests.support.tokens import TestTokens, bearer

pytestmark = pytest.mark.asyncio(loop_scope="session")

SECRET = "input-hardening-internal-secret"
POISONS = {"NUL": "a\x00b", "escape": "a\x1b[2Jb", "bell": "a\x07b"}


@dataclass
class Mesh:
    """The three services in-process, each on its own real database."""

    user: InProcessService
    product: InProcessService
    order: InProcessService
    users_db: asyncpg.Connection[asyncpg.Record]
    orders_db: asyncpg.Connection[asyncpg.Record]
    products_db: Any
    callers: dict[tuple[str, str], grpc.aio.Channel] = dataclasses.field(default_factory=dict)

    def channel_as(self, served: InProcessService, identity: str) -> grpc.aio.Channel:
        """A channel to `served` presenting `identity`'s mesh certificate, made once."""
        key = (served.target, identity)
        if key not in self.callers:
            self.callers[key] = mesh_channel(served.target, identity)
        return self.callers[key]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def mesh(backends: Backends, tokens: TestTokens) -> AsyncIterator[Mesh]:
    common: dict[str, Any] = {
        "environment": "test",
        "grpc_host": "127.0.0.1",
        "grpc_port": 0,
        "ops_port": 0,
        "internal_secret": SECRET,
        "shutdown_notice_seconds": 0,
        "shutdown_grace_seconds": 1,
    }
    users_url = backends.database_url("users_hardening", Path("services/user/migrations"))
    orders_url = backends.database_url("orders_hardening", Path("services/order/migrations"))
    user_settings = user_support.user_settings(users_url, **common)
    product_config = product_settings(
        backends, "products_hardening", internal_secret=SECRET, shutdown_grace_seconds=1
    )
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(backends.mongo_url)
    users_db = await asyncpg.connect(users_url)
    orders_db = await asyncpg.connect(orders_url)
    try:
        async with (
            serve_in_process(
                user_settings,
                lambda: user_build_app(user_settings, key_source=tokens.key_source()),
            ) as user,
            serve_in_process(
                product_config,
                lambda: product_build_app(product_config, key_source=tokens.key_source()),
            ) as product,
        ):
            order_settings = OrderSettings(
                database_url=orders_url,
                redis_url=backends.redis_url,
                events_stream=f"test.order.events.{uuid.uuid4().hex[:8]}",
                product_target=product.target,
                user_target=user.target,
                **common,
            )
            async with serve_in_process(
                order_settings,
                lambda: order_build_app(
                    order_settings, key_source=tokens.key_source(), run_background=False
                ),
            ) as order:
                running = Mesh(
                    user,
                    product,
                    order,
                    users_db,
                    orders_db,
                    mongo[product_config.mongo_database],
                )
                try:
                    yield running
                finally:
                    for channel in running.callers.values():
                        await channel.close()
    finally:
        await users_db.close()
        await orders_db.close()
        await mongo.close()


def everyone(tokens: TestTokens) -> tuple[tuple[str, str], ...]:
    """A verified admin, seller and customer (the calls go on the channels that present the
    order service's certificate, so internal RPCs are reached too)."""
    token = tokens.mint(roles=(Role.CUSTOMER, Role.SELLER, Role.ADMIN))
    return bearer(token)


def services() -> Iterator[tuple[str, Any]]:
    for name, modules in (
        ("user", (user_service_pb2,)),
        ("product", (product_service_pb2,)),
        (
            "order",
            (
                order_service_pb2,
                cart_service_pb2,
                return_service_pb2,
                payout_service_pb2,
                pricing_service_pb2,
                order_internal_service_pb2,
            ),
        ),
    ):
        for module in modules:
            for service in module.DESCRIPTOR.services_by_name.values():
                yield name, service


def channel_for(mesh: Mesh, name: str, service: Any, method: MethodDescriptor) -> grpc.aio.Channel:
    """The channel to call `method` on: an internal RPC is called as a service its contract
    admits (the order service's channel when it is one of them), anything else as usual."""
    served: InProcessService = getattr(mesh, name)
    callers = contract_callers([service.full_name]).get(f"/{service.full_name}/{method.name}")
    if not callers or INTERNAL_CALLER in callers:
        return served.internal_channel
    return mesh.channel_as(served, min(callers))


def string_paths(descriptor: Descriptor, prefix: str = "", depth: int = 0) -> Iterator[str]:
    """Paths of every string field a request can carry (nested messages two levels deep)."""
    for field in descriptor.fields:
        path = f"{prefix}{field.name}"
        if field.is_repeated:
            path += "[0]"
        if field.type == FieldDescriptor.TYPE_STRING:
            yield path
        elif (
            field.type == FieldDescriptor.TYPE_MESSAGE
            and field.message_type is not None
            and depth < 2
            and not field.message_type.GetOptions().map_entry
        ):
            yield from string_paths(field.message_type, f"{path}.", depth + 1)


def poisoned(descriptor: Descriptor, path: str, value: str) -> Message:
    """A request of this type whose field at `path` holds `value`, other fields empty."""
    request = GetMessageClass(descriptor)()
    target: Any = request
    parts = path.split(".")
    for part in parts[:-1]:
        name, repeated = part.removesuffix("[0]"), part.endswith("[0]")
        target = getattr(target, name).add() if repeated else getattr(target, name)
    last = parts[-1]
    if last.endswith("[0]"):
        getattr(target, last.removesuffix("[0]")).append(value)
    else:
        setattr(target, last, value)
    return request


def violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)
    found: dict[str, str] = {}
    for detail in status.details if status else ():
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found.update({v.field: v.description for v in bad.field_violations})
    return found


def raw(data: bytes) -> bytes:
    return data


async def call(
    channel: grpc.aio.Channel, service: Any, method: MethodDescriptor, body: bytes, metadata: Any
) -> grpc.aio.AioRpcError | None:
    """Send raw request bytes to a method; the error it answered, or None on success."""
    path = f"/{service.full_name}/{method.name}"
    try:
        if method.server_streaming:
            stream = channel.unary_stream(path, request_serializer=raw, response_deserializer=raw)
            async for _ in stream(body, metadata=metadata, timeout=5):
                pass
        else:
            unary = channel.unary_unary(path, request_serializer=raw, response_deserializer=raw)
            await unary(body, metadata=metadata, timeout=5)
    except grpc.aio.AioRpcError as error:
        return error
    return None


async def state(mesh: Mesh) -> tuple[Any, ...]:
    return (
        await mesh.users_db.fetchval("select count(*) from users"),
        await mesh.users_db.fetchval("select count(*) from sessions"),
        await mesh.orders_db.fetchval("select count(*) from orders"),
        await mesh.products_db.products.count_documents({}),
        await mesh.products_db.reviews.count_documents({}),
        await mesh.products_db.categories.count_documents({}),
    )


@pytest.mark.parametrize("poison", sorted(POISONS))
async def test_every_string_field_of_every_rpc_refuses_control_characters(
    mesh: Mesh, tokens: TestTokens, poison: str
) -> None:
    metadata = everyone(tokens)
    before = await state(mesh)
    checked = 0
    wrong: list[str] = []
    for name, service in services():
        for method in service.methods:
            channel = channel_for(mesh, name, service, method)
            for path in string_paths(method.input_type):
                request = poisoned(method.input_type, path, POISONS[poison])
                error = await call(channel, service, method, request.SerializeToString(), metadata)
                checked += 1
                if (
                    error is None
                    or error.code() != grpc.StatusCode.INVALID_ARGUMENT
                    or path not in violations(error)
                ):
                    answer = "OK" if error is None else f"{error.code().name} {error.details()}"
                    wrong.append(f"{service.name}.{method.name} {path}: {answer}")
    assert checked > 150  # every service's RPCs were reached, nested fields included
    assert wrong == []
    assert await state(mesh) == before


async def test_invalid_utf8_is_a_field_violation_not_an_internal_error(
    mesh: Mesh, tokens: TestTokens
) -> None:
    metadata = everyone(tokens)
    wrong: list[str] = []
    for name, service in services():
        for method in service.methods:
            channel = channel_for(mesh, name, service, method)
            for field in method.input_type.fields:
                if field.type != FieldDescriptor.TYPE_STRING:
                    continue
                # Field key (length-delimited), length 3, then bytes that are not UTF-8.
                body = bytes([field.number << 3 | 2, 3]) + b"a\xffb"
                error = await call(channel, service, method, body, metadata)
                if (
                    error is None
                    or error.code() != grpc.StatusCode.INVALID_ARGUMENT
                    or violations(error).get(field.name) != "must be valid UTF-8 text"
                ):
                    answer = "OK" if error is None else f"{error.code().name} {error.details()}"
                    wrong.append(f"{service.name}.{method.name} {field.name}: {answer}")
    assert wrong == []


async def test_nested_invalid_utf8_names_the_nested_field(mesh: Mesh, tokens: TestTokens) -> None:
    service = product_service_pb2.DESCRIPTOR.services_by_name["ProductService"]
    method = service.methods_by_name["CreateProduct"]
    product_field = method.input_type.fields_by_name["product"]
    assert product_field.message_type is not None
    title = product_field.message_type.fields_by_name["title"]
    inner = bytes([title.number << 3 | 2, 2]) + b"\xc3\x28"
    body = bytes([product_field.number << 3 | 2, len(inner)]) + inner
    error = await call(mesh.product.channel, service, method, body, everyone(tokens))
    assert error is not None and error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(error) == {"product.title": "must be valid UTF-8 text"}
    assert "deserializ" not in (error.details() or "").lower()


async def test_over_long_strings_are_refused(mesh: Mesh, tokens: TestTokens) -> None:
    stub = product_service_pb2_grpc.ProductServiceStub(mesh.product.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SearchProducts(product_service_pb2.SearchProductsRequest(query="x" * 30_000))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "query" in violations(caught.value)


def forged_tokens(real: str) -> list[str]:
    """Tokens a client could craft: garbage, unsigned JSON with huge numbers, a real one
    with its numbers changed but its signature kept, and a real one with a flipped byte."""

    def b64(value: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    huge = {"o": 10**30, "k": [10**30, "x"], "f": "0" * 16, "p": "x", "c": "x", "i": "x"}
    payload, _, signature = real.partition(".")
    position = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    tampered = {key: (10**30 if isinstance(v, int) else v) for key, v in position.items()}
    flipped = ("B" if real[0] != "B" else "C") + real[1:]
    return [
        "!!!",
        "not-a-token",
        b64(huge),
        f"{b64(huge)}.{signature}",
        f"{b64(tampered)}.{signature}",
        flipped,
        "a" * 5000,
    ]


async def test_tampered_search_tokens_are_invalid_argument(mesh: Mesh, tokens: TestTokens) -> None:
    stub = product_service_pb2_grpc.ProductServiceStub(mesh.product.channel)
    await create_categories(stub, tokens, {"lighting": []})
    word = f"zq{uuid.uuid4().hex[:10]}"
    seller = bearer(tokens.mint(roles=(Role.SELLER,)))
    for n in range(3):
        await stub.CreateProduct(
            product_service_pb2.CreateProductRequest(
                product=product_pb2.Product(
                    title=f"Lamp {word} {n}",
                    category="lighting",
                    list_price=money_pb2.Money(currency_code="USD", units=10 + n),
                    initial_stock=1,
                ),
                publish=True,
            ),
            metadata=seller,
        )
    for sort in (
        product_service_pb2.SORT_ORDER_RELEVANCE,
        product_service_pb2.SORT_ORDER_PRICE_ASCENDING,
    ):
        first = await stub.SearchProducts(
            product_service_pb2.SearchProductsRequest(query=word, page_size=1, sort_order=sort)
        )
        assert first.next_page_token
        second = await stub.SearchProducts(
            product_service_pb2.SearchProductsRequest(
                query=word, page_size=1, sort_order=sort, page_token=first.next_page_token
            )
        )
        assert len(second.products) == 1
        for forged in forged_tokens(first.next_page_token):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stub.SearchProducts(
                    product_service_pb2.SearchProductsRequest(
                        query=word, page_size=1, sort_order=sort, page_token=forged
                    )
                )
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, forged
            assert "page_token" in violations(caught.value)


async def test_tampered_list_tokens_are_invalid_argument_in_every_service(
    mesh: Mesh, tokens: TestTokens
) -> None:
    metadata = everyone(tokens)
    product_stub = product_service_pb2_grpc.ProductServiceStub(mesh.product.channel)
    await create_categories(product_stub, tokens, {"lighting": []})
    listed = await product_stub.CreateProduct(
        product_service_pb2.CreateProductRequest(
            product=product_pb2.Product(
                title="Lamp with reviews",
                category="lighting",
                list_price=money_pb2.Money(currency_code="USD", units=10),
                initial_stock=1,
            ),
            publish=True,
        ),
        metadata=bearer(tokens.mint(roles=(Role.SELLER,))),
    )
    unsigned = base64.urlsafe_b64encode(json.dumps({"o": 10**30, "c": "x"}).encode()).decode()
    cases: list[tuple[str, str, str, dict[str, Any]]] = [
        ("user", "UserService", "ListUsers", {}),
        ("order", "OrderService", "ListOrders", {}),
        ("product", "ProductService", "ListReviews", {"product_id": listed.product_id}),
        ("product", "ProductService", "SearchProducts", {}),
    ]
    modules = {"user": user_service_pb2, "product": product_service_pb2, "order": order_service_pb2}
    for name, service_name, method_name, fields in cases:
        service = modules[name].DESCRIPTOR.services_by_name[service_name]
        method = service.methods_by_name[method_name]
        for forged in (
            "!!!",
            unsigned.rstrip("="),
            f"{unsigned.rstrip('=')}.AAAAAAAAAAAAAAAAAAAAAA",
        ):
            request = GetMessageClass(method.input_type)(page_token=forged, **fields)
            error = await call(
                getattr(mesh, name).internal_channel,
                service,
                method,
                request.SerializeToString(),
                metadata,
            )
            assert error is not None, (method_name, forged)
            assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, (method_name, forged)
            assert "page_token" in violations(error), (method_name, forged)


async def test_descriptor_walk_sees_nested_fields() -> None:
    # A guard for the sweep above: it must reach fields inside nested request messages.
    paths = set(
        string_paths(order_service_pb2.DESCRIPTOR.message_types_by_name["CreateOrderRequest"])
    )
    assert "items[0].product_id" in paths
    assert any(p.startswith("shipping_address.") for p in paths)


async def test_names_and_titles_are_single_lines(mesh: Mesh, tokens: TestTokens) -> None:
    stub = product_service_pb2_grpc.ProductServiceStub(mesh.product.channel)
    admin = everyone(tokens)
    await create_categories(stub, tokens, {"lighting": []})
    before = await state(mesh)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateProduct(
            product_service_pb2.CreateProductRequest(
                product=product_pb2.Product(
                    title="Lamp\nFREE SHIPPING",
                    category="lighting",
                    list_price=money_pb2.Money(currency_code="USD", units=10),
                )
            ),
            metadata=admin,
        )
    assert violations(caught.value) == {"product.title": "must be a single line of text"}
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreateCategory(
            product_service_pb2.CreateCategoryRequest(
                category=product_pb2.Category(category_id="lamps", display_name="Lamps\there")
            ),
            metadata=admin,
        )
    assert violations(caught.value) == {"category.display_name": "must be a single line of text"}
    assert await state(mesh) == before
