"""The checkout saga's failure paths, with in-memory fakes of its ports."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import TracebackType
from typing import Self

import pytest

from services.common.clock import SystemClock
from services.common.errors import (
    Aborted,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from services.common.money import Money
from services.order.adapters.inventory import PricedLine
from services.order.adapters.payments import SandboxGateway
from services.order.domain.changes import ChangeState, OrderChange
from services.order.domain.commands import OrderCursor, PlaceOrder
from services.order.domain.idempotency import IdempotencyRecord, KeyState, StoredError
from services.order.domain.model import (
    GatewayCall,
    Order,
    OrderLine,
    OrderStatus,
    ShippingAddress,
)
from services.order.mappers import ProtoOrderCodec
from services.order.service_layer.handlers import Checkout


@dataclass
class Store:
    orders: dict[uuid.UUID, Order] = field(default_factory=dict)
    keys: dict[tuple[uuid.UUID, str], IdempotencyRecord] = field(default_factory=dict)
    calls: dict[uuid.UUID, GatewayCall] = field(default_factory=dict)
    releases: set[uuid.UUID] = field(default_factory=set)


class FakeOrders:
    def __init__(self, store: Store, *, fail_save: bool) -> None:
        self._store, self._fail_save = store, fail_save

    async def add(self, order: Order) -> None:
        self._store.orders[order.order_id] = order
        order.mark_saved()

    async def save(self, order: Order) -> None:
        if self._fail_save and order.status is not OrderStatus.CANCELLED:
            raise ConnectionError("database went away")
        self._store.orders[order.order_id] = order
        order.mark_saved()

    async def get(self, order_id: uuid.UUID, *, for_update: bool = False) -> Order | None:
        return self._store.orders.get(order_id)

    async def list_for_buyer(
        self,
        buyer_id: uuid.UUID,
        *,
        limit: int,
        after: OrderCursor | None,
        status: OrderStatus | None,
    ) -> list[Order]:
        return []

    async def list_for_seller(
        self,
        seller_id: str | None,
        *,
        limit: int,
        after: OrderCursor | None,
        status: OrderStatus | None,
    ) -> list[Order]:
        return []

    async def stale(
        self,
        statuses: Sequence[OrderStatus],
        *,
        older_than: datetime,
        now: datetime,
        limit: int,
    ) -> list[uuid.UUID]:
        return []


class FakeAttempts:
    def __init__(self, store: Store) -> None:
        self._calls = store.calls

    async def start(self, attempt: GatewayCall) -> None:
        self._calls[attempt.attempt_id] = attempt

    async def finish(
        self, attempt_id: uuid.UUID, outcome: str, reference: str, detail: str, at: datetime
    ) -> None:
        self._calls[attempt_id] = replace(
            self._calls[attempt_id], outcome=outcome, gateway_reference=reference, detail=detail
        )

    async def for_order(self, order_id: uuid.UUID) -> list[GatewayCall]:
        return [c for c in self._calls.values() if c.order_id == order_id]


class FakeKeys:
    def __init__(self, store: Store) -> None:
        self._keys = store.keys

    async def claim(
        self,
        buyer_id: uuid.UUID,
        key: str,
        fingerprint: bytes,
        *,
        lease_until: datetime | None = None,
    ) -> IdempotencyRecord | None:
        if (buyer_id, key) in self._keys:
            return self._keys[buyer_id, key]
        self._keys[buyer_id, key] = IdempotencyRecord(fingerprint, KeyState.IN_PROGRESS)
        return None

    async def lease(self, buyer_id: uuid.UUID, key: str, until: datetime) -> None:
        pass

    async def get(self, buyer_id: uuid.UUID, key: str) -> IdempotencyRecord | None:
        return self._keys.get((buyer_id, key))

    async def attach_order(self, buyer_id: uuid.UUID, key: str, order_id: uuid.UUID) -> None:
        pass

    async def complete(self, buyer_id: uuid.UUID, key: str, response: bytes) -> None:
        old = self._keys[buyer_id, key]
        self._keys[buyer_id, key] = IdempotencyRecord(
            old.request_fingerprint, KeyState.COMPLETED, response=response
        )

    async def fail(self, buyer_id: uuid.UUID, key: str, error: StoredError) -> None:
        old = self._keys[buyer_id, key]
        self._keys[buyer_id, key] = IdempotencyRecord(
            old.request_fingerprint, KeyState.COMPLETED, error=error
        )

    async def release(self, buyer_id: uuid.UUID, key: str) -> None:
        self._keys.pop((buyer_id, key), None)

    async def for_order(self, order_id: uuid.UUID) -> tuple[uuid.UUID, str] | None:
        return None

    async def stale_in_progress(
        self, *, older_than: datetime, now: datetime, limit: int
    ) -> list[tuple[uuid.UUID, str, uuid.UUID | None]]:
        return []


class FakeReleases:
    def __init__(self, store: Store) -> None:
        self._due = store.releases

    async def add(self, order_id: uuid.UUID) -> None:
        self._due.add(order_id)

    async def due(self, *, limit: int) -> list[uuid.UUID]:
        return list(self._due)[:limit]

    async def done(self, order_id: uuid.UUID) -> None:
        self._due.discard(order_id)


class FakeChanges:
    """Checkout never changes a placed order; the contract tests cover the real store."""

    async def claim(self, change: OrderChange) -> bool:
        raise NotImplementedError

    async def pending_for(self, order_id: uuid.UUID) -> OrderChange | None:
        return None

    async def get(self, change_id: uuid.UUID) -> OrderChange | None:
        return None

    async def finish(
        self, change_id: uuid.UUID, state: ChangeState, detail: str, at: datetime
    ) -> None:
        raise NotImplementedError

    async def release_lease(self, change_id: uuid.UUID, at: datetime) -> None:
        raise NotImplementedError

    async def take_over(self, change_id: uuid.UUID, *, now: datetime, until: datetime) -> bool:
        return False

    async def abandoned(self, *, now: datetime, limit: int) -> list[OrderChange]:
        return []


class FakeUnitOfWork:
    def __init__(self, store: Store, *, fail_save: bool = False) -> None:
        self.orders = FakeOrders(store, fail_save=fail_save)
        self.idempotency = FakeKeys(store)
        self.attempts = FakeAttempts(store)
        self.releases = FakeReleases(store)
        self.changes = FakeChanges()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        pass

    async def commit(self) -> None:
        pass


@dataclass
class FakeInventory:
    refuse_with: Exception | None = None
    reserved: set[uuid.UUID] = field(default_factory=set)
    committed: set[uuid.UUID] = field(default_factory=set)

    async def reserve(
        self, order_id: uuid.UUID, lines: Sequence[OrderLine], *, checkout_id: str = ""
    ) -> list[PricedLine]:
        if self.refuse_with is not None:
            raise self.refuse_with
        self.reserved.add(order_id)
        return [
            PricedLine(line.product_id, "s-1", "Lamp", line.quantity, Money(1000, "EUR"))
            for line in lines
        ]

    async def commit(self, order_id: uuid.UUID) -> None:
        self.committed.add(order_id)

    async def release(self, order_id: uuid.UUID) -> None:
        self.reserved.discard(order_id)


@dataclass
class FakeBuyers:
    """The user service's answers; the contract tests use the real one."""

    refuse_with: Exception | None = None
    book: dict[uuid.UUID, ShippingAddress] = field(default_factory=dict)
    checked: list[uuid.UUID] = field(default_factory=list)

    async def check_buyer(self, buyer_id: uuid.UUID) -> None:
        self.checked.append(buyer_id)
        if self.refuse_with is not None:
            raise self.refuse_with

    async def shipping_address(self, buyer_id: uuid.UUID, address_id: uuid.UUID) -> ShippingAddress:
        await self.check_buyer(buyer_id)
        if address_id not in self.book:
            raise NotFound("no such address", reason="ADDRESS_NOT_FOUND")
        return self.book[address_id]


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
    order = await saga.place_order(placing, wait_seconds=1)
    assert order.shipping_address == home
    assert buyers.checked == [placing.buyer_id]


async def test_a_suspended_buyer_is_refused_before_stock_is_touched_and_it_is_replayed() -> None:
    store, inventory = Store(), FakeInventory()
    refusal = FailedPrecondition("suspended", reason="BUYER_SUSPENDED")
    saga, gateway = checkout(store, inventory, buyers=FakeBuyers(refuse_with=refusal))
    placing = command()
    for _ in range(2):
        with pytest.raises(FailedPrecondition) as raised:
            await saga.place_order(placing, wait_seconds=1)
        assert raised.value.reason == "BUYER_SUSPENDED"
    assert (store.orders, inventory.reserved, gateway.charges) == ({}, set(), [])


async def test_an_unreachable_user_service_gives_the_key_back() -> None:
    store, inventory = Store(), FakeInventory()
    down = Unavailable("down", reason="USER_SERVICE_UNAVAILABLE")
    saga, _ = checkout(store, inventory, buyers=FakeBuyers(refuse_with=down))
    with pytest.raises(Unavailable):
        await saga.place_order(command(), wait_seconds=1)
    assert (store.keys, store.orders, inventory.reserved) == ({}, {}, set())


async def test_a_stored_out_of_stock_error_is_replayed_as_the_same_error() -> None:
    store = Store()
    refusal = FailedPrecondition("sold out", reason="OUT_OF_STOCK", metadata={"product_id": "p-1"})
    saga, _ = checkout(store, FakeInventory(refuse_with=refusal))
    placing = command()
    with pytest.raises(FailedPrecondition) as first:
        await saga.place_order(placing, wait_seconds=1)
    with pytest.raises(FailedPrecondition) as again:
        await saga.place_order(placing, wait_seconds=1)
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
        await saga.place_order(command(), wait_seconds=1)
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
        await saga.place_order(command(), wait_seconds=1)
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
        await saga.place_order(command(), wait_seconds=1)
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
        await saga.place_order(placing, wait_seconds=1)
    assert len(gateway.captured()) == 1
    [record] = store.keys.values()
    assert record.state is KeyState.IN_PROGRESS
    saga.poll_seconds = 0.01
    with pytest.raises(Aborted) as retried:
        await saga.place_order(placing, wait_seconds=0.05)
    assert retried.value.reason == "REQUEST_IN_PROGRESS"
    assert len(gateway.captured()) == 1
