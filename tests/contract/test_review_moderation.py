"""An admin's moderation sticks to the author and product: delete and re-post cannot undo it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import pytest_asyncio
from google.type import money_pb2
from marketplace.product.v1 import product_pb2, product_service_pb2

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
    return product_settings(backends, "products_moderation", internal_secret="moderation-secret")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def served(settings: Settings, tokens: TestTokens) -> AsyncIterator[ServedProduct]:
    async with serve_product(settings, tokens) as running:
        yield running


@pytest.fixture
def stub(served: ServedProduct) -> ProductStub:
    return product_stub(served[0])


async def published_product(stub: ProductStub, tokens: TestTokens) -> str:
    await create_categories(stub, tokens, {"lighting": []})
    created = await stub.CreateProduct(
        product_service_pb2.CreateProductRequest(
            product=product_pb2.Product(
                title=f"Brass floor lamp {uuid.uuid4().hex[:8]}",
                category="lighting",
                list_price=money_pb2.Money(currency_code="USD", units=90),
                initial_stock=5,
            ),
            publish=True,
        ),
        metadata=bearer(tokens.mint(roles=(Role.SELLER,))),
    )
    return created.product_id


async def review(stub: ProductStub, product_id: str, author: Any, body: str) -> str:
    created = await stub.CreateReview(
        product_service_pb2.CreateReviewRequest(
            product_id=product_id,
            review=product_pb2.Review(rating=1, title="Scam", body=body),
        ),
        metadata=author,
    )
    return created.review_id


async def visible_bodies(stub: ProductStub, product_id: str) -> list[str]:
    page = await stub.ListReviews(product_service_pb2.ListReviewsRequest(product_id=product_id))
    return [r.body for r in page.reviews]


async def test_hidden_review_does_not_come_back_after_delete_and_repost(
    stub: ProductStub, tokens: TestTokens
) -> None:
    product_id = await published_product(stub, tokens)
    author = bearer(tokens.mint(str(uuid.uuid4())))
    admin = bearer(tokens.mint(roles=(Role.ADMIN,)))
    review_id = await review(stub, product_id, author, "abusive text")
    await stub.HideReview(
        product_service_pb2.HideReviewRequest(
            product_id=product_id, review_id=review_id, reason="abuse"
        ),
        metadata=admin,
    )
    assert await visible_bodies(stub, product_id) == []

    await stub.DeleteReview(
        product_service_pb2.DeleteReviewRequest(product_id=product_id, review_id=review_id),
        metadata=author,
    )
    refusal = await failure_of(review(stub, product_id, author, "abusive text again"))
    assert (refusal.code, refusal.reason) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "REVIEW_MODERATED",
    )
    assert await visible_bodies(stub, product_id) == []
    read = await stub.GetProduct(product_service_pb2.GetProductRequest(product_id=product_id))
    assert read.rating.count == 0


async def test_moderation_binds_only_that_author_and_product(
    stub: ProductStub, tokens: TestTokens
) -> None:
    moderated_product = await published_product(stub, tokens)
    other_product = await published_product(stub, tokens)
    author = bearer(tokens.mint(str(uuid.uuid4())))
    neighbour = bearer(tokens.mint(str(uuid.uuid4())))
    admin = bearer(tokens.mint(roles=(Role.ADMIN,)))
    review_id = await review(stub, moderated_product, author, "abusive text")
    await stub.HideReview(
        product_service_pb2.HideReviewRequest(
            product_id=moderated_product, review_id=review_id, reason="abuse"
        ),
        metadata=admin,
    )
    await review(stub, other_product, author, "a fair review elsewhere")
    await review(stub, moderated_product, neighbour, "a fair review by someone else")
    assert await visible_bodies(stub, other_product) == ["a fair review elsewhere"]
    assert await visible_bodies(stub, moderated_product) == ["a fair review by someone else"]
