"""In-memory fakes of the returns' ports, sharing the order fakes' store, and a refunding gateway."""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field

from services.common.money import Money
from services.order.domain.payments import (
    Authorization,
    Capture,
    PaymentError,
    PaymentUnavailable,
)
from services.order.domain.returns import Return, ReturnCursor, ReturnState
from tests.fakes.order import FakeChanges, FakeOrders, Store
from tests.fakes.transaction import WritesAtOnce


@dataclass
class ReturnStore:
    """The returns a real database would hold, beside the order fakes' store."""

    orders: Store = field(default_factory=Store)
    returns: dict[uuid.UUID, Return] = field(default_factory=dict)


class FakeReturns:
    """Returns in a dict; every read hands out a copy, as a database would."""

    def __init__(self, store: ReturnStore) -> None:
        self._returns = store.returns

    async def add(self, item: Return) -> None:
        self._returns[item.return_id] = copy.deepcopy(item)

    async def save(self, item: Return) -> None:
        self._returns[item.return_id] = copy.deepcopy(item)

    async def get(self, return_id: uuid.UUID, *, for_update: bool = False) -> Return | None:
        found = self._returns.get(return_id)
        return copy.deepcopy(found) if found else None

    async def for_order(self, order_id: uuid.UUID) -> list[Return]:
        mine = [r for r in self._returns.values() if r.order_id == order_id]
        return [copy.deepcopy(r) for r in sorted(mine, key=lambda r: (r.created_at, r.return_id))]

    async def page(
        self,
        order_id: uuid.UUID,
        *,
        seller_id: str | None,
        limit: int,
        after: ReturnCursor | None,
    ) -> list[Return]:
        found = [
            r
            for r in await self.for_order(order_id)
            if seller_id in (None, r.seller_id)
            and (after is None or (r.created_at, r.return_id) > (after.created_at, after.return_id))
        ]
        return found[:limit]

    async def of_seller(
        self,
        seller_id: str,
        *,
        states: tuple[ReturnState, ...],
        limit: int,
        before: ReturnCursor | None,
    ) -> list[Return]:
        found = [
            copy.deepcopy(r)
            for r in self._returns.values()
            if r.seller_id == seller_id
            and (not states or r.state in states)
            and (
                before is None
                or (r.created_at, r.return_id) < (before.created_at, before.return_id)
            )
        ]
        found.sort(key=lambda r: (r.created_at, r.return_id), reverse=True)
        return found[:limit]

    async def by_key(self, buyer_id: uuid.UUID, key: str) -> Return | None:
        for item in self._returns.values():
            if item.buyer_id == buyer_id and item.idempotency_key == key:
                return copy.deepcopy(item)
        return None


class FakeReturnUnitOfWork(WritesAtOnce):
    """A unit of work over the returns and the order fakes; writes land at once.

    The fakes' calls never suspend, so a use case's transaction runs without
    interleaving, as its row locks would make it.
    """

    def __init__(self, store: ReturnStore) -> None:
        self.returns = FakeReturns(store)
        self.orders = FakeOrders(store.orders)
        self.changes = FakeChanges(store.orders)


@dataclass
class RefundingGateway:
    """A gateway that only refunds: `answer` is "ok", "refuse" or "silent" (no answer)."""

    answer: str = "ok"
    refunds: dict[str, Money] = field(default_factory=dict)

    async def refund(self, charge_id: str, amount: Money, idempotency_key: str) -> None:
        if self.answer == "silent":
            raise PaymentUnavailable("the gateway did not answer")
        if self.answer == "refuse":
            raise PaymentError("refund refused")
        self.refunds.setdefault(idempotency_key, amount)

    async def authorize(self, amount: Money, token: str, idempotency_key: str) -> Authorization:
        raise NotImplementedError

    async def capture(self, authorization_id: str, amount: Money, idempotency_key: str) -> Capture:
        raise NotImplementedError

    async def void(self, authorization_id: str, idempotency_key: str) -> None:
        raise NotImplementedError

    async def find_authorization(self, idempotency_key: str) -> Authorization | None:
        return None

    async def find_capture(self, idempotency_key: str) -> Capture | None:
        return None
