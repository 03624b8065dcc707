"""In-memory fakes of every order service port, for unit tests of its use cases."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime

from services.common.errors import NotFound
from services.common.money import Money
from services.order.domain.changes import ChangeState, OrderChange
from services.order.domain.commands import OrderCursor
from services.order.domain.idempotency import IdempotencyRecord, KeyState, StoredError
from services.order.domain.model import GatewayCall, Order, OrderLine, ShippingAddress
from services.order.domain.status import OrderStatus
from services.order.service_layer.ports import PricedLine, ReportRow
from tests.fakes.pricing import FakePricing
from tests.fakes.transaction import WritesAtOnce


@dataclass
class Store:
    """What the fake database holds; every fake unit of work shares it."""

    orders: dict[uuid.UUID, Order] = field(default_factory=dict)
    keys: dict[tuple[uuid.UUID, str], IdempotencyRecord] = field(default_factory=dict)
    calls: dict[uuid.UUID, GatewayCall] = field(default_factory=dict)
    releases: set[uuid.UUID] = field(default_factory=set)
    changes: dict[uuid.UUID, OrderChange] = field(default_factory=dict)
    pricing: FakePricing = field(default_factory=FakePricing)


def _page(orders: list[Order], limit: int, after: OrderCursor | None) -> list[Order]:
    newest = sorted(orders, key=lambda o: (o.created_at, o.order_id), reverse=True)
    if after is not None:
        newest = [
            o for o in newest if (o.created_at, o.order_id) < (after.created_at, after.order_id)
        ]
    return newest[:limit]


class FakeOrders:
    """Orders in a dict; `fail_save` makes every save but a cancellation's fail."""

    def __init__(self, store: Store, *, fail_save: bool = False) -> None:
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
        mine = [
            o
            for o in self._store.orders.values()
            if o.buyer_id == buyer_id and status in (None, o.status)
        ]
        return _page(mine, limit, after)

    async def list_for_seller(
        self,
        seller_id: str | None,
        *,
        limit: int,
        after: OrderCursor | None,
        status: OrderStatus | None,
    ) -> list[Order]:
        theirs = [
            o
            for o in self._store.orders.values()
            if (seller_id is None or seller_id in o.seller_ids) and status in (None, o.status)
        ]
        return _page(theirs, limit, after)

    async def stale(
        self,
        statuses: Sequence[OrderStatus],
        *,
        older_than: datetime,
        now: datetime,
        limit: int,
    ) -> list[uuid.UUID]:
        return [
            o.order_id
            for o in self._store.orders.values()
            if o.status in statuses and o.updated_at < older_than
        ][:limit]


class FakeAttempts:
    """Gateway calls in a dict."""

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
    """Idempotency keys in a dict; leases are not modelled."""

    def __init__(self, store: Store) -> None:
        self._keys = store.keys

    async def claim(
        self,
        buyer_id: uuid.UUID,
        key: str,
        fingerprint: bytes,
        *,
        lease_until: datetime | None = None,
        order_id: uuid.UUID | None = None,
    ) -> IdempotencyRecord | None:
        if (buyer_id, key) in self._keys:
            return self._keys[buyer_id, key]
        self._keys[buyer_id, key] = IdempotencyRecord(
            fingerprint, KeyState.IN_PROGRESS, order_id=order_id
        )
        return None

    async def lease(self, buyer_id: uuid.UUID, key: str, until: datetime) -> None:
        pass

    async def get(self, buyer_id: uuid.UUID, key: str) -> IdempotencyRecord | None:
        return self._keys.get((buyer_id, key))

    async def attach_order(self, buyer_id: uuid.UUID, key: str, order_id: uuid.UUID) -> None:
        old = self._keys[buyer_id, key]
        self._keys[buyer_id, key] = replace(old, order_id=order_id)

    async def complete(self, buyer_id: uuid.UUID, key: str, response: bytes) -> None:
        old = self._keys[buyer_id, key]
        self._keys[buyer_id, key] = replace(old, state=KeyState.COMPLETED, response=response)

    async def fail(self, buyer_id: uuid.UUID, key: str, error: StoredError) -> None:
        old = self._keys[buyer_id, key]
        self._keys[buyer_id, key] = replace(old, state=KeyState.COMPLETED, error=error)

    async def release(self, buyer_id: uuid.UUID, key: str) -> None:
        self._keys.pop((buyer_id, key), None)

    async def for_order(self, order_id: uuid.UUID) -> tuple[uuid.UUID, str] | None:
        for (buyer_id, key), record in self._keys.items():
            if record.order_id == order_id:
                return buyer_id, key
        return None

    async def stale_in_progress(
        self, *, older_than: datetime, now: datetime, limit: int
    ) -> list[tuple[uuid.UUID, str, uuid.UUID | None]]:
        return []


class FakeReleases:
    """Reservations still to release, in a set."""

    def __init__(self, store: Store) -> None:
        self._due = store.releases

    async def add(self, order_id: uuid.UUID) -> None:
        self._due.add(order_id)

    async def due(self, *, limit: int) -> list[uuid.UUID]:
        return list(self._due)[:limit]

    async def done(self, order_id: uuid.UUID) -> None:
        self._due.discard(order_id)


class FakeChanges:
    """Claimed cancels and refunds in a dict, at most one pending per order."""

    def __init__(self, store: Store) -> None:
        self._changes = store.changes

    async def claim(self, change: OrderChange) -> bool:
        if await self.pending_for(change.order_id) is not None:
            return False
        self._changes[change.change_id] = change
        return True

    async def pending_for(self, order_id: uuid.UUID) -> OrderChange | None:
        for change in self._changes.values():
            if change.order_id == order_id and change.state is ChangeState.PENDING:
                return change
        return None

    async def get(self, change_id: uuid.UUID) -> OrderChange | None:
        return self._changes.get(change_id)

    async def finish(
        self, change_id: uuid.UUID, state: ChangeState, detail: str, at: datetime
    ) -> None:
        self._changes[change_id] = replace(self._changes[change_id], state=state)

    async def release_lease(self, change_id: uuid.UUID, at: datetime) -> None:
        self._changes[change_id] = replace(self._changes[change_id], lease_expires_at=at)

    async def take_over(self, change_id: uuid.UUID, *, now: datetime, until: datetime) -> bool:
        change = self._changes.get(change_id)
        if change is None or change.state is not ChangeState.PENDING:
            return False
        if change.lease_expires_at >= now:
            return False
        self._changes[change_id] = replace(change, lease_expires_at=until)
        return True

    async def abandoned(self, *, now: datetime, limit: int) -> list[OrderChange]:
        return [
            c
            for c in self._changes.values()
            if c.state is ChangeState.PENDING and c.lease_expires_at < now
        ][:limit]


class FakeUnitOfWork(WritesAtOnce):
    """A unit of work over the shared store; writes land at once (no rollback)."""

    def __init__(self, store: Store, *, fail_save: bool = False) -> None:
        self.orders = FakeOrders(store, fail_save=fail_save)
        self.idempotency = FakeKeys(store)
        self.attempts = FakeAttempts(store)
        self.releases = FakeReleases(store)
        self.changes = FakeChanges(store)
        self.pricing = store.pricing


@dataclass
class FakeInventory:
    """Every line reserved at 10.00 EUR, unless `refuse_with` is set."""

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


@dataclass
class FakeSalesReports:
    """Canned report rows; remembers what it was asked."""

    answer: list[ReportRow] = field(default_factory=list)
    asked: list[tuple[date, date, bool, str | None, frozenset[OrderStatus]]] = field(
        default_factory=list
    )

    async def rows(
        self,
        start: date,
        end: date,
        *,
        by_seller: bool,
        seller_id: str | None,
        statuses: frozenset[OrderStatus],
    ) -> list[ReportRow]:
        self.asked.append((start, end, by_seller, seller_id, statuses))
        return list(self.answer)


class FakeSubscriptions:
    """Change notifications the test sends by hand with `notify`."""

    def __init__(self) -> None:
        self._queues: dict[uuid.UUID, list[asyncio.Queue[None]]] = {}

    @asynccontextmanager
    async def subscribe(self, order_id: uuid.UUID) -> AsyncIterator[asyncio.Queue[None]]:
        queue: asyncio.Queue[None] = asyncio.Queue()
        self._queues.setdefault(order_id, []).append(queue)
        try:
            yield queue
        finally:
            self._queues[order_id].remove(queue)

    def notify(self, order_id: uuid.UUID) -> None:
        for queue in self._queues.get(order_id, []):
            queue.put_nowait(None)
