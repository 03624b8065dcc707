"""A seller's own listings: every state, filters, keyset pages, and who may list whose."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from services.common.errors import InvalidArgument, PermissionDenied
from services.common.identity import Caller, Role
from services.common.money import Money
from services.product.domain.commands import ChangeLifecycle, CreateProduct, ListSellerProducts
from services.product.domain.model import LifecycleAction, Product, ProductState
from services.product.service_layer import listings
from tests.fakes.clock import EPOCH, ManualClock
from tests.fakes.product import ProductFakes


def caller(*roles: Role) -> Caller:
    return Caller(str(uuid.uuid4()), frozenset(roles), email_verified=True)


async def create(fakes: ProductFakes, clock: ManualClock, seller: Caller, **fields: Any) -> Product:
    values: dict[str, Any] = {
        "title": "Linen shirt",
        "description": "Washed linen.",
        "category": "apparel",
        "subcategory": "shirts",
        "attributes": {},
        "list_price": Money(4000, "USD"),
        "sale_price": None,
        "initial_stock": 5,
        "image_urls": (),
        "publish": True,
    }
    values.update(fields)
    clock.advance(timedelta(seconds=1))
    return await listings.create_product(
        CreateProduct(**values, caller=seller),
        products=fakes.products,
        categories=fakes.categories,
        clock=clock,
    )


async def listed(fakes: ProductFakes, who: Caller, seller_id: str = "me", **fields: Any) -> Any:
    return await listings.list_seller_products(
        ListSellerProducts(seller_id, **fields, caller=who), products=fakes.products
    )


@pytest.fixture
def fakes() -> ProductFakes:
    return ProductFakes()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(EPOCH)


async def test_a_seller_lists_their_own_products_in_every_state_newest_first(
    fakes: ProductFakes, clock: ManualClock
) -> None:
    seller, other = caller(Role.SELLER), caller(Role.SELLER)
    draft = await create(fakes, clock, seller, publish=False)
    published = await create(fakes, clock, seller)
    retired = await create(fakes, clock, seller)
    await listings.change_lifecycle(
        ChangeLifecycle(retired.product_id, LifecycleAction.ARCHIVE, caller=seller),
        products=fakes.products,
        clock=clock,
    )
    await create(fakes, clock, other)

    page = await listed(fakes, seller)
    assert [p.product_id for p in page.products] == [
        retired.product_id,
        published.product_id,
        draft.product_id,
    ]
    assert page.next_page_token == ""
    drafts = await listed(fakes, seller, states=(ProductState.DRAFT,))
    assert [p.product_id for p in drafts.products] == [draft.product_id]

    # Admins list any seller's; another seller is refused before anything is read.
    as_admin = await listed(fakes, caller(Role.ADMIN), seller.user_id)
    assert len(as_admin.products) == 3
    with pytest.raises(PermissionDenied):
        await listed(fakes, other, seller.user_id)
    with pytest.raises(PermissionDenied):
        await listed(fakes, caller(Role.CUSTOMER))


async def test_filters_and_keyset_pages(fakes: ProductFakes, clock: ManualClock) -> None:
    seller = caller(Role.SELLER)
    made = [await create(fakes, clock, seller, initial_stock=i) for i in range(5)]
    low = await listed(fakes, seller, max_available=1)
    assert [p.product_id for p in low.products] == [made[1].product_id, made[0].product_id]
    assert (await listed(fakes, seller, category="shirts")).products[0] == made[4]
    assert (await listed(fakes, seller, category="toys")).products == []

    seen: list[str] = []
    token = ""
    while True:
        page = await listed(fakes, seller, page_size=2, page_token=token)
        seen += [p.product_id for p in page.products]
        token = page.next_page_token
        if not token:
            break
        # A product added meanwhile is newer than the cursor: it neither repeats nor shifts.
        await create(fakes, clock, seller)
    assert seen == [p.product_id for p in reversed(made)]

    first = await listed(fakes, seller, page_size=2)
    with pytest.raises(InvalidArgument) as raised:
        await listed(fakes, seller, page_size=2, page_token=first.next_page_token, category="x")
    assert [v.field for v in raised.value.violations] == ["page_token"]
    with pytest.raises(InvalidArgument) as raised:
        await listed(fakes, seller, page_size=-1)
    assert [v.field for v in raised.value.violations] == ["page_size"]
    with pytest.raises(InvalidArgument) as raised:
        await listed(fakes, seller, max_available=-1)
    assert [v.field for v in raised.value.violations] == ["max_available"]
    clamped = await listed(fakes, seller, page_size=10_000)
    assert len(clamped.products) == 7  # five, and two added while paging
