"""Returns of delivered items: asked within a window, decided by the seller, refunded on receipt."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from services.common.errors import FailedPrecondition
from services.common.money import Money
from services.order.domain.commands import Caller
from services.order.domain.model import Order
from services.order.domain.reasons import ErrorReason
from services.order.domain.status import OrderStatus


class ReturnState(StrEnum):
    """Where a return is, as stored; it only moves forward."""

    REQUESTED = "requested"
    APPROVED = "approved"
    REJECTED = "rejected"
    RECEIVED = "received"
    REFUNDED = "refunded"


# A rejected return gives its units back: every other state holds them against the line.
HOLDING_STATES = frozenset(
    {ReturnState.REQUESTED, ReturnState.APPROVED, ReturnState.RECEIVED, ReturnState.REFUNDED}
)
# The order statuses from which delivered items can be sent back: delivered, or delivered
# and partly refunded since.
RETURNABLE_STATUSES = frozenset({OrderStatus.DELIVERED, OrderStatus.PARTIALLY_REFUNDED})


@dataclass(frozen=True)
class ReturnLine:
    """Units of one order line going back, at the price the buyer paid."""

    product_id: str
    quantity: int
    title: str
    unit_price: Money

    @property
    def line_total(self) -> Money:
        """unit_price times quantity."""
        return self.unit_price.times(self.quantity)


@dataclass(frozen=True)
class RequestedLine:
    """A product and how many of its units the buyer wants to send back."""

    product_id: str
    quantity: int


@dataclass
class Return:
    """A buyer's return of one seller's delivered lines of an order."""

    return_id: uuid.UUID
    order_id: uuid.UUID
    buyer_id: uuid.UUID
    seller_id: str
    lines: tuple[ReturnLine, ...]
    reason: str
    state: ReturnState
    created_at: datetime
    updated_at: datetime
    idempotency_key: str
    request_fingerprint: bytes
    decision_reason: str = ""
    decided_at: datetime | None = None
    received_at: datetime | None = None
    refunded_at: datetime | None = None
    refund_amount: Money | None = None
    # The order change carrying the refund out at the gateway, while it runs.
    refund_change_id: uuid.UUID | None = None
    # Each refund attempt has its own gateway key: a refused attempt is not replayed.
    refund_attempts: int = 0
    refund_failure: str = ""

    @property
    def currency(self) -> str:
        """The currency of the order the lines were bought with."""
        return self.lines[0].unit_price.currency

    @property
    def items_total(self) -> Money:
        """The value of the returned units."""
        total = Money(0, self.currency)
        for line in self.lines:
            total = total + line.line_total
        return total

    def visible_to(self, caller: Caller) -> bool:
        """Its buyer, the seller of its lines and admins see a return."""
        return caller.is_admin or caller.user_id in (str(self.buyer_id), self.seller_id)

    def may_decide(self, caller: Caller) -> bool:
        """The seller of the lines and admins approve, reject and receive it."""
        return caller.is_admin or caller.user_id == self.seller_id

    def approve(self, note: str, at: datetime) -> bool:
        """Accept a requested return; False when it was approved already."""
        return self._decide(ReturnState.APPROVED, note, at)

    def reject(self, reason: str, at: datetime) -> bool:
        """Refuse a requested return; False when it was rejected already."""
        return self._decide(ReturnState.REJECTED, reason, at)

    def _decide(self, target: ReturnState, reason: str, at: datetime) -> bool:
        if self.state is target:
            return False
        if self.state is not ReturnState.REQUESTED:
            raise state_invalid(self.state, f"a {self.state.value} return cannot be {target.value}")
        self.state = target
        self.decision_reason = reason
        self.decided_at = self.updated_at = at
        return True

    def check_receivable(self) -> None:
        """Refuse a receipt the state does not allow (the refund running is checked apart)."""
        if self.state not in (ReturnState.APPROVED, ReturnState.RECEIVED):
            raise state_invalid(self.state, f"a {self.state.value} return cannot be received")

    def start_refund(self, change_id: uuid.UUID, at: datetime) -> None:
        """The items are back and the refund claimed under `change_id` is about to run."""
        self.check_receivable()
        self.state = ReturnState.RECEIVED
        self.received_at = self.received_at or at
        self.refund_change_id = change_id
        self.refund_attempts += 1
        self.refund_failure = ""
        self.updated_at = at

    def next_refund_key(self) -> str:
        """The key of the next refund attempt: the same across replays of one attempt."""
        return f"return:{self.return_id}:{self.refund_attempts + 1}"

    def refunded(self, amount: Money, at: datetime) -> None:
        """The refund went through (or nothing was left to refund)."""
        self.check_receivable()
        self.state = ReturnState.REFUNDED
        self.received_at = self.received_at or at
        self.refund_amount = amount
        self.refund_change_id = None
        self.refunded_at = self.updated_at = at

    def refund_failed(self, detail: str, at: datetime) -> None:
        """The gateway refused the refund; receiving the return again retries it."""
        self.refund_change_id = None
        self.refund_failure = detail
        self.updated_at = at


def state_invalid(state: ReturnState, message: str) -> FailedPrecondition:
    """The error of a move the return's state does not allow."""
    return FailedPrecondition(
        message, reason=ErrorReason.RETURN_STATE_INVALID, metadata={"state": state.value}
    )


def delivered_at(order: Order) -> datetime | None:
    """When the order was (last) marked delivered, if it was."""
    for change in reversed(order.history):
        if change.to_status is OrderStatus.DELIVERED and change.from_status is not change.to_status:
            return change.at
    return None


def returned_units(returns: Iterable[Return]) -> dict[str, int]:
    """The units of each product held by the returns that were not rejected."""
    held: dict[str, int] = {}
    for earlier in returns:
        if earlier.state in HOLDING_STATES:
            for line in earlier.lines:
                held[line.product_id] = held.get(line.product_id, 0) + line.quantity
    return held


def new_return(
    order: Order,
    requested: Sequence[RequestedLine],
    *,
    return_id: uuid.UUID,
    reason: str,
    earlier: Sequence[Return],
    now: datetime,
    window: timedelta,
    idempotency_key: str,
    request_fingerprint: bytes,
) -> Return:
    """A requested return of `order`'s lines, if the order and its earlier returns allow it."""
    delivered = delivered_at(order)
    if order.status not in RETURNABLE_STATUSES or delivered is None:
        raise FailedPrecondition(
            f"only delivered orders can be returned; this one is {order.status.value}",
            reason=ErrorReason.ORDER_NOT_DELIVERED,
            metadata={"status": order.status.value},
        )
    if now > delivered + window:
        raise FailedPrecondition(
            f"the return window of {window.days} days after delivery has closed",
            reason=ErrorReason.RETURN_WINDOW_CLOSED,
            metadata={"window_days": str(window.days), "delivered_at": delivered.isoformat()},
        )
    items = {item.product_id: item for item in order.items}
    missing = sorted(line.product_id for line in requested if line.product_id not in items)
    if missing:
        raise FailedPrecondition(
            f"these products are not lines of the order: {missing}",
            reason=ErrorReason.RETURN_ITEM_NOT_IN_ORDER,
            metadata={"product_id": missing[0]},
        )
    sellers = {items[line.product_id].seller_id for line in requested}
    if len(sellers) != 1:
        raise FailedPrecondition(
            "the lines belong to more than one seller; ask one return per seller",
            reason=ErrorReason.RETURN_SPANS_SELLERS,
        )
    held = returned_units(earlier)
    for line in requested:
        left = items[line.product_id].quantity - held.get(line.product_id, 0)
        if line.quantity > left:
            raise FailedPrecondition(
                f"only {left} unit(s) of {line.product_id} can still be returned",
                reason=ErrorReason.RETURN_QUANTITY_EXCEEDED,
                metadata={"product_id": line.product_id, "returnable": str(left)},
            )
    return Return(
        return_id=return_id,
        order_id=order.order_id,
        buyer_id=order.buyer_id,
        seller_id=sellers.pop(),
        lines=tuple(
            ReturnLine(
                line.product_id,
                line.quantity,
                items[line.product_id].title,
                items[line.product_id].unit_price,
            )
            for line in requested
        ),
        reason=reason,
        state=ReturnState.REQUESTED,
        created_at=now,
        updated_at=now,
        idempotency_key=idempotency_key,
        request_fingerprint=request_fingerprint,
    )


@dataclass(frozen=True)
class ReturnCursor:
    """Where a page of returns ends: the last return's creation time and id."""

    created_at: datetime
    return_id: uuid.UUID


@dataclass(frozen=True)
class CreateReturn:
    """The buyer asks to send delivered lines back; the key makes retries safe."""

    order_id: uuid.UUID
    caller: Caller
    lines: tuple[RequestedLine, ...]
    reason: str
    idempotency_key: str
    request_fingerprint: bytes


@dataclass(frozen=True)
class ListReturns:
    """Read one page of an order's returns, oldest first."""

    order_id: uuid.UUID
    caller: Caller
    page_size: int
    after: ReturnCursor | None


@dataclass(frozen=True)
class ListSellerReturns:
    """Read one page of a seller's returns across their orders, newest first.

    `seller_id` is as asked ("me" or an id); `query` binds a page token to the seller and
    states it was made for.
    """

    seller_id: str
    caller: Caller
    states: tuple[ReturnState, ...]
    page_size: int
    before: ReturnCursor | None


@dataclass(frozen=True)
class GetReturn:
    """Read one return."""

    return_id: uuid.UUID
    caller: Caller


@dataclass(frozen=True)
class DecideReturn:
    """The seller (or an admin) approves or rejects a requested return."""

    return_id: uuid.UUID
    caller: Caller
    approve: bool
    reason: str


@dataclass(frozen=True)
class ReceiveReturn:
    """The seller (or an admin) has the items back: refund them."""

    return_id: uuid.UUID
    caller: Caller
