"""The checkout saga's failure paths, with in-memory fakes of its ports."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from services.common.clock import SystemClock
from services.common.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    Unavailable,
)
from services.order.adapters.payments import SandboxGateway
from services.order.domain.commands import PlaceOrder
from services.order.domain.idempotency import KeyState
from services.order.domain.model import Order, OrderLine, ShippingAddress
from services.order.domain.status import OrderStatus
from services.order.mappers.orders import ProtoOrderCodec
from services.order.service_layer.checkout import Checkout, place_order
from tests.fakes.order import FakeBuyers, FakeInventory, FakeUnitOfWork, Store


def command(token: str = "tok_visa", address_id: uuid.UUID | None = None) -> PlaceOrder:
    return PlaceOrder(
        buyer_id=uuid.uuid4(),
        idempotency_key="k",
        request_fingerprint=b"f",
        lines=(OrderLine("p-1", 2),),
        shipping_address=(
            None if address_id else ShippingAddress("Ada", "1 Main St", "Berlin", "DE")
        ),
        payment_method_token=token,
        address_id=address_id,
    )


async def place(saga: Checkout, placing: PlaceOrder, wait_seconds: float = 1) -> Order:
    """Place through the use case's entry point, as the servicer does."""
    return await place_order(
        placing, uow=saga.uow, checkout=saga, clock=saga.clock, wait_seconds=wait_seconds
    )


def checkout(
    store: Store,
    inventory: FakeInventory,
    *,
    fail_save: bool = False,
    buyers: FakeBuyers | None = None,
) -> tuple[Checkout, SandboxGateway]:
    gateway = SandboxGateway(latency_seconds=0, timeout_seconds=1)
    return (
        Checkout(
            uow=lambda: FakeUnitOfWork(store, fail_save=fail_save),
            inventory=inventory,
            payments=gateway,
            codec=ProtoOrderCodec(),
            buyers=buyers or FakeBuyers(),
            clock=SystemClock(),
        ),
        gateway,
    )


async def test_an_address_book_entry_is_copied_into_the_order() -> None:
    store, address_id = Store(), uuid.uuid4()
    home = ShippingAddress("Grace", "2 Navy Yard", "Arlington", "US", region="VA")
    buyers = FakeBuyers(book={address_id: home})
    saga, _ = checkout(store, FakeInventory(), buyers=buyers)
    placing = command(address_id=address_id)
    order = await place(saga, placing)
    assert order.shipping_address == home
    assert buyers.checked == [placing.buyer_id]


async def test_a_suspended_buyer_is_refused_before_stock_is_touched_and_it_is_replayed() -> None:
    store, inventory = Store(), FakeInventory()
    refusal = FailedPrecondition("suspended", reason="BUYER_SUSPENDED")
    saga, gateway = checkout(store, inventory, buyers=FakeBuyers(refuse_with=refusal))
    placing = command()
    for _ in range(2):
        with pytest.raises(FailedPrecondition) as raised:
            await place(saga, placing)
        assert raised.value.reason == "BUYER_SUSPENDED"
    assert (store.orders, inventory.reserved, gateway.charges) == ({}, set(), [])


async def test_an_unreachable_user_service_gives_the_key_back() -> None:
    store, inventory = Store(), FakeInventory()
    down = Unavailable("down", reason="USER_SERVICE_UNAVAILABLE")
    saga, _ = checkout(store, inventory, buyers=FakeBuyers(refuse_with=down))
    with pytest.raises(Unavailable):
        await place(saga, command())
    assert (store.keys, store.orders, inventory.reserved) == ({}, {}, set())


async def test_a_stored_out_of_stock_error_is_replayed_as_the_same_error() -> None:
    store = Store()
    refusal = FailedPrecondition("sold out", reason="OUT_OF_STOCK", metadata={"product_id": "p-1"})
    saga, _ = checkout(store, FakeInventory(refuse_with=refusal))
    placing = command()
    with pytest.raises(FailedPrecondition) as first:
        await place(saga, placing)
    with pytest.raises(FailedPrecondition) as again:
        await place(saga, placing)
    assert (again.value.reason, again.value.metadata) == ("OUT_OF_STOCK", {"product_id": "p-1"})
    assert again.value.message == first.value.message
    assert store.orders == {}


@pytest.mark.parametrize(
    "refusal",
    [
        Unavailable("down", reason="INVENTORY_UNAVAILABLE"),
        InvalidArgument([]),
    ],
)
async def test_a_refusal_that_is_not_the_buyers_outcome_gives_the_key_back(
    refusal: Exception,
) -> None:
    store = Store()
    saga, _ = checkout(store, FakeInventory(refuse_with=refusal))
    with pytest.raises(type(refusal)):
        await place(saga, command())
    assert store.keys == {}
    assert store.orders == {}


async def test_a_crash_before_the_charge_cancels_the_order_and_frees_stock_and_key() -> None:
    store = Store()
    inventory = FakeInventory()
    saga, gateway = checkout(store, inventory)

    def crash(step: str) -> None:
        if step == "after_record":
            raise RuntimeError("a bug before any money moved")

    saga.checkpoint = crash
    with pytest.raises(RuntimeError):
        await place(saga, command())
    [order] = store.orders.values()
    assert order.status is OrderStatus.CANCELLED
    assert inventory.reserved == set()
    assert store.keys == {}
    assert gateway.charges == []


async def test_a_crash_at_the_gateway_call_hands_the_order_to_the_reconciler() -> None:
    store = Store()
    inventory = FakeInventory()
    saga, gateway = checkout(store, inventory)

    async def broken_authorize(*args: object) -> None:
        raise RuntimeError("a bug in the gateway client")

    gateway.authorize = broken_authorize  # type: ignore[assignment,method-assign]
    with pytest.raises(RuntimeError):
        await place(saga, command())
    # The call may have reached the gateway: nothing is decided before someone asks it.
    [order] = store.orders.values()
    assert order.status is OrderStatus.PENDING
    [record] = store.keys.values()
    assert record.state is KeyState.IN_PROGRESS
    assert gateway.charges == []


async def test_a_crash_after_the_charge_keeps_the_key_so_no_retry_charges_again() -> None:
    store = Store()
    inventory = FakeInventory()
    saga, gateway = checkout(store, inventory, fail_save=True)
    placing = command()
    with pytest.raises(ConnectionError):
        await place(saga, placing)
    assert len(gateway.captured()) == 1
    [record] = store.keys.values()
    assert record.state is KeyState.IN_PROGRESS
    saga.poll_seconds = 0.01
    with pytest.raises(Aborted) as retried:
        await place(saga, placing, wait_seconds=0.05)
    assert retried.value.reason == "REQUEST_IN_PROGRESS"
    assert len(gateway.captured()) == 1


async def test_a_paid_checkout_is_six_transactions_and_records_every_gateway_outcome() -> None:
    store, inventory = Store(), FakeInventory()
    saga, _ = checkout(store, inventory)
    opened = 0

    def counting_uow() -> FakeUnitOfWork:
        nonlocal opened
        opened += 1
        return FakeUnitOfWork(store)

    saga.uow = counting_uow
    placing = command()
    order = await place(saga, placing)

    assert order.status is OrderStatus.PAID
    # Claim (naming the order), the read of the shipping and tax rates, order with its
    # pending authorisation, the authorisation's outcome with the pending capture, the
    # capture's outcome with the paid order, and the stock commit: one transaction a step.
    assert opened == 6
    assert store.keys[placing.buyer_id, "k"].order_id == order.order_id
    calls = sorted(store.calls.values(), key=lambda call: call.operation)
    assert [(c.operation, c.outcome) for c in calls] == [
        ("authorize", "succeeded"),
        ("capture", "succeeded"),
    ]
    assert all(c.gateway_reference for c in calls)


async def test_a_caller_cancelled_while_its_key_is_claimed_still_gets_its_saga_run() -> None:
    """The claim commits, then the caller's deadline cancels it: the saga runs all the same.

    Otherwise the key stays claimed with no saga behind it, and every retry with that key
    answers ABORTED until the claim's lease runs out and the reconciler takes it over.
    """
    store, inventory = Store(), FakeInventory()
    saga, _ = checkout(store, inventory)
    committing, release = asyncio.Event(), asyncio.Event()

    class SlowCommit(FakeUnitOfWork):
        async def commit(self) -> None:
            # Only the first transaction, the key claim, stalls at its commit.
            if not committing.is_set():
                committing.set()
                await release.wait()

    saga.uow = lambda: SlowCommit(store)
    placing = command()
    caller = asyncio.create_task(place(saga, placing))
    await committing.wait()
    caller.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await caller
    await saga.drain(5)

    record = store.keys[placing.buyer_id, "k"]
    assert record.state is KeyState.COMPLETED
    assert record.order_id is not None
    assert store.orders[record.order_id].status is OrderStatus.PAID
