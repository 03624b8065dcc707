"""Catalog management over real gRPC: edits with masks and etags, lifecycle, categories, discounts."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import pytest_asyncio
from google.protobuf import field_mask_pb2
from marketplace.product.v1 import product_pb2, product_service_pb2

from services.common.identity import Role
from services.product.config import Settings
from tests.support.failures import failure_of, violated_fields
from tests.support.product import (
    ServedProduct,
    as_seller,
    create,
    create_categories,
    discount,
    product,
    product_settings,
    product_stub,
    serve_product,
    stamp,
    usd,
)
from tests.support.servers import Backends
from tests.support.tokens import TestTokens, bearer

pytestmark = pytest.mark.asyncio(loop_scope="session")

if TYPE_CHECKING:
    from tests.support.product import ProductStub


@pytest.fixture(scope="module")
def settings(backends: Backends) -> Settings:
    return product_settings(backends, "products_catalog", internal_secret="product-catalog-secret")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def served(settings: Settings, tokens: TestTokens) -> AsyncIterator[ServedProduct]:
    async with serve_product(settings, tokens) as running:
        yield running


@pytest.fixture
def stub(served: ServedProduct) -> ProductStub:
    return product_stub(served[0])


def mask(*paths: str) -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(paths))


def update(
    product_id: str, etag: str, paths: tuple[str, ...], **fields: Any
) -> product_service_pb2.UpdateProductRequest:
    return product_service_pb2.UpdateProductRequest(
        product=product_pb2.Product(product_id=product_id, etag=etag, **fields),
        update_mask=mask(*paths),
    )


# --- UpdateProduct ---------------------------------------------------------------------------


async def test_update_changes_only_the_masked_fields(stub: ProductStub, tokens: TestTokens) -> None:
    seller = str(uuid.uuid4())
    created = await create(stub, tokens, seller_id=seller)
    updated = await stub.UpdateProduct(
        update(
            created.product_id,
            created.etag,
            ("title", "attributes", "sale_price"),
            title="Merino sweater, navy",
            description="ignored: not in the mask",
            attributes={"colour": product_pb2.AttributeValue(text_value="navy")},
            sale_price=usd(60),
        ),
        metadata=as_seller(tokens, seller),
    )
    assert updated.title == "Merino sweater, navy"
    assert updated.description == created.description
    assert dict(updated.attributes)["colour"].text_value == "navy"
    assert updated.sale_price == usd(60) and updated.effective_price == usd(60)
    assert updated.etag != created.etag
    assert updated.update_time.ToDatetime() >= created.update_time.ToDatetime()


async def test_a_stale_etag_is_aborted_and_changes_nothing(
    stub: ProductStub, tokens: TestTokens
) -> None:
    seller = str(uuid.uuid4())
    metadata = as_seller(tokens, seller)
    created = await create(stub, tokens, seller_id=seller)
    await stub.UpdateProduct(
        update(created.product_id, created.etag, ("title",), title="First editor wins"),
        metadata=metadata,
    )
    result = await failure_of(
        stub.UpdateProduct(
            update(created.product_id, created.etag, ("title",), title="Second editor"),
            metadata=metadata,
        )
    )
    assert result.code == grpc.StatusCode.ABORTED and result.reason == "ETAG_MISMATCH"
    read = await stub.GetProduct(
        product_service_pb2.GetProductRequest(product_id=created.product_id)
    )
    assert read.title == "First editor wins"


async def test_concurrent_editors_of_one_version_cannot_both_win(
    stub: ProductStub, tokens: TestTokens
) -> None:
    seller = str(uuid.uuid4())
    metadata = as_seller(tokens, seller)
    created = await create(stub, tokens, seller_id=seller)
    calls = [
        stub.UpdateProduct(
            update(created.product_id, created.etag, ("title",), title=f"Editor {n}"),
            metadata=metadata,
        )
        for n in range(8)
    ]
    results = await asyncio.gather(*calls, return_exceptions=True)
    winners = [r for r in results if isinstance(r, product_pb2.Product)]
    losers = [r for r in results if isinstance(r, grpc.aio.AioRpcError)]
    assert len(winners) == 1 and len(losers) == 7
    assert all(e.code() == grpc.StatusCode.ABORTED for e in losers)
    read = await stub.GetProduct(
        product_service_pb2.GetProductRequest(product_id=created.product_id)
    )
    assert read.title == winners[0].title and read.etag == winners[0].etag


async def test_update_validates_mask_etag_and_values(stub: ProductStub, tokens: TestTokens) -> None:
    seller = str(uuid.uuid4())
    metadata = as_seller(tokens, seller)
    created = await create(stub, tokens, seller_id=seller)
    cases: list[tuple[product_service_pb2.UpdateProductRequest, str]] = [
        (update(created.product_id, "", ("title",), title="x"), "product.etag"),
        (update(created.product_id, "nonsense", ("title",), title="x"), "product.etag"),
        (update(created.product_id, created.etag, ()), "update_mask"),
        (update(created.product_id, created.etag, ("seller_id",)), "update_mask"),
        (update(created.product_id, created.etag, ("title",), title=" "), "product.title"),
        (
            update(created.product_id, created.etag, ("sale_price",), sale_price=usd(500)),
            "product.sale_price",
        ),
        (
            update(created.product_id, created.etag, ("category",), category="Not A Slug"),
            "product.category",
        ),
    ]
    for request, field in cases:
        result = await failure_of(stub.UpdateProduct(request, metadata=metadata))
        assert result.code == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in violated_fields(result), (field, violated_fields(result))
    read = await stub.GetProduct(
        product_service_pb2.GetProductRequest(product_id=created.product_id)
    )
    assert read.etag == created.etag  # nothing was written


async def test_only_the_seller_or_an_admin_may_change_a_product(
    stub: ProductStub, tokens: TestTokens
) -> None:
    owner = str(uuid.uuid4())
    created = await create(stub, tokens, seller_id=owner)
    other_seller = as_seller(tokens, str(uuid.uuid4()))
    request = update(created.product_id, created.etag, ("title",), title="Hijacked")
    result = await failure_of(stub.UpdateProduct(request, metadata=other_seller))
    assert result.code == grpc.StatusCode.PERMISSION_DENIED and result.reason == "NOT_PRODUCT_OWNER"
    customer = bearer(tokens.mint(roles=(Role.CUSTOMER,)))
    result = await failure_of(stub.UpdateProduct(request, metadata=customer))
    assert result.code == grpc.StatusCode.PERMISSION_DENIED
    result = await failure_of(stub.UpdateProduct(request))
    assert result.code == grpc.StatusCode.UNAUTHENTICATED
    for call in (stub.ArchiveProduct, stub.UnpublishProduct):
        denied = await failure_of(
            call(
                product_service_pb2.ArchiveProductRequest(product_id=created.product_id),  # type: ignore[arg-type]
                metadata=other_seller,
            )
        )
        assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    # Another seller's draft is not even visible: NOT_FOUND rather than a hint it exists.
    draft = await create(stub, tokens, seller_id=owner, publish=False)
    hidden = await failure_of(
        stub.PublishProduct(
            product_service_pb2.PublishProductRequest(product_id=draft.product_id),
            metadata=other_seller,
        )
    )
    assert hidden.code == grpc.StatusCode.NOT_FOUND
    admin = bearer(tokens.mint(roles=(Role.ADMIN,)))
    by_admin = await stub.UpdateProduct(request, metadata=admin)
    assert by_admin.title == "Hijacked" and by_admin.seller_id == owner


# --- Lifecycle -------------------------------------------------------------------------------


async def test_publish_unpublish_archive_follow_the_lifecycle(
    stub: ProductStub, tokens: TestTokens
) -> None:
    seller = str(uuid.uuid4())
    metadata = as_seller(tokens, seller)
    draft = await create(stub, tokens, seller_id=seller, publish=False)
    get = product_service_pb2.GetProductRequest(product_id=draft.product_id)
    assert (await failure_of(stub.GetProduct(get))).code == grpc.StatusCode.NOT_FOUND

    bad_unpublish = await failure_of(
        stub.UnpublishProduct(
            product_service_pb2.UnpublishProductRequest(product_id=draft.product_id),
            metadata=metadata,
        )
    )
    assert bad_unpublish.code == grpc.StatusCode.FAILED_PRECONDITION

    published = await stub.PublishProduct(
        product_service_pb2.PublishProductRequest(product_id=draft.product_id), metadata=metadata
    )
    assert published.state == product_pb2.PRODUCT_STATE_PUBLISHED
    again = await stub.PublishProduct(
        product_service_pb2.PublishProductRequest(product_id=draft.product_id), metadata=metadata
    )
    assert again.etag == published.etag  # a repeated call changes nothing
    assert (await stub.GetProduct(get)).state == product_pb2.PRODUCT_STATE_PUBLISHED

    unpublished = await stub.UnpublishProduct(
        product_service_pb2.UnpublishProductRequest(product_id=draft.product_id),
        metadata=metadata,
    )
    assert unpublished.state == product_pb2.PRODUCT_STATE_UNPUBLISHED
    assert (await failure_of(stub.GetProduct(get))).code == grpc.StatusCode.NOT_FOUND

    archived = await stub.ArchiveProduct(
        product_service_pb2.ArchiveProductRequest(product_id=draft.product_id), metadata=metadata
    )
    assert archived.state == product_pb2.PRODUCT_STATE_ARCHIVED
    for refused in (
        stub.PublishProduct(
            product_service_pb2.PublishProductRequest(product_id=draft.product_id),
            metadata=metadata,
        ),
        stub.UpdateProduct(
            update(draft.product_id, archived.etag, ("title",), title="Revived"),
            metadata=metadata,
        ),
    ):
        result = await failure_of(refused)
        assert result.code == grpc.StatusCode.FAILED_PRECONDITION


# --- Categories ------------------------------------------------------------------------------


def category(category_id: str, parent_id: str = "", **fields: Any) -> product_pb2.Category:
    return product_pb2.Category(
        category_id=category_id,
        parent_id=parent_id,
        display_name=fields.pop("display_name", category_id.title()),
        **fields,
    )


async def test_admins_manage_the_category_tree(stub: ProductStub, tokens: TestTokens) -> None:
    admin = bearer(tokens.mint(roles=(Role.ADMIN,)))
    top = f"garden-{uuid.uuid4().hex[:6]}"
    child = f"tools-{uuid.uuid4().hex[:6]}"
    created = await stub.CreateCategory(
        product_service_pb2.CreateCategoryRequest(
            category=category(top, display_name="Garden", attribute_names=["material"])
        ),
        metadata=admin,
    )
    assert created.category_id == top and list(created.attribute_names) == ["material"]
    await stub.CreateCategory(
        product_service_pb2.CreateCategoryRequest(category=category(child, top)), metadata=admin
    )
    duplicate = await failure_of(
        stub.CreateCategory(
            product_service_pb2.CreateCategoryRequest(category=category(top)), metadata=admin
        )
    )
    assert duplicate.code == grpc.StatusCode.ALREADY_EXISTS
    orphan = await failure_of(
        stub.CreateCategory(
            product_service_pb2.CreateCategoryRequest(
                category=category(f"x-{uuid.uuid4().hex[:6]}", "no-such-parent")
            ),
            metadata=admin,
        )
    )
    assert orphan.code == grpc.StatusCode.NOT_FOUND
    too_deep = await failure_of(
        stub.CreateCategory(
            product_service_pb2.CreateCategoryRequest(
                category=category(f"x-{uuid.uuid4().hex[:6]}", child)
            ),
            metadata=admin,
        )
    )
    assert too_deep.code == grpc.StatusCode.FAILED_PRECONDITION

    tree = await stub.ListCategories(product_service_pb2.ListCategoriesRequest())  # public
    ids = [c.category_id for c in tree.categories]
    assert ids.index(top) < ids.index(child)
    children = await stub.ListCategories(product_service_pb2.ListCategoriesRequest(parent_id=top))
    assert [c.category_id for c in children.categories] == [child]

    renamed = await stub.UpdateCategory(
        product_service_pb2.UpdateCategoryRequest(
            category=product_pb2.Category(category_id=top, display_name="Garden & Patio"),
            update_mask=mask("display_name"),
        ),
        metadata=admin,
    )
    assert renamed.display_name == "Garden & Patio" and list(renamed.attribute_names) == [
        "material"
    ]

    has_children = await failure_of(
        stub.DeleteCategory(
            product_service_pb2.DeleteCategoryRequest(category_id=top), metadata=admin
        )
    )
    assert has_children.code == grpc.StatusCode.FAILED_PRECONDITION
    await create(stub, tokens, category=top, subcategory=child)
    in_use = await failure_of(
        stub.DeleteCategory(
            product_service_pb2.DeleteCategoryRequest(category_id=child), metadata=admin
        )
    )
    assert in_use.code == grpc.StatusCode.FAILED_PRECONDITION and in_use.reason == "CATEGORY_IN_USE"
    empty = f"empty-{uuid.uuid4().hex[:6]}"
    await stub.CreateCategory(
        product_service_pb2.CreateCategoryRequest(category=category(empty)), metadata=admin
    )
    await stub.DeleteCategory(
        product_service_pb2.DeleteCategoryRequest(category_id=empty), metadata=admin
    )
    gone = await failure_of(
        stub.DeleteCategory(
            product_service_pb2.DeleteCategoryRequest(category_id=empty), metadata=admin
        )
    )
    assert gone.code == grpc.StatusCode.NOT_FOUND


async def test_categories_are_for_admins_and_validated(
    stub: ProductStub, tokens: TestTokens
) -> None:
    seller = bearer(tokens.mint(roles=(Role.SELLER,)))
    denied = await failure_of(
        stub.CreateCategory(
            product_service_pb2.CreateCategoryRequest(category=category("shoes")), metadata=seller
        )
    )
    assert denied.code == grpc.StatusCode.PERMISSION_DENIED
    admin = bearer(tokens.mint(roles=(Role.ADMIN,)))
    invalid = await failure_of(
        stub.CreateCategory(
            product_service_pb2.CreateCategoryRequest(
                category=product_pb2.Category(
                    category_id="Bad Slug", display_name="", attribute_names=["Not ok"]
                )
            ),
            metadata=admin,
        )
    )
    assert invalid.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violated_fields(invalid)) >= {
        "category.category_id",
        "category.display_name",
        "category.attribute_names[0]",
    }


# --- Discounts -------------------------------------------------------------------------------


async def test_discounts_set_the_effective_price_in_every_read(
    stub: ProductStub, tokens: TestTokens
) -> None:
    seller = str(uuid.uuid4())
    metadata = as_seller(tokens, seller)
    created = await create(stub, tokens, seller_id=seller, list_price=usd(100), sale_price=usd(90))
    now = datetime.now(UTC)
    percent = await stub.CreateDiscount(
        product_service_pb2.CreateDiscountRequest(
            product_id=created.product_id,
            discount=discount(now - timedelta(hours=1), now + timedelta(days=1), percent=25),
        ),
        metadata=metadata,
    )
    assert percent.discount_id and percent.percent_off == 25
    # A bigger fixed discount that has not started yet does not apply.
    await stub.CreateDiscount(
        product_service_pb2.CreateDiscountRequest(
            product_id=created.product_id,
            discount=discount(now + timedelta(days=2), now + timedelta(days=3), amount=usd(80)),
        ),
        metadata=metadata,
    )
    read = await stub.GetProduct(
        product_service_pb2.GetProductRequest(product_id=created.product_id)
    )
    assert read.effective_price == usd(67, 50)  # 25% off the 90.00 sale price
    assert len(read.discounts) == 2
    listed = await stub.SearchProducts(
        product_service_pb2.SearchProductsRequest(
            seller_id=seller, min_price_minor=6750, max_price_minor=6750
        )
    )
    assert [p.product_id for p in listed.products] == [created.product_id]

    await stub.DeleteDiscount(
        product_service_pb2.DeleteDiscountRequest(
            product_id=created.product_id, discount_id=percent.discount_id
        ),
        metadata=metadata,
    )
    after = await stub.GetProduct(
        product_service_pb2.GetProductRequest(product_id=created.product_id)
    )
    assert after.effective_price == usd(90) and len(after.discounts) == 1
    missing = await failure_of(
        stub.DeleteDiscount(
            product_service_pb2.DeleteDiscountRequest(
                product_id=created.product_id, discount_id=percent.discount_id
            ),
            metadata=metadata,
        )
    )
    assert missing.code == grpc.StatusCode.NOT_FOUND


async def test_a_discount_that_starts_later_reaches_search_prices_after_a_sweep(
    stub: ProductStub,
    tokens: TestTokens,
    served: ServedProduct,
) -> None:
    seller = str(uuid.uuid4())
    metadata = as_seller(tokens, seller)
    created = await create(stub, tokens, seller_id=seller, list_price=usd(50))
    now = datetime.now(UTC)
    await stub.CreateDiscount(
        product_service_pb2.CreateDiscountRequest(
            product_id=created.product_id,
            discount=discount(
                now + timedelta(milliseconds=300), now + timedelta(days=1), amount=usd(10)
            ),
        ),
        metadata=metadata,
    )
    search = product_service_pb2.SearchProductsRequest(seller_id=seller, max_price_minor=4000)
    assert (await stub.SearchProducts(search)).total_size == 0
    await asyncio.sleep(0.4)
    read = await stub.GetProduct(
        product_service_pb2.GetProductRequest(product_id=created.product_id)
    )
    assert read.effective_price == usd(40)  # reads price afresh at once
    await served[1].sweeper.run_once()
    assert (await stub.SearchProducts(search)).total_size == 1


async def test_discounts_are_validated_and_owned(stub: ProductStub, tokens: TestTokens) -> None:
    seller = str(uuid.uuid4())
    metadata = as_seller(tokens, seller)
    created = await create(stub, tokens, seller_id=seller, list_price=usd(20))
    now = datetime.now(UTC)
    later = now + timedelta(days=1)
    cases: list[tuple[product_pb2.Discount, str]] = [
        (discount(now, later, percent=95), "discount.percent_off"),
        (discount(later, now, percent=10), "discount.end_time"),
        (product_pb2.Discount(end_time=stamp(later), percent_off=10), "discount.start_time"),
        (discount(now, later), "discount"),
        (discount(now, later, amount=usd(25)), "discount.amount_off"),
    ]
    for message, field in cases:
        result = await failure_of(
            stub.CreateDiscount(
                product_service_pb2.CreateDiscountRequest(
                    product_id=created.product_id, discount=message
                ),
                metadata=metadata,
            )
        )
        assert result.code == grpc.StatusCode.INVALID_ARGUMENT, field
        assert field in violated_fields(result), (field, violated_fields(result))
    other = await failure_of(
        stub.CreateDiscount(
            product_service_pb2.CreateDiscountRequest(
                product_id=created.product_id, discount=discount(now, later, percent=10)
            ),
            metadata=as_seller(tokens, str(uuid.uuid4())),
        )
    )
    assert other.code == grpc.StatusCode.PERMISSION_DENIED


async def test_empty_and_malformed_requests_never_answer_internal_errors(
    stub: ProductStub, tokens: TestTokens
) -> None:
    admin = bearer(tokens.mint(roles=(Role.ADMIN,)))
    anyone = bearer(tokens.mint(roles=(Role.CUSTOMER,)))
    long_id = "x" * 500
    calls: list[tuple[str, Any]] = []
    for name, request_type in (
        ("UpdateProduct", product_service_pb2.UpdateProductRequest),
        ("PublishProduct", product_service_pb2.PublishProductRequest),
        ("ArchiveProduct", product_service_pb2.ArchiveProductRequest),
        ("CreateCategory", product_service_pb2.CreateCategoryRequest),
        ("UpdateCategory", product_service_pb2.UpdateCategoryRequest),
        ("DeleteCategory", product_service_pb2.DeleteCategoryRequest),
        ("GetInventory", product_service_pb2.GetInventoryRequest),
        ("AdjustInventory", product_service_pb2.AdjustInventoryRequest),
        ("ListInventoryLedgerEntries", product_service_pb2.ListInventoryLedgerEntriesRequest),
        ("CreateDiscount", product_service_pb2.CreateDiscountRequest),
        ("DeleteDiscount", product_service_pb2.DeleteDiscountRequest),
        ("ListReviews", product_service_pb2.ListReviewsRequest),
        ("CreateReview", product_service_pb2.CreateReviewRequest),
        ("UpdateReview", product_service_pb2.UpdateReviewRequest),
        ("DeleteReview", product_service_pb2.DeleteReviewRequest),
        ("ReplyToReview", product_service_pb2.ReplyToReviewRequest),
        ("HideReview", product_service_pb2.HideReviewRequest),
        ("ListRecommendations", product_service_pb2.ListRecommendationsRequest),
    ):
        calls.append((name, request_type()))
    calls += [
        ("GetInventory", product_service_pb2.GetInventoryRequest(product_id=long_id)),
        ("ListReviews", product_service_pb2.ListReviewsRequest(product_id="p", page_size=-1)),
        (
            "ListReviews",
            product_service_pb2.ListReviewsRequest(product_id="p", page_token="%%%"),
        ),
        (
            "ListRecommendations",
            product_service_pb2.ListRecommendationsRequest(product_id="p", kind=99),  # type: ignore[arg-type]
        ),
        (
            "ListInventoryLedgerEntries",
            product_service_pb2.ListInventoryLedgerEntriesRequest(
                product_id="p", page_token="eyJvIjotMX0"
            ),
        ),
        (
            "SearchProducts",
            product_service_pb2.SearchProductsRequest(
                sort_order=product_service_pb2.SORT_ORDER_PRICE_ASCENDING,
                page_token="eyJmIjoieCIsImsiOlsieCJdfQ",
            ),
        ),
    ]
    allowed = {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.FAILED_PRECONDITION,
    }
    for metadata in (admin, anyone):
        for name, request in calls:
            result = await failure_of(getattr(stub, name)(request, metadata=metadata))
            assert result.code in allowed, (name, request, result.code)


# --- Products name categories of the tree ----------------------------------------------------


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def new_tree(stub: ProductStub, tokens: TestTokens) -> tuple[str, str, str, str]:
    """Two top-level categories with one child each: (parent, child, other, other's child)."""
    parent, child, other, other_child = (unique(p) for p in ("home", "lamps", "garden", "hoses"))
    await create_categories(stub, tokens, {parent: [child], other: [other_child]})
    return parent, child, other, other_child


async def refused_listing(
    stub: ProductStub, tokens: TestTokens, category: str, subcategory: str = ""
) -> list[str]:
    """The violated fields of a seller's listing naming these categories; it is not written."""
    seller = str(uuid.uuid4())
    result = await failure_of(
        stub.CreateProduct(
            product_service_pb2.CreateProductRequest(
                product=product(category=category, subcategory=subcategory), publish=True
            ),
            metadata=as_seller(tokens, seller),
        )
    )
    assert result.code == grpc.StatusCode.INVALID_ARGUMENT
    listed = await stub.SearchProducts(product_service_pb2.SearchProductsRequest(seller_id=seller))
    assert list(listed.products) == []
    return violated_fields(result)


async def test_a_product_of_an_unknown_category_is_refused(
    stub: ProductStub, tokens: TestTokens
) -> None:
    parent, child, _, _ = await new_tree(stub, tokens)
    assert await refused_listing(stub, tokens, unique("nowhere")) == ["product.category"]
    assert await refused_listing(stub, tokens, unique("nowhere"), child) == ["product.category"]
    # A subcategory is not a top-level category.
    assert await refused_listing(stub, tokens, child) == ["product.category"]
    assert await refused_listing(stub, tokens, parent, unique("nowhere")) == ["product.subcategory"]
    # Once an admin deletes an unused category, nothing can be listed in it.
    empty = unique("empty")
    await create_categories(stub, tokens, {empty: []})
    await stub.DeleteCategory(
        product_service_pb2.DeleteCategoryRequest(category_id=empty),
        metadata=bearer(tokens.mint(roles=(Role.ADMIN,))),
    )
    assert await refused_listing(stub, tokens, empty) == ["product.category"]


async def test_a_subcategory_of_another_parent_is_refused(
    stub: ProductStub, tokens: TestTokens
) -> None:
    parent, _, _, other_child = await new_tree(stub, tokens)
    seller = str(uuid.uuid4())
    error = await failure_of(
        stub.CreateProduct(
            product_service_pb2.CreateProductRequest(
                product=product(category=parent, subcategory=other_child)
            ),
            metadata=as_seller(tokens, seller),
        )
    )
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert violated_fields(error) == ["product.subcategory"]


async def test_a_category_and_its_own_subcategory_are_accepted(
    stub: ProductStub, tokens: TestTokens
) -> None:
    parent, child, _, _ = await new_tree(stub, tokens)
    seller = as_seller(tokens, str(uuid.uuid4()))
    paired = await stub.CreateProduct(
        product_service_pb2.CreateProductRequest(
            product=product(category=parent, subcategory=child), publish=True
        ),
        metadata=seller,
    )
    assert (paired.category, paired.subcategory) == (parent, child)
    alone = await stub.CreateProduct(
        product_service_pb2.CreateProductRequest(product=product(category=parent)),
        metadata=seller,
    )
    assert (alone.category, alone.subcategory) == (parent, "")
    found = await stub.SearchProducts(
        product_service_pb2.SearchProductsRequest(category=parent, subcategory=child)
    )
    assert [p.product_id for p in found.products] == [paired.product_id]


async def test_an_update_to_an_unknown_category_is_refused_and_changes_nothing(
    stub: ProductStub, tokens: TestTokens
) -> None:
    parent, child, other, other_child = await new_tree(stub, tokens)
    seller = str(uuid.uuid4())
    created = await create(stub, tokens, seller_id=seller, category=parent, subcategory=child)
    metadata = as_seller(tokens, seller)
    attempts: list[tuple[tuple[str, ...], dict[str, str], str]] = [
        (("category",), {"category": unique("nowhere")}, "product.category"),
        (("category", "title"), {"category": child, "title": "Moved"}, "product.category"),
        (("subcategory",), {"subcategory": other_child}, "product.subcategory"),
        # The kept subcategory is not a child of the new category.
        (("category",), {"category": other}, "product.subcategory"),
    ]
    for paths, fields, field in attempts:
        error = await failure_of(
            stub.UpdateProduct(
                update(created.product_id, created.etag, paths, **fields), metadata=metadata
            )
        )
        assert error.code == grpc.StatusCode.INVALID_ARGUMENT, fields
        assert violated_fields(error) == [field], fields
    unchanged = await stub.GetProduct(
        product_service_pb2.GetProductRequest(product_id=created.product_id), metadata=metadata
    )
    assert unchanged == created
    moved = await stub.UpdateProduct(
        update(
            created.product_id,
            created.etag,
            ("category", "subcategory"),
            category=other,
            subcategory=other_child,
        ),
        metadata=metadata,
    )
    assert (moved.category, moved.subcategory) == (other, other_child)
