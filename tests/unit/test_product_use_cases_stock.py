"""The product stock, reservation and review use cases on in-memory fakes of the ports."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from services.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
)
from services.common.identity import Caller, Role
from services.common.money import Money
from services.product.domain.commands import (
    AdjustInventory,
    CommitReservation,
    CreateReview,
    ListLedgerEntries,
    ListReviews,
    ReleaseReservation,
    ReserveInventory,
    ReviewAction,
)
from services.product.domain.model import (
    Discount,
    Inventory,
    Product,
    ProductState,
    Reservation,
    ReservationLine,
    ReservationState,
    Review,
)
from services.product.domain.reasons import ErrorReason
from services.product.service_layer import inventory, reservations, reviews
from services.product.service_layer.order_events import (
    OrderEvent,
    OrderEventKind,
    handle_order_event,
)
from tests.fakes.clock import EPOCH, ManualClock
from tests.fakes.product import ProductFakes
from tests.support.product import a_product

SELLER = Caller(str(uuid.uuid4()), frozenset({Role.SELLER}), email_verified=True)
OTHER_SELLER = Caller(str(uuid.uuid4()), frozenset({Role.SELLER}), email_verified=True)
ADMIN = Caller(str(uuid.uuid4()), frozenset({Role.ADMIN}), email_verified=True)


@pytest.fixture
def fakes() -> ProductFakes:
    return ProductFakes()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(EPOCH)


def stocked(fakes: ProductFakes, on_hand: int, **fields: object) -> Product:
    product = a_product(seller_id=SELLER.user_id, inventory=Inventory(on_hand=on_hand), **fields)
    fakes.stored[product.product_id] = product
    return product


def adjust(product: Product, caller: Caller, delta: int) -> AdjustInventory:
    return AdjustInventory(product.product_id, delta, "stock count", caller=caller)


async def test_stock_adjustments_are_ledgered_and_never_go_below_the_reserved(
    fakes: ProductFakes, clock: ManualClock
) -> None:
    product = stocked(fakes, 5)
    _, level = await inventory.adjust_inventory(
        adjust(product, SELLER, 3), products=fakes.products, stock=fakes.stock, clock=clock
    )
    assert level == Inventory(8, 0)
    await reserve(fakes, clock, str(uuid.uuid4()), ReservationLine(product.product_id, 6))
    with pytest.raises(FailedPrecondition) as error:
        await inventory.adjust_inventory(
            adjust(product, SELLER, -3), products=fakes.products, stock=fakes.stock, clock=clock
        )
    assert error.value.reason == ErrorReason.INSUFFICIENT_STOCK
    assert fakes.stored[product.product_id].inventory == Inventory(8, 6)
    page = await inventory.list_ledger_entries(
        ListLedgerEntries(product.product_id, caller=SELLER),
        products=fakes.products,
        stock=fakes.stock,
    )
    assert [(e.on_hand_delta, e.reserved_delta) for e in page.entries] == [(0, 6), (3, 0)]
    assert page.entries[1].actor == SELLER.user_id and page.entries[1].create_time == EPOCH


async def test_only_the_seller_and_admins_adjust_stock(
    fakes: ProductFakes, clock: ManualClock
) -> None:
    product = stocked(fakes, 5)
    with pytest.raises(PermissionDenied) as denied:
        await inventory.adjust_inventory(
            adjust(product, OTHER_SELLER, 1),
            products=fakes.products,
            stock=fakes.stock,
            clock=clock,
        )
    assert denied.value.reason == ErrorReason.NOT_PRODUCT_OWNER
    _, level = await inventory.adjust_inventory(
        adjust(product, ADMIN, 1), products=fakes.products, stock=fakes.stock, clock=clock
    )
    assert level.on_hand == 6


async def reserve(
    fakes: ProductFakes, clock: ManualClock, order_id: str, *lines: ReservationLine
) -> Reservation:
    return await reservations.reserve_inventory(
        ReserveInventory(order_id, tuple(lines)),
        reservations=fakes.reservations,
        stock=fakes.stock,
        products=fakes.products,
        clock=clock,
    )


async def test_reservations_never_oversell_and_hold_all_lines_or_none(
    fakes: ProductFakes, clock: ManualClock
) -> None:
    scarce, plenty = stocked(fakes, 3), stocked(fakes, 10)
    first = str(uuid.uuid4())
    held = await reserve(
        fakes,
        clock,
        first,
        ReservationLine(plenty.product_id, 2),
        ReservationLine(scarce.product_id, 2),
    )
    assert held.state is ReservationState.RESERVED
    assert [i.unit_price for i in held.items] == [Money(3900, "USD"), Money(3900, "USD")]
    # The second order wants more of the scarce product than is left: nothing is held.
    with pytest.raises(FailedPrecondition) as error:
        await reserve(
            fakes,
            clock,
            str(uuid.uuid4()),
            ReservationLine(plenty.product_id, 1),
            ReservationLine(scarce.product_id, 2),
        )
    assert error.value.reason == ErrorReason.OUT_OF_STOCK
    assert fakes.stored[scarce.product_id].inventory == Inventory(3, 2)
    assert fakes.stored[plenty.product_id].inventory == Inventory(10, 2)
    # Repeating the first order returns its reservation without holding twice.
    again = await reserve(
        fakes,
        clock,
        first,
        ReservationLine(scarce.product_id, 2),
        ReservationLine(plenty.product_id, 2),
    )
    assert again.items == held.items
    assert fakes.stored[scarce.product_id].inventory == Inventory(3, 2)
    with pytest.raises(FailedPrecondition) as mismatch:
        await reserve(fakes, clock, first, ReservationLine(scarce.product_id, 1))
    assert mismatch.value.reason == ErrorReason.RESERVATION_MISMATCH


async def test_unlisted_products_are_not_reserved(fakes: ProductFakes, clock: ManualClock) -> None:
    draft = stocked(fakes, 5, state=ProductState.DRAFT)
    with pytest.raises(NotFound) as error:
        await reserve(fakes, clock, str(uuid.uuid4()), ReservationLine(draft.product_id, 1))
    assert error.value.reason == ErrorReason.PRODUCT_NOT_FOUND
    assert fakes.stored[draft.product_id].inventory == Inventory(5, 0)


async def test_a_reservation_is_priced_by_the_discount_running_at_the_clocks_time(
    fakes: ProductFakes, clock: ManualClock
) -> None:
    sale = Discount("d1", EPOCH + timedelta(hours=1), EPOCH + timedelta(hours=2), percent_off=50)
    product = stocked(fakes, 5, discounts=(sale,))
    before = await reserve(fakes, clock, str(uuid.uuid4()), ReservationLine(product.product_id, 1))
    clock.advance(timedelta(minutes=90))
    during = await reserve(fakes, clock, str(uuid.uuid4()), ReservationLine(product.product_id, 1))
    assert before.items[0].unit_price == Money(3900, "USD")
    assert during.items[0].unit_price == Money(1950, "USD")


async def test_commit_sells_release_returns_and_each_settles_once(
    fakes: ProductFakes, clock: ManualClock
) -> None:
    product = stocked(fakes, 5)
    sold, returned = str(uuid.uuid4()), str(uuid.uuid4())
    await reserve(fakes, clock, sold, ReservationLine(product.product_id, 2))
    await reserve(fakes, clock, returned, ReservationLine(product.product_id, 1))

    async def commit(order_id: str) -> None:
        await reservations.commit_reservation(
            CommitReservation(order_id),
            reservations=fakes.reservations,
            stock=fakes.stock,
            clock=clock,
        )

    async def release(order_id: str) -> None:
        await reservations.release_reservation(
            ReleaseReservation(order_id),
            reservations=fakes.reservations,
            stock=fakes.stock,
            clock=clock,
        )

    for _ in range(2):  # a repeat changes nothing
        await commit(sold)
        await release(returned)
    assert fakes.stored[product.product_id].inventory == Inventory(3, 0)
    with pytest.raises(FailedPrecondition) as committed:
        await release(sold)
    assert committed.value.reason == ErrorReason.RESERVATION_COMMITTED
    with pytest.raises(FailedPrecondition) as released:
        await commit(returned)
    assert released.value.reason == ErrorReason.RESERVATION_RELEASED
    with pytest.raises(NotFound):
        await commit(str(uuid.uuid4()))
    assert fakes.stored[product.product_id].inventory == Inventory(3, 0)


async def test_the_sweeper_returns_lapsed_reservations_by_the_clock(
    fakes: ProductFakes, clock: ManualClock
) -> None:
    product = stocked(fakes, 5)
    await reservations.reserve_inventory(
        ReserveInventory(str(uuid.uuid4()), (ReservationLine(product.product_id, 2),)),
        reservations=fakes.reservations,
        stock=fakes.stock,
        products=fakes.products,
        clock=clock,
        expires_in_seconds=60,
    )
    sweeper = inventory.ReservationSweeper(
        fakes.reservations, fakes.stock, fakes.products, interval_seconds=1, clock=clock
    )
    assert await sweeper.run_once() == 0
    assert fakes.stored[product.product_id].inventory == Inventory(5, 2)
    clock.advance(timedelta(seconds=61))
    assert await sweeper.run_once() == 1
    assert fakes.stored[product.product_id].inventory == Inventory(5, 0)


def buyer() -> Caller:
    return Caller(str(uuid.uuid4()), frozenset({Role.CUSTOMER}), email_verified=True)


async def write_review(
    fakes: ProductFakes, clock: ManualClock, caller: Caller, product: Product, rating: int = 4
) -> Review:
    return await reviews.create_review(
        CreateReview(product.product_id, rating, "Solid", caller=caller),
        products=fakes.products,
        reviews=fakes.reviews,
        purchases=fakes.purchases,
        clock=clock,
    )


async def deliver(fakes: ProductFakes, clock: ManualClock, who: Caller, product: Product) -> None:
    event = OrderEvent(
        event_id=uuid.uuid4().hex,
        kind=OrderEventKind.DELIVERED,
        order_id=str(uuid.uuid4()),
        buyer_id=who.user_id,
        product_ids=(product.product_id,),
    )
    # The second delivery of the same event is skipped.
    outcomes = [
        await handle_order_event(
            event,
            processed=fakes.processed,
            purchases=fakes.purchases,
            reviews=fakes.reviews,
            stock=fakes.stock,
            clock=clock,
        )
        for _ in range(2)
    ]
    assert outcomes == [True, False]


async def test_only_buyers_of_delivered_items_write_verified_reviews(
    fakes: ProductFakes, clock: ManualClock
) -> None:
    product = stocked(fakes, 5)
    delivered, stranger, early = buyer(), buyer(), buyer()
    await deliver(fakes, clock, delivered, product)
    verified = await write_review(fakes, clock, delivered, product, rating=5)
    unverified = await write_review(fakes, clock, stranger, product, rating=1)
    assert verified.verified_purchase is True
    assert unverified.verified_purchase is False
    # A review written before the delivery becomes verified when the delivery arrives.
    before = await write_review(fakes, clock, early, product)
    assert before.verified_purchase is False
    await deliver(fakes, clock, early, product)
    by_author = {r.author_id: r for r in fakes.reviews.stored.values()}
    assert by_author[early.user_id].verified_purchase
    assert not by_author[stranger.user_id].verified_purchase
    rating = fakes.stored[product.product_id].rating
    assert (rating.count, rating.total) == (3, 10)


async def test_one_review_per_buyer_none_by_the_seller_none_after_moderation(
    fakes: ProductFakes, clock: ManualClock
) -> None:
    product = stocked(fakes, 5)
    author = buyer()
    review = await write_review(fakes, clock, author, product)
    with pytest.raises(AlreadyExists):
        await write_review(fakes, clock, author, product)
    with pytest.raises(PermissionDenied) as own:
        await write_review(fakes, clock, SELLER, product)
    assert own.value.reason == ErrorReason.OWN_PRODUCT_REVIEW
    review_id = review.review_id
    action = ReviewAction(product.product_id, review_id, "abusive", caller=ADMIN)
    with pytest.raises(PermissionDenied):
        await reviews.hide_review(
            ReviewAction(product.product_id, review_id, "abusive", caller=OTHER_SELLER),
            products=fakes.products,
            reviews=fakes.reviews,
            clock=clock,
        )
    await reviews.hide_review(action, products=fakes.products, reviews=fakes.reviews, clock=clock)
    page = await reviews.list_reviews(
        ListReviews(product.product_id), products=fakes.products, reviews=fakes.reviews
    )
    assert page.reviews == []
    assert fakes.stored[product.product_id].rating.count == 0
    await reviews.delete_review(
        ReviewAction(product.product_id, review_id, caller=author),
        products=fakes.products,
        reviews=fakes.reviews,
    )
    with pytest.raises(FailedPrecondition) as moderated:
        await write_review(fakes, clock, author, product)
    assert moderated.value.reason == ErrorReason.REVIEW_MODERATED
