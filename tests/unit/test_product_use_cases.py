"""The product listing, pricing and authorisation use cases on in-memory fakes of the ports."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from services.common.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
)
from services.common.identity import Caller, Role
from services.common.money import Money
from services.product.domain.commands import (
    BatchGetProducts,
    ChangeLifecycle,
    CreateDiscount,
    CreateProduct,
    DeleteDiscount,
    GetProduct,
    SearchProducts,
    UpdateProduct,
    Viewer,
)
from services.product.domain.model import (
    LISTED_STATES,
    Discount,
    LifecycleAction,
    Product,
    ProductState,
)
from services.product.domain.reasons import ErrorReason
from services.product.service_layer import listings, pricing, search
from tests.fakes.clock import EPOCH, ManualClock
from tests.fakes.product import FakeProducts, ProductFakes


def a_seller(*, verified: bool = True) -> Caller:
    return Caller(str(uuid.uuid4()), frozenset({Role.SELLER}), email_verified=verified)


def an_admin() -> Caller:
    return Caller(str(uuid.uuid4()), frozenset({Role.ADMIN}), email_verified=True)


def a_customer() -> Caller:
    return Caller(str(uuid.uuid4()), frozenset({Role.CUSTOMER}), email_verified=True)


def create_command(caller: Caller, **fields: Any) -> CreateProduct:
    values: dict[str, Any] = {
        "title": "Linen shirt",
        "description": "Washed linen.",
        "category": "apparel",
        "subcategory": "shirts",
        "attributes": {"colour": "white"},
        "list_price": Money(4000, "USD"),
        "sale_price": None,
        "initial_stock": 5,
        "image_urls": (),
        "publish": True,
    }
    values.update(fields)
    return CreateProduct(**values, caller=caller)


async def create(fakes: ProductFakes, clock: ManualClock, caller: Caller, **fields: Any) -> Product:
    return await listings.create_product(
        create_command(caller, **fields),
        products=fakes.products,
        categories=fakes.categories,
        clock=clock,
    )


async def lifecycle(
    fakes: ProductFakes,
    clock: ManualClock,
    caller: Caller,
    product: Product,
    action: LifecycleAction,
) -> Product:
    return await listings.change_lifecycle(
        ChangeLifecycle(product.product_id, action, caller=caller),
        products=fakes.products,
        clock=clock,
    )


@pytest.fixture
def fakes() -> ProductFakes:
    return ProductFakes()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(EPOCH + timedelta(microseconds=123_456))


async def test_a_verified_seller_creates_a_listing_stamped_by_the_clock(
    fakes: ProductFakes, clock: ManualClock
) -> None:
    seller = a_seller()
    product = await create(fakes, clock, seller, title="  Linen shirt ")
    assert product.seller_id == seller.user_id
    assert product.title == "Linen shirt"
    assert product.state is ProductState.PUBLISHED
    assert product.inventory.on_hand == 5 and product.inventory.available == 5
    # MongoDB keeps milliseconds: the use case stores the clock's time cut to them.
    assert product.create_time == EPOCH + timedelta(microseconds=123_000)
    assert fakes.stored[product.product_id] == product


@pytest.mark.parametrize(
    ("caller", "reason"),
    [
        (a_customer(), "ROLE_REQUIRED"),
        (a_seller(verified=False), ErrorReason.EMAIL_NOT_VERIFIED.value),
    ],
)
async def test_only_verified_sellers_and_admins_create_listings(
    fakes: ProductFakes, clock: ManualClock, caller: Caller, reason: str
) -> None:
    with pytest.raises(PermissionDenied) as error:
        await create(fakes, clock, caller)
    assert error.value.reason == reason
    assert fakes.stored == {}
    assert (await create(fakes, clock, an_admin())).state is ProductState.PUBLISHED


async def test_a_listing_names_a_category_of_the_tree(
    fakes: ProductFakes, clock: ManualClock
) -> None:
    with pytest.raises(InvalidArgument) as error:
        await create(fakes, clock, a_seller(), category="garden", subcategory="")
    assert [v.field for v in error.value.violations] == ["product.category"]
    assert fakes.stored == {}


async def test_drafts_are_seen_by_their_seller_and_admins_only(
    fakes: ProductFakes, clock: ManualClock
) -> None:
    seller = a_seller()
    draft = await create(fakes, clock, seller, publish=False)
    for viewer in (Viewer(seller.user_id), Viewer("someone", is_admin=True)):
        found = await listings.get_product(
            GetProduct(draft.product_id, viewer), products=fakes.products
        )
        assert found.product_id == draft.product_id
    for viewer in (Viewer(), Viewer(a_seller().user_id)):
        with pytest.raises(NotFound):
            await listings.get_product(
                GetProduct(draft.product_id, viewer), products=fakes.products
            )
    listed = await create(fakes, clock, seller)
    batch = await listings.batch_get_products(
        BatchGetProducts((draft.product_id, listed.product_id, "missing"), Viewer()),
        products=fakes.products,
    )
    assert [p.product_id for p in batch] == [listed.product_id]


async def update(fakes: ProductFakes, clock: ManualClock, command: UpdateProduct) -> Product:
    return await listings.update_product(
        command, products=fakes.products, categories=fakes.categories, clock=clock
    )


def update_command(product: Product, caller: Caller, etag: str, **fields: Any) -> UpdateProduct:
    return UpdateProduct(product.product_id, etag, tuple(fields), **fields, caller=caller)


async def test_an_update_needs_the_current_etag(fakes: ProductFakes, clock: ManualClock) -> None:
    seller = a_seller()
    product = await create(fakes, clock, seller)
    clock.advance(timedelta(minutes=5))
    updated = await update(
        fakes, clock, update_command(product, seller, product.etag, title="Linen shirt, blue")
    )
    assert updated.title == "Linen shirt, blue"
    assert updated.etag != product.etag
    assert updated.update_time == EPOCH + timedelta(minutes=5, microseconds=123_000)
    # A second writer still holding the first read loses: its etag names an old version.
    with pytest.raises(Aborted) as stale:
        await update(
            fakes, clock, update_command(product, seller, product.etag, title="Linen shirt, red")
        )
    assert stale.value.reason == ErrorReason.ETAG_MISMATCH
    assert fakes.stored[product.product_id].title == "Linen shirt, blue"


async def test_an_update_that_loses_the_race_after_reading_is_aborted(
    fakes: ProductFakes, clock: ManualClock
) -> None:
    seller = a_seller()
    product = await create(fakes, clock, seller)

    class RacingProducts(FakeProducts):
        async def update_fields(self, *args: Any, **kwargs: Any) -> Product | None:
            return None  # another edit moved the version between the read and the write

    with pytest.raises(Aborted) as error:
        await listings.update_product(
            update_command(product, seller, product.etag, title="Linen shirt, green"),
            products=RacingProducts(fakes.stored),
            categories=fakes.categories,
            clock=clock,
        )
    assert error.value.reason == ErrorReason.ETAG_MISMATCH


async def test_publish_unpublish_and_archive_follow_the_lifecycle(
    fakes: ProductFakes, clock: ManualClock
) -> None:
    seller = a_seller()
    draft = await create(fakes, clock, seller, publish=False)
    published = await lifecycle(fakes, clock, seller, draft, LifecycleAction.PUBLISH)
    assert published.state is ProductState.PUBLISHED and published.state in LISTED_STATES
    again = await lifecycle(fakes, clock, seller, draft, LifecycleAction.PUBLISH)
    assert again.version == published.version  # asking twice changes nothing
    archived = await lifecycle(fakes, clock, seller, draft, LifecycleAction.ARCHIVE)
    assert archived.state is ProductState.ARCHIVED
    with pytest.raises(FailedPrecondition) as error:
        await lifecycle(fakes, clock, seller, draft, LifecycleAction.PUBLISH)
    assert error.value.reason == ErrorReason.INVALID_PRODUCT_STATE
    with pytest.raises(FailedPrecondition) as frozen:
        await update(
            fakes, clock, update_command(archived, seller, archived.etag, title="Back again")
        )
    assert frozen.value.reason == ErrorReason.PRODUCT_ARCHIVED


async def test_an_unverified_seller_may_take_a_listing_down_but_not_publish(
    fakes: ProductFakes, clock: ManualClock
) -> None:
    verified = a_seller()
    product = await create(fakes, clock, verified)
    unverified = Caller(verified.user_id, verified.roles, email_verified=False)
    down = await lifecycle(fakes, clock, unverified, product, LifecycleAction.UNPUBLISH)
    assert down.state is ProductState.UNPUBLISHED
    with pytest.raises(PermissionDenied) as error:
        await lifecycle(fakes, clock, unverified, product, LifecycleAction.PUBLISH)
    assert error.value.reason == ErrorReason.EMAIL_NOT_VERIFIED


async def test_the_seller_and_admins_manage_a_listing_other_sellers_do_not(
    fakes: ProductFakes, clock: ManualClock
) -> None:
    owner = a_seller()
    listed = await create(fakes, clock, owner)
    draft = await create(fakes, clock, owner, publish=False)
    other = a_seller()
    # Another seller sees the listed product but may not change it ...
    with pytest.raises(PermissionDenied) as denied:
        await lifecycle(fakes, clock, other, listed, LifecycleAction.UNPUBLISH)
    assert denied.value.reason == ErrorReason.NOT_PRODUCT_OWNER
    with pytest.raises(PermissionDenied):
        await update(fakes, clock, update_command(listed, other, listed.etag, title="Mine now"))
    # ... and does not even learn that the draft exists.
    with pytest.raises(NotFound):
        await lifecycle(fakes, clock, other, draft, LifecycleAction.ARCHIVE)
    # Customers hold neither role.
    with pytest.raises(PermissionDenied):
        await lifecycle(fakes, clock, a_customer(), listed, LifecycleAction.UNPUBLISH)
    assert fakes.stored[listed.product_id].state is ProductState.PUBLISHED
    # An admin may.
    admin = an_admin()
    assert (
        await lifecycle(fakes, clock, admin, listed, LifecycleAction.UNPUBLISH)
    ).state is ProductState.UNPUBLISHED
    assert (
        await lifecycle(fakes, clock, admin, draft, LifecycleAction.ARCHIVE)
    ).state is ProductState.ARCHIVED


def discount_command(
    product: Product, caller: Caller, clock: ManualClock, **fields: Any
) -> CreateDiscount:
    values: dict[str, Any] = {
        "start_time": clock.now(),
        "end_time": clock.now() + timedelta(days=1),
        "percent_off": 25,
    }
    values.update(fields)
    return CreateDiscount(product.product_id, caller=caller, **values)


async def discount(fakes: ProductFakes, clock: ManualClock, command: CreateDiscount) -> Discount:
    return await pricing.create_discount(command, products=fakes.products, clock=clock)


async def test_a_discount_lowers_the_price_while_it_runs(
    fakes: ProductFakes, clock: ManualClock
) -> None:
    seller = a_seller()
    product = await create(fakes, clock, seller, sale_price=Money(3600, "USD"))
    created = await discount(fakes, clock, discount_command(product, seller, clock))
    assert created.start_time == EPOCH + timedelta(microseconds=123_000)  # as stored
    stored = fakes.stored[product.product_id]
    assert stored.effective_price_at(clock.now()) == Money(2700, "USD")  # 25% off the sale price
    assert stored.effective_price_at(clock.now() + timedelta(days=2)) == Money(3600, "USD")
    await pricing.delete_discount(
        DeleteDiscount(product.product_id, created.discount_id, caller=seller),
        products=fakes.products,
        clock=clock,
    )
    assert fakes.stored[product.product_id].effective_price_at(clock.now()) == Money(3600, "USD")
    with pytest.raises(NotFound) as gone:
        await pricing.delete_discount(
            DeleteDiscount(product.product_id, created.discount_id, caller=seller),
            products=fakes.products,
            clock=clock,
        )
    assert gone.value.reason == ErrorReason.DISCOUNT_NOT_FOUND


async def test_discount_amounts_and_counts_are_bounded(
    fakes: ProductFakes, clock: ManualClock
) -> None:
    seller = a_seller()
    product = await create(fakes, clock, seller)
    with pytest.raises(InvalidArgument) as too_big:
        await discount(
            fakes,
            clock,
            discount_command(product, seller, clock, percent_off=0, amount_off=Money(4000, "USD")),
        )
    assert [v.field for v in too_big.value.violations] == ["discount.amount_off"]
    for _ in range(pricing.MAX_DISCOUNTS):
        await discount(fakes, clock, discount_command(product, seller, clock))
    with pytest.raises(ResourceExhausted) as full:
        await discount(fakes, clock, discount_command(product, seller, clock))
    assert full.value.reason == ErrorReason.TOO_MANY_DISCOUNTS
    assert len(fakes.stored[product.product_id].discounts) == pricing.MAX_DISCOUNTS
    with pytest.raises(PermissionDenied):
        await discount(fakes, clock, discount_command(product, a_seller(), clock))


async def test_search_finds_listed_products_only_and_pages_by_key(
    fakes: ProductFakes, clock: ManualClock
) -> None:
    seller = a_seller()
    for _ in range(5):
        await create(fakes, clock, seller)
    await create(fakes, clock, seller, publish=False)
    first = await search.search_products(
        SearchProducts(category="apparel", page_size=2), catalog=fakes.catalog
    )
    assert first.page.total_size == 5  # the draft is not listed
    assert all(states == LISTED_STATES for _, states, _, _ in fakes.catalog.searched)
    second = await search.search_products(
        SearchProducts(category="apparel", page_size=2, page_token=first.next_page_token),
        catalog=fakes.catalog,
    )
    last = await search.search_products(
        SearchProducts(category="apparel", page_size=2, page_token=second.next_page_token),
        catalog=fakes.catalog,
    )
    assert [after for *_, after in fakes.catalog.searched] == [None, (1,), (3,)]
    assert len(last.page.products) == 1 and last.next_page_token == ""
    seen = [p.product_id for page in (first, second, last) for p in page.page.products]
    assert len(set(seen)) == 5
    with pytest.raises(InvalidArgument):
        await search.search_products(
            SearchProducts(category="other", page_token=first.next_page_token),
            catalog=fakes.catalog,
        )
