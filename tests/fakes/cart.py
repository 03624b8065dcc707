"""In-memory fakes of the cart's ports: its storage, the catalog and the checkout saga."""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self

from services.common.errors import Aborted, DomainError, FailedPrecondition, Unavailable
from services.common.money import Money
from services.order.domain.cart import Cart, CheckoutOutcome, ProductQuote
from services.order.domain.commands import PlaceOrder
from services.order.domain.model import Order, OrderItem, ShippingAddress
from services.order.domain.reasons import ErrorReason
from tests.fakes.clock import EPOCH

ADDRESS = ShippingAddress("Ada Lovelace", "1 Main St", "Berlin", "DE")


@dataclass
class KeyRecord:
    """What the saga keeps about one idempotency key."""

    fingerprint: bytes
    outcome: CheckoutOutcome
    order: Order | None = None
    error: DomainError | None = None


@dataclass
class CartStore:
    """The rows a real database would hold: carts and the saga's key records."""

    carts: dict[uuid.UUID, Cart] = field(default_factory=dict)
    keys: dict[tuple[uuid.UUID, str], KeyRecord] = field(default_factory=dict)
    commits: int = 0


class FakeCarts:
    def __init__(self, store: CartStore, staged: dict[uuid.UUID, Cart]) -> None:
        self._store, self._staged = store, staged

    async def get(self, buyer_id: uuid.UUID, *, for_update: bool = False) -> Cart:
        if buyer_id in self._staged:
            return copy.deepcopy(self._staged[buyer_id])
        return copy.deepcopy(self._store.carts.get(buyer_id, Cart(buyer_id)))

    async def save(self, cart: Cart) -> None:
        self._staged[cart.buyer_id] = copy.deepcopy(cart)


class FakeCheckoutRecords:
    def __init__(self, store: CartStore) -> None:
        self._store = store

    async def outcome(self, buyer_id: uuid.UUID, key: str) -> tuple[CheckoutOutcome, bytes | None]:
        record = self._store.keys.get((buyer_id, key))
        if record is None:
            return CheckoutOutcome.ABSENT, None
        return record.outcome, record.fingerprint


class FakeCartUnitOfWork:
    """A transaction: writes reach the store only on commit.

    The fake's calls never suspend, so a use case's transaction runs without interleaving,
    as a row lock would make it.
    """

    def __init__(self, store: CartStore) -> None:
        self._store = store
        self._staged: dict[uuid.UUID, Cart] = {}
        self.carts = FakeCarts(store, self._staged)
        self.checkouts = FakeCheckoutRecords(store)

    async def __aenter__(self) -> Self:
        self._staged.clear()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._staged.clear()

    async def commit(self) -> None:
        self._store.carts.update(self._staged)
        self._staged.clear()
        self._store.commits += 1


class FakeCatalog:
    """The products on sale; `down` makes every call fail as an unreachable service does."""

    def __init__(self) -> None:
        self.products: dict[str, ProductQuote] = {}
        self.down = False
        self.calls = 0

    def sell(
        self,
        product_id: str,
        *,
        price: int = 1000,
        list_price: int | None = None,
        stock: int = 10,
        seller_id: str = "seller-1",
        currency: str = "USD",
    ) -> ProductQuote:
        quote = ProductQuote(
            product_id=product_id,
            seller_id=seller_id,
            title=f"Product {product_id}",
            list_price=Money(list_price if list_price is not None else price, currency),
            unit_price=Money(price, currency),
            stock_available=stock,
        )
        self.products[product_id] = quote
        return quote

    def withdraw(self, product_id: str) -> None:
        self.products.pop(product_id, None)

    async def quote(self, product_ids: Sequence[str]) -> dict[str, ProductQuote]:
        self.calls += 1
        if self.down:
            raise Unavailable("catalog down", reason=ErrorReason.INVENTORY_UNAVAILABLE)
        return {p: self.products[p] for p in product_ids if p in self.products}


type Behaviour = Literal["pay", "decline", "release", "pending", "out_of_stock"]


class FakeSaga:
    """The checkout saga's contract as the cart relies on it, over the shared key records.

    One saga per key: a second call with the key waits for the first one's outcome, or is
    refused when the request differs. `behaviour` says how the next saga ends; `gate`, when
    set, holds every saga until the test opens it.
    """

    def __init__(self, store: CartStore, catalog: FakeCatalog) -> None:
        self._store = store
        self._catalog = catalog
        self.behaviour: Behaviour = "pay"
        self.gate: asyncio.Event | None = None
        self.placed: list[PlaceOrder] = []
        self.started = 0
        # Set once a saga has claimed its key, so a test can act while it runs.
        self.claimed = asyncio.Event()

    async def place_order(self, command: PlaceOrder, *, wait_seconds: float) -> Order:
        slot = (command.buyer_id, command.idempotency_key)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait_seconds
        while (record := self._store.keys.get(slot)) is not None:
            if record.fingerprint != command.request_fingerprint:
                raise FailedPrecondition("key reused", reason=ErrorReason.IDEMPOTENCY_KEY_REUSED)
            if record.outcome is CheckoutOutcome.PLACED:
                assert record.order is not None
                return record.order
            if record.outcome is CheckoutOutcome.FAILED:
                assert record.error is not None
                raise record.error
            if loop.time() >= deadline:
                raise Aborted("in progress", reason=ErrorReason.REQUEST_IN_PROGRESS)
            await asyncio.sleep(0.005)
        self._store.keys[slot] = KeyRecord(command.request_fingerprint, CheckoutOutcome.RUNNING)
        self.started += 1
        self.claimed.set()
        if self.gate is not None:
            await self.gate.wait()
        return self._end(command, slot)

    def _end(self, command: PlaceOrder, slot: tuple[uuid.UUID, str]) -> Order:
        record = self._store.keys[slot]
        if self.behaviour == "release":
            del self._store.keys[slot]
            raise Unavailable("inventory down", reason=ErrorReason.INVENTORY_UNAVAILABLE)
        if self.behaviour == "pending":
            raise Unavailable("unknown", reason=ErrorReason.PAYMENT_PENDING)
        if self.behaviour in ("decline", "out_of_stock"):
            error = FailedPrecondition(
                "refused",
                reason=ErrorReason.PAYMENT_DECLINED
                if self.behaviour == "decline"
                else ErrorReason.OUT_OF_STOCK,
            )
            record.outcome, record.error = CheckoutOutcome.FAILED, error
            raise error
        order = self._order(command)
        record.outcome, record.order = CheckoutOutcome.PLACED, order
        self.placed.append(command)
        return order

    def settle_pending(self, buyer_id: uuid.UUID, key: str, *, paid: bool) -> None:
        """What the reconciler does with a saga whose payment outcome was unknown."""
        record = self._store.keys[(buyer_id, key)]
        if paid:
            record.outcome = CheckoutOutcome.PLACED
        else:
            record.outcome = CheckoutOutcome.FAILED
            record.error = FailedPrecondition("declined", reason=ErrorReason.PAYMENT_DECLINED)

    def _order(self, command: PlaceOrder) -> Order:
        items = []
        for line in command.lines:
            quote = self._catalog.products[line.product_id]
            items.append(
                OrderItem(
                    line.product_id, quote.seller_id, quote.title, line.quantity, quote.unit_price
                )
            )
        return Order.place(
            order_id=uuid.uuid4(),
            buyer_id=command.buyer_id,
            items=items,
            shipping_address=command.shipping_address or ADDRESS,
            at=EPOCH,
        )
