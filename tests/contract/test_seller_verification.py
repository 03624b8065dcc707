"""Selling needs a verified email: creating and publishing listings check the token's claim."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import pytest_asyncio
from google.type import money_pb2
from marketplace.product.v1 import product_pb2, product_service_pb2
from pymongo import AsyncMongoClient

from services.common.identity import Role
from services.product.config import Settings
from tests.support.failures import failure_of
from tests.support.product import (
    ServedProduct,
    create_categories,
    product_settings,
    product_stub,
    serve_product,
)
from tests.support.servers import Backends
from tests.support.tokens import TestTokens, bearer

if TYPE_CHECKING:
    from tests.support.product import ProductStub

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest.fixture(scope="module")
def settings(backends: Backends) -> Settings:
    return product_settings(backends, "products_sellers", internal_secret="sellers-secret")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def served(settings: Settings, tokens: TestTokens) -> AsyncIterator[ServedProduct]:
    async with serve_product(settings, tokens) as running:
        yield running


@pytest.fixture
def stub(served: ServedProduct) -> ProductStub:
    return product_stub(served[0])


@pytest_asyncio.fixture(loop_scope="session")
async def mongo(settings: Settings) -> AsyncIterator[Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(str(settings.mongo_url))
    yield client[settings.mongo_database]
    await client.close()


def seller(tokens: TestTokens, seller_id: str, *, verified: bool) -> Any:
    return bearer(tokens.mint(seller_id, roles=(Role.SELLER,), email_verified=verified))


def listing() -> product_pb2.Product:
    return product_pb2.Product(
        title=f"Walnut desk lamp {uuid.uuid4().hex[:8]}",
        description="A lamp.",
        category="lighting",
        list_price=money_pb2.Money(currency_code="USD", units=40),
        initial_stock=3,
    )


async def test_unverified_seller_cannot_create_a_listing(
    stub: ProductStub, tokens: TestTokens, mongo: Any
) -> None:
    await create_categories(stub, tokens, {"lighting": []})
    seller_id = str(uuid.uuid4())
    for publish in (True, False):
        refusal = await failure_of(
            stub.CreateProduct(
                product_service_pb2.CreateProductRequest(product=listing(), publish=publish),
                metadata=seller(tokens, seller_id, verified=False),
            )
        )
        assert (refusal.code, refusal.reason) == (
            grpc.StatusCode.PERMISSION_DENIED,
            "EMAIL_NOT_VERIFIED",
        )
    assert await mongo.products.count_documents({"seller_id": seller_id}) == 0


async def test_unverified_seller_cannot_publish_but_can_take_a_listing_down(
    stub: ProductStub, tokens: TestTokens
) -> None:
    await create_categories(stub, tokens, {"lighting": []})
    seller_id = str(uuid.uuid4())
    draft = await stub.CreateProduct(
        product_service_pb2.CreateProductRequest(product=listing(), publish=False),
        metadata=seller(tokens, seller_id, verified=True),
    )
    # The seller's address stopped being verified (a changed email, say): tokens say so.
    unverified = seller(tokens, seller_id, verified=False)
    refusal = await failure_of(
        stub.PublishProduct(
            product_service_pb2.PublishProductRequest(product_id=draft.product_id),
            metadata=unverified,
        )
    )
    assert (refusal.code, refusal.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "EMAIL_NOT_VERIFIED",
    )
    read = await stub.GetProduct(
        product_service_pb2.GetProductRequest(product_id=draft.product_id),
        metadata=seller(tokens, seller_id, verified=True),
    )
    assert read.state == product_pb2.PRODUCT_STATE_DRAFT

    archived = await stub.ArchiveProduct(
        product_service_pb2.ArchiveProductRequest(product_id=draft.product_id),
        metadata=unverified,
    )
    assert archived.state == product_pb2.PRODUCT_STATE_ARCHIVED


async def test_verified_seller_creates_and_publishes(stub: ProductStub, tokens: TestTokens) -> None:
    await create_categories(stub, tokens, {"lighting": []})
    verified = seller(tokens, str(uuid.uuid4()), verified=True)
    draft = await stub.CreateProduct(
        product_service_pb2.CreateProductRequest(product=listing(), publish=False),
        metadata=verified,
    )
    published = await stub.PublishProduct(
        product_service_pb2.PublishProductRequest(product_id=draft.product_id), metadata=verified
    )
    assert published.state == product_pb2.PRODUCT_STATE_PUBLISHED
