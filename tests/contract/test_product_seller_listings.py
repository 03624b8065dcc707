"""A seller's own listings over real gRPC and the MongoDB wire server: drafts included."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import pytest_asyncio
from marketplace.product.v1 import product_pb2, product_service_pb2

from services.common.identity import Role
from services.product.config import Settings
from tests.support.failures import failure_of, violated_fields
from tests.support.product import (
    ServedProduct,
    as_seller,
    create,
    product_settings,
    product_stub,
    serve_product,
)
from tests.support.servers import Backends
from tests.support.tokens import TestTokens, bearer

pytestmark = pytest.mark.asyncio(loop_scope="session")

if TYPE_CHECKING:
    from tests.support.product import ProductStub


@pytest.fixture(scope="module")
def settings(backends: Backends) -> Settings:
    return product_settings(backends, "products_mine", internal_secret="product-mine-secret")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def served(settings: Settings, tokens: TestTokens) -> AsyncIterator[ServedProduct]:
    async with serve_product(settings, tokens) as running:
        yield running


@pytest.fixture
def stub(served: ServedProduct) -> ProductStub:
    return product_stub(served[0])


def request(seller_id: str = "me", **fields: Any) -> Any:
    return product_service_pb2.ListSellerProductsRequest(seller_id=seller_id, **fields)


async def test_a_seller_pages_through_their_own_products_in_every_state(
    stub: ProductStub, tokens: TestTokens
) -> None:
    seller = str(uuid.uuid4())
    mine = as_seller(tokens, seller)
    draft = await create(stub, tokens, seller_id=seller, publish=False)
    published = await create(stub, tokens, seller_id=seller, initial_stock=1)
    hidden = await create(stub, tokens, seller_id=seller)
    await stub.UnpublishProduct(
        product_service_pb2.UnpublishProductRequest(product_id=hidden.product_id), metadata=mine
    )
    await create(stub, tokens)  # another seller's

    first = await stub.ListSellerProducts(request(page_size=2), metadata=mine)
    rest = await stub.ListSellerProducts(
        request(page_size=2, page_token=first.next_page_token), metadata=mine
    )
    assert [p.product_id for p in [*first.products, *rest.products]] == [
        hidden.product_id,
        published.product_id,
        draft.product_id,
    ]
    assert rest.next_page_token == ""
    assert [p.state for p in first.products] == [
        product_pb2.PRODUCT_STATE_UNPUBLISHED,
        product_pb2.PRODUCT_STATE_PUBLISHED,
    ]

    drafts = await stub.ListSellerProducts(
        request(states=[product_pb2.PRODUCT_STATE_DRAFT]), metadata=mine
    )
    assert [p.product_id for p in drafts.products] == [draft.product_id]
    low = await stub.ListSellerProducts(request(max_available=1), metadata=mine)
    assert [p.product_id for p in low.products] == [published.product_id]

    admin = bearer(tokens.mint(roles=(Role.ADMIN,)))
    as_admin = await stub.ListSellerProducts(request(seller), metadata=admin)
    assert len(as_admin.products) == 3


async def test_listing_another_sellers_products_or_bad_paging_is_refused(
    stub: ProductStub, tokens: TestTokens
) -> None:
    seller = str(uuid.uuid4())
    await create(stub, tokens, seller_id=seller, publish=False)
    other = as_seller(tokens, str(uuid.uuid4()))
    refused = await failure_of(stub.ListSellerProducts(request(seller), metadata=other))
    assert (refused.code, refused.reason) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "NOT_PRODUCT_OWNER",
    )
    customer = bearer(tokens.mint(roles=(Role.CUSTOMER,)))
    refused = await failure_of(stub.ListSellerProducts(request(), metadata=customer))
    assert refused.code == grpc.StatusCode.PERMISSION_DENIED
    refused = await failure_of(stub.ListSellerProducts(request()))
    assert refused.code == grpc.StatusCode.UNAUTHENTICATED

    mine = as_seller(tokens, seller)
    bad = await failure_of(
        stub.ListSellerProducts(request(page_size=-1, states=[7]), metadata=mine)
    )
    assert bad.code == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(violated_fields(bad)) == ["page_size", "states[0]"]
    bad = await failure_of(stub.ListSellerProducts(request(page_token="forged"), metadata=mine))
    assert violated_fields(bad) == ["page_token"]
    clamped = await stub.ListSellerProducts(request(page_size=100_000), metadata=mine)
    assert len(clamped.products) == 1
