"""The cart's rules and use cases, with in-memory fakes of its storage, catalog and saga."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from services.common.errors import Aborted, DomainError, FailedPrecondition, NotFound, Unavailable
from services.common.money import Money
from services.order.domain.cart import (
    MAX_LINES,
    AddCartItem,
    Availability,
    Cart,
    CartView,
    CheckoutCart,
    GetCart,
    RemoveCartItem,
    UpdateCartItem,
)
from services.order.domain.model import Order
from services.order.service_layer import cart as use_cases
from services.order.service_layer.cart import CheckoutTimes
from tests.fakes.cart import ADDRESS, CartStore, FakeCartUnitOfWork, FakeCatalog, FakeSaga
from tests.fakes.clock import ManualClock

BUYER = uuid.UUID("00000000-0000-4000-8000-000000000001")


class World:
    """The fakes one test shares: a store, a catalog, a saga and a clock."""

    def __init__(self) -> None:
        self.store = CartStore()
        self.catalog = FakeCatalog()
        self.saga = FakeSaga(self.store, self.catalog)
        self.clock = ManualClock()
        self.times = CheckoutTimes(lease_seconds=30.0, poll_seconds=0.005)

    def uow(self) -> FakeCartUnitOfWork:
        return FakeCartUnitOfWork(self.store)

    async def add(self, product_id: str, quantity: int = 1) -> CartView:
        return await use_cases.add_cart_item(
            AddCartItem(BUYER, product_id, quantity),
            uow=self.uow,
            catalog=self.catalog,
            clock=self.clock,
        )

    async def read(self) -> CartView:
        return await use_cases.get_cart(
            GetCart(BUYER), uow=self.uow, catalog=self.catalog, clock=self.clock
        )

    async def checkout(
        self, key: str = "key-1", *, product_ids: tuple[str, ...] = (), wait: float = 1.0
    ) -> Order:
        command = CheckoutCart(
            buyer_id=BUYER,
            idempotency_key=key,
            request_fingerprint=b"fp:" + ",".join(product_ids).encode(),
            product_ids=product_ids,
            shipping_address=ADDRESS,
            payment_method_token="tok_visa",
        )
        return await use_cases.checkout_cart(
            command,
            uow=self.uow,
            orders=self.saga,
            clock=self.clock,
            wait_seconds=wait,
            times=self.times,
        )

    def lines(self) -> dict[str, int]:
        cart = self.store.carts.get(BUYER, Cart(BUYER))
        return {line.product_id: line.quantity for line in cart.lines}


async def test_adding_twice_adds_units_and_the_read_prices_every_line_now() -> None:
    world = World()
    world.catalog.sell("lamp", price=800, list_price=1000, stock=5)
    world.catalog.sell("desk", price=5000)
    await world.add("lamp", 2)
    await world.add("desk")
    view = await world.add("lamp", 1)

    assert [(p.line.product_id, p.line.quantity) for p in view.lines] == [("lamp", 3), ("desk", 1)]
    lamp = view.lines[0]
    assert lamp.availability is Availability.AVAILABLE
    assert lamp.unit_price == Money(800, "USD")
    assert lamp.unit_discount == Money(200, "USD")
    assert lamp.line_total == Money(2400, "USD")
    assert view.subtotal == Money(7400, "USD")
    assert view.discount_total == Money(600, "USD")
    assert view.total_quantity == 4
    assert view.ready_for_checkout


async def test_a_read_says_which_lines_changed_price_ran_short_or_left_the_catalog() -> None:
    world = World()
    world.catalog.sell("lamp", price=1000)
    world.catalog.sell("desk", price=5000, stock=3)
    world.catalog.sell("chair", price=3000)
    await world.add("lamp")
    await world.add("desk", 2)
    await world.add("chair")

    world.catalog.sell("lamp", price=1200)  # repriced
    world.catalog.sell("desk", price=5000, stock=1)  # sold down
    world.catalog.withdraw("chair")  # unpublished
    view = await world.read()

    lamp, desk, chair = view.lines
    assert lamp.price_changed and lamp.line.added_unit_price == Money(1000, "USD")
    assert lamp.unit_price == Money(1200, "USD")
    assert (desk.availability, desk.stock_available) == (Availability.INSUFFICIENT_STOCK, 1)
    assert not desk.price_changed
    assert chair.availability is Availability.UNAVAILABLE
    assert view.subtotal == Money(1200 + 10000, "USD")  # the chair is not on sale
    assert not view.ready_for_checkout


async def test_an_unreachable_catalog_leaves_the_cart_readable_with_unknown_lines() -> None:
    world = World()
    world.catalog.sell("lamp", price=1000)
    await world.add("lamp", 2)
    world.catalog.down = True

    view = await world.read()

    [lamp] = view.lines
    assert lamp.availability is Availability.UNKNOWN
    assert lamp.line_total == Money(2000, "USD")  # the price when added
    assert not view.ready_for_checkout
    with pytest.raises(Unavailable):
        await world.add("lamp")  # adding needs today's price


async def test_adding_a_product_not_on_sale_is_not_found_and_changes_nothing() -> None:
    world = World()
    with pytest.raises(NotFound) as raised:
        await world.add("ghost")
    assert raised.value.reason == "PRODUCT_NOT_FOUND"
    assert world.store.commits == 0


async def test_the_limits_of_a_cart_are_those_of_an_order() -> None:
    world = World()
    world.catalog.sell("lamp")
    await world.add("lamp", 100)
    with pytest.raises(FailedPrecondition) as raised:
        await world.add("lamp", 1)
    assert raised.value.reason == "CART_ITEM_QUANTITY_EXCEEDED"
    for index in range(MAX_LINES - 1):
        world.catalog.sell(f"p{index}")
        await world.add(f"p{index}")
    world.catalog.sell("one-too-many")
    with pytest.raises(FailedPrecondition) as full:
        await world.add("one-too-many")
    assert full.value.reason == "CART_FULL"


async def test_update_and_remove_act_on_lines_the_cart_holds() -> None:
    world = World()
    world.catalog.sell("lamp")
    await world.add("lamp")
    await use_cases.update_cart_item(
        UpdateCartItem(BUYER, "lamp", 7), uow=world.uow, catalog=world.catalog, clock=world.clock
    )
    assert world.lines() == {"lamp": 7}
    for change in (
        use_cases.update_cart_item(
            UpdateCartItem(BUYER, "desk", 1),
            uow=world.uow,
            catalog=world.catalog,
            clock=world.clock,
        ),
        use_cases.remove_cart_item(
            RemoveCartItem(BUYER, "desk"), uow=world.uow, catalog=world.catalog, clock=world.clock
        ),
    ):
        with pytest.raises(NotFound) as raised:
            await change
        assert raised.value.reason == "CART_ITEM_NOT_FOUND"
    view = await use_cases.remove_cart_item(
        RemoveCartItem(BUYER, "lamp"), uow=world.uow, catalog=world.catalog, clock=world.clock
    )
    assert view.lines == () and world.lines() == {}


async def test_a_paid_checkout_empties_the_bought_lines_only() -> None:
    world = World()
    world.catalog.sell("lamp", seller_id="s1")
    world.catalog.sell("desk", seller_id="s2")
    world.catalog.sell("chair", seller_id="s2")
    await world.add("lamp", 2)
    await world.add("desk")
    await world.add("chair")

    order = await world.checkout(product_ids=("lamp", "desk"))

    assert {(i.product_id, i.seller_id, i.quantity) for i in order.items} == {
        ("lamp", "s1", 2),
        ("desk", "s2", 1),
    }
    assert world.lines() == {"chair": 1}
    assert world.store.carts[BUYER].hold is None


@pytest.mark.parametrize("behaviour", ["decline", "out_of_stock", "release"])
async def test_a_failed_checkout_leaves_the_cart_as_it_was(behaviour: str) -> None:
    world = World()
    world.catalog.sell("lamp")
    await world.add("lamp", 2)
    before = world.store.carts[BUYER]
    world.saga.behaviour = behaviour  # type: ignore[assignment]

    with pytest.raises(DomainError):
        await world.checkout()

    after = world.store.carts[BUYER]
    assert after.lines == before.lines and after.hold is None
    view = await world.read()
    assert view.ready_for_checkout


async def test_the_same_key_after_success_replays_the_order_without_buying_again() -> None:
    world = World()
    world.catalog.sell("lamp")
    await world.add("lamp")
    first = await world.checkout("k")
    await world.add("lamp")  # the cart fills again

    again = await world.checkout("k")

    assert again.order_id == first.order_id
    assert len(world.saga.placed) == 1
    assert world.lines() == {"lamp": 1}


async def test_a_checkout_of_an_empty_cart_or_an_unknown_line_is_refused() -> None:
    world = World()
    with pytest.raises(FailedPrecondition) as empty:
        await world.checkout()
    assert empty.value.reason == "CART_EMPTY"
    world.catalog.sell("lamp")
    await world.add("lamp")
    with pytest.raises(NotFound) as unknown:
        await world.checkout("k2", product_ids=("desk",))
    assert unknown.value.reason == "CART_ITEM_NOT_FOUND"
    assert world.saga.started == 0


async def test_a_key_reused_for_another_checkout_is_refused() -> None:
    world = World()
    world.catalog.sell("lamp")
    world.catalog.sell("desk")
    await world.add("lamp")
    await world.add("desk")
    await world.checkout("k", product_ids=("lamp",))
    with pytest.raises(FailedPrecondition) as raised:
        await world.checkout("k", product_ids=("desk",))
    assert raised.value.reason == "IDEMPOTENCY_KEY_REUSED"
    assert world.lines() == {"desk": 1}


async def test_while_a_checkout_runs_the_cart_is_held_against_changes_and_other_keys() -> None:
    world = World()
    world.catalog.sell("lamp")
    await world.add("lamp")
    world.saga.gate = asyncio.Event()
    running = asyncio.create_task(world.checkout("k1"))
    await world.saga.claimed.wait()

    with pytest.raises(Aborted) as other_key:
        await world.checkout("k2")
    assert other_key.value.reason == "CART_CHECKOUT_IN_PROGRESS"
    with pytest.raises(Aborted) as change:
        await world.add("lamp")
    assert change.value.reason == "CART_CHECKOUT_IN_PROGRESS"
    view = await world.read()
    assert view.cart.hold is not None and not view.ready_for_checkout

    world.saga.gate.set()
    await running
    assert world.lines() == {}
    with pytest.raises(FailedPrecondition) as after:
        await world.checkout("k2")
    assert after.value.reason == "CART_EMPTY"
    assert len(world.saga.placed) == 1


async def test_concurrent_checkouts_with_the_same_and_other_keys_place_one_order() -> None:
    world = World()
    world.catalog.sell("lamp")
    await world.add("lamp", 3)
    world.saga.gate = asyncio.Event()
    attempts = [world.checkout(key) for key in ("a", "a", "b", "c", "a", "b")]
    tasks = [asyncio.create_task(attempt) for attempt in attempts]
    await asyncio.sleep(0.02)
    world.saga.gate.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)

    orders = {r.order_id for r in results if isinstance(r, Order)}
    assert len(orders) == 1 and len(world.saga.placed) == 1
    refused = [r for r in results if not isinstance(r, Order)]
    assert all(isinstance(r, DomainError) for r in refused), refused
    assert {r.reason for r in refused if isinstance(r, DomainError)} <= {
        "CART_CHECKOUT_IN_PROGRESS",
        "CART_EMPTY",
    }
    assert world.lines() == {}


async def test_an_unknown_payment_outcome_keeps_the_hold_until_the_saga_settles() -> None:
    world = World()
    world.catalog.sell("lamp")
    await world.add("lamp")
    world.saga.behaviour = "pending"
    with pytest.raises(Unavailable):
        await world.checkout("k")
    assert world.store.carts[BUYER].hold is not None
    with pytest.raises(Aborted) as held:
        await world.checkout("other")
    assert held.value.reason == "CART_CHECKOUT_IN_PROGRESS"

    world.saga.settle_pending(BUYER, "k", paid=True)  # the reconciler found the capture
    view = await world.read()

    assert view.lines == () and view.cart.hold is None
    assert world.lines() == {}


async def test_an_unknown_outcome_that_ends_declined_gives_the_cart_back() -> None:
    world = World()
    world.catalog.sell("lamp")
    await world.add("lamp", 2)
    world.saga.behaviour = "pending"
    with pytest.raises(Unavailable):
        await world.checkout("k")
    world.saga.settle_pending(BUYER, "k", paid=False)

    world.saga.behaviour = "pay"
    await world.checkout("k2")  # a new key goes ahead at once
    assert world.lines() == {}


async def test_a_checkout_whose_runner_died_before_the_saga_is_taken_over_by_a_retry() -> None:
    world = World()
    world.catalog.sell("lamp")
    await world.add("lamp")
    # A runner that held the cart and died before the saga claimed its key.
    cart = world.store.carts[BUYER]
    cart.hold_for_checkout(
        "k", uuid.uuid4(), (), lease_until=world.clock.now() + timedelta(seconds=30)
    )
    with pytest.raises(Aborted) as waiting:
        await world.checkout("k", wait=0.02)  # the runner may still be at work
    assert waiting.value.reason == "REQUEST_IN_PROGRESS"
    with pytest.raises(Aborted):
        await world.checkout("other")

    world.clock.advance(timedelta(seconds=31))
    await world.checkout("k")  # its lease ran out: the retry takes over

    assert world.lines() == {} and len(world.saga.placed) == 1


async def test_a_hold_left_without_a_saga_is_lifted_by_a_read_after_its_lease() -> None:
    world = World()
    world.catalog.sell("lamp")
    await world.add("lamp")
    world.store.carts[BUYER].hold_for_checkout(
        "k", uuid.uuid4(), (), lease_until=world.clock.now() + timedelta(seconds=30)
    )
    assert (await world.read()).cart.hold is not None
    world.clock.advance(timedelta(seconds=31))

    view = await world.read()

    assert view.cart.hold is None and world.lines() == {"lamp": 1}
    await world.add("lamp")
    assert world.lines() == {"lamp": 2}
