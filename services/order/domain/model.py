"""Orders and the rules of their lifecycle."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

from services.common.money import Money
from services.order.domain.payments import GatewayCall as GatewayCall  # re-exported
from services.order.domain.pricing import PartSums, SellerPart, price_parts, sum_parts
from services.order.domain.reasons import ErrorReason
from services.order.domain.status import (
    SYSTEM_ACTOR,
    IllegalTransition,
    MixedCurrencies,
    OrderRuleViolated,
    OrderStatus,
    PaymentStatus,
    can_move,
)


@dataclass(frozen=True)
class ShippingAddress:
    """The destination of an order, copied when it is placed."""

    recipient_name: str
    line1: str
    city: str
    country_code: str
    line2: str = ""
    region: str = ""
    postal_code: str = ""
    phone_number: str = ""


@dataclass(frozen=True)
class OrderLine:
    """A product and quantity a buyer asks for."""

    product_id: str
    quantity: int


@dataclass(frozen=True)
class OrderItem:
    """One line of a placed order, priced from the catalog's snapshot."""

    product_id: str
    seller_id: str
    title: str
    quantity: int
    unit_price: Money
    carrier: str = ""
    tracking_number: str = ""
    shipped_at: datetime | None = None

    @property
    def shipped(self) -> bool:
        """Whether the seller shipped the line."""
        return self.shipped_at is not None

    @property
    def line_total(self) -> Money:
        """unit_price times quantity."""
        return self.unit_price.times(self.quantity)


@dataclass(frozen=True)
class StatusChange:
    """One entry of an order's timeline."""

    from_status: OrderStatus | None
    to_status: OrderStatus
    actor: str
    reason: str
    at: datetime


@dataclass(frozen=True)
class PaymentAttempt:
    """One try at taking the money for an order."""

    payment_id: uuid.UUID
    status: PaymentStatus
    amount: Money
    gateway_reference: str
    failure_reason: str
    at: datetime
    refunded: Money | None = None


@dataclass(frozen=True)
class Refund:
    """Money given back on a captured payment."""

    refund_id: uuid.UUID
    idempotency_key: str
    request_fingerprint: bytes
    actor: str
    seller_id: str | None
    amount: Money
    reason: str
    gateway_reference: str
    at: datetime


@dataclass
class Order:
    """A buyer's checkout: priced lines, a destination, a payment and a timeline."""

    order_id: uuid.UUID
    buyer_id: uuid.UUID
    items: list[OrderItem]
    shipping_address: ShippingAddress
    status: OrderStatus
    created_at: datetime
    updated_at: datetime
    history: list[StatusChange] = field(default_factory=list)
    payments: list[PaymentAttempt] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)
    # One per seller, priced at placement (domain/pricing.py); empty: free and untaxed.
    parts: list[SellerPart] = field(default_factory=list)
    stock_committed: bool = False
    # What changed since the order was loaded, for the repository to write.
    unsaved_history: list[StatusChange] = field(default_factory=list, repr=False)
    unsaved_payments: list[PaymentAttempt] = field(default_factory=list, repr=False)
    unsaved_refunds: list[Refund] = field(default_factory=list, repr=False)
    # The status the order was loaded with: saving checks no one moved it meanwhile.
    loaded_status: OrderStatus | None = field(default=None, repr=False)
    # Set when a cancellation comes after the sale was committed: stock must go back.
    restock_required: bool = field(default=False, repr=False)

    @classmethod
    def place(
        cls,
        *,
        order_id: uuid.UUID,
        buyer_id: uuid.UUID,
        items: list[OrderItem],
        shipping_address: ShippingAddress,
        at: datetime,
        parts: list[SellerPart] | None = None,
    ) -> Order:
        """A new pending order; its lines must share one currency, its parts cover them."""
        if not items:
            raise ValueError("an order needs at least one item")
        if len({item.unit_price.currency for item in items}) != 1:
            raise MixedCurrencies("the items of an order must share one currency")
        if parts is not None and {p.seller_id for p in parts} != {i.seller_id for i in items}:
            raise ValueError("an order needs exactly one part per seller")
        order = cls(
            order_id=order_id,
            buyer_id=buyer_id,
            items=list(items),
            shipping_address=shipping_address,
            status=OrderStatus.PENDING,
            created_at=at,
            updated_at=at,
            parts=list(parts) if parts is not None else [],
        )
        change = StatusChange(None, OrderStatus.PENDING, str(buyer_id), "order placed", at)
        order.history.append(change)
        order.unsaved_history.append(change)
        return order

    @property
    def currency(self) -> str:
        """The currency every line is priced in."""
        return self.items[0].unit_price.currency

    @property
    def seller_parts(self) -> list[SellerPart]:
        """The parts fixed at placement; an order without any ships free and untaxed."""
        if self.parts:
            return self.parts
        return price_parts(
            self.items, currency=self.currency, country_code="", profiles={}, tax_basis_points=0
        )

    @property
    def sums(self) -> PartSums:
        """The subtotal, shipping and tax of the order: the sums of its parts."""
        return sum_parts(self.seller_parts, self.currency)

    @property
    def subtotal(self) -> Money:
        """The sum of the line totals."""
        return self.sums.subtotal

    @property
    def total(self) -> Money:
        """What the buyer pays: items, shipping and tax of every part."""
        return self.sums.total

    @property
    def payment(self) -> PaymentAttempt | None:
        """The latest payment attempt, if any."""
        return self.payments[-1] if self.payments else None

    @property
    def captured(self) -> Money:
        """The money taken from the buyer; zero until the payment is captured."""
        for attempt in reversed(self.payments):
            if attempt.status in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED):
                return attempt.amount
        return Money(0, self.currency)

    @property
    def refunded(self) -> Money:
        """The money given back so far."""
        total = Money(0, self.currency)
        for refund in self.refunds:
            total = total + refund.amount
        return total

    @property
    def seller_ids(self) -> frozenset[str]:
        """The sellers with items in the order."""
        return frozenset(item.seller_id for item in self.items)

    def can_be_seen_by(self, user_id: str, *, is_admin: bool) -> bool:
        """Whether a caller may read the order: its buyer, admins and its sellers."""
        return is_admin or str(self.buyer_id) == user_id or user_id in self.seller_ids

    def part_of(self, seller_id: str) -> SellerPart:
        """One seller's part; an empty one for a seller without items in the order."""
        zero = Money(0, self.currency)
        own = [p for p in self.seller_parts if p.seller_id == seller_id]
        return own[0] if own else SellerPart(seller_id, zero, zero, zero)

    def seller_total(self, seller_id: str) -> Money:
        """What the buyer paid for one seller's part: items, shipping and tax."""
        return self.part_of(seller_id).total

    def seller_refunded(self, seller_id: str) -> Money:
        """What was refunded on one seller's lines."""
        total = Money(0, self.currency)
        for refund in self.refunds:
            if refund.seller_id == seller_id:
                total = total + refund.amount
        return total

    def find_refund(self, idempotency_key: str) -> Refund | None:
        """The refund made with this key, if any."""
        return next((r for r in self.refunds if r.idempotency_key == idempotency_key), None)

    def ship(
        self,
        *,
        seller_id: str,
        product_ids: frozenset[str],
        carrier: str,
        tracking_number: str,
        at: datetime,
    ) -> None:
        """Mark a seller's lines shipped (all of theirs when `product_ids` is empty)."""
        if self.status not in (
            OrderStatus.PAID,
            OrderStatus.FULFILLING,
            OrderStatus.PARTIALLY_REFUNDED,
        ):
            raise IllegalTransition(self.status, OrderStatus.SHIPPED)
        own = {item.product_id for item in self.items if item.seller_id == seller_id}
        if not own:
            raise OrderRuleViolated(
                ErrorReason.NOT_ORDER_SELLER, "none of this order's items are yours"
            )
        foreign = product_ids - own
        if foreign:
            raise OrderRuleViolated(
                ErrorReason.ITEM_NOT_YOURS, f"these items are not yours to ship: {sorted(foreign)}"
            )
        wanted = product_ids or own
        already = [i.product_id for i in self.items if i.product_id in wanted and i.shipped]
        if already:
            raise OrderRuleViolated(
                ErrorReason.ITEM_ALREADY_SHIPPED, f"already shipped: {sorted(already)}"
            )
        self.items = [
            replace(item, carrier=carrier, tracking_number=tracking_number, shipped_at=at)
            if item.product_id in wanted
            else item
            for item in self.items
        ]
        self.updated_at = at
        everything = all(item.shipped for item in self.items)
        target = OrderStatus.SHIPPED if everything else OrderStatus.FULFILLING
        if target is not self.status:
            reason = f"{seller_id} shipped {len(wanted)} item(s) with {carrier}"
            self._move(target, seller_id, reason, at)
        else:
            # Still fulfilling: no new status, but the change must reach the timeline.
            self._note(seller_id, f"{seller_id} shipped {len(wanted)} item(s) with {carrier}", at)

    def mark_delivered(self, *, actor: str, at: datetime) -> None:
        """Every item reached the buyer."""
        if not all(item.shipped for item in self.items) or self.status not in (
            OrderStatus.SHIPPED,
            OrderStatus.PARTIALLY_REFUNDED,
        ):
            raise IllegalTransition(self.status, OrderStatus.DELIVERED)
        self._move(OrderStatus.DELIVERED, actor, "the carrier delivered every item", at)

    def refundable(self, seller_id: str | None) -> Money:
        """What may still be refunded: by a seller on their lines, by an admin on the order."""
        remaining = self.captured - self.refunded
        if seller_id is None:
            return remaining
        own = self.seller_total(seller_id) - self.seller_refunded(seller_id)
        return own if own.minor < remaining.minor else remaining

    def check_refund(self, amount: Money, seller_id: str | None) -> None:
        """Refuse a refund the state machine or the captured amount does not allow."""
        if not can_move(self.status, OrderStatus.PARTIALLY_REFUNDED):
            raise IllegalTransition(self.status, OrderStatus.REFUNDED)
        if amount.currency != self.currency:
            raise OrderRuleViolated(
                ErrorReason.CURRENCY_MISMATCH, f"refund in {self.currency}, the order's currency"
            )
        if amount.minor <= 0:
            raise OrderRuleViolated(
                ErrorReason.REFUND_AMOUNT_INVALID, "the refund amount must be positive"
            )
        if amount.minor > self.refundable(seller_id).minor:
            raise OrderRuleViolated(
                ErrorReason.REFUND_EXCEEDS_CAPTURED,
                "the refund is more than what was captured and not yet refunded",
            )

    def refund(self, refund: Refund) -> None:
        """Record a refund the gateway made, and move to REFUNDED or PARTIALLY_REFUNDED."""
        self.check_refund(refund.amount, refund.seller_id)
        self.refunds.append(refund)
        self.unsaved_refunds.append(refund)
        everything = self.refunded.minor >= self.captured.minor
        target = OrderStatus.REFUNDED if everything else OrderStatus.PARTIALLY_REFUNDED
        self._move(target, refund.actor, refund.reason, refund.at)

    def mark_paid(self, *, gateway_reference: str, at: datetime) -> None:
        """Record the captured payment and move the order to PAID."""
        self._record_payment(PaymentStatus.CAPTURED, gateway_reference, "", at)
        self._move(OrderStatus.PAID, SYSTEM_ACTOR, "payment captured", at)

    def cancel_for_payment(
        self, *, status: PaymentStatus, failure_reason: str, gateway_reference: str, at: datetime
    ) -> None:
        """Record a declined or failed payment and cancel the order."""
        self._record_payment(status, gateway_reference, failure_reason, at)
        verb = "declined" if status is PaymentStatus.DECLINED else "failed"
        self._move(OrderStatus.CANCELLED, SYSTEM_ACTOR, f"payment {verb}: {failure_reason}", at)

    def cancel(self, *, actor: str, reason: str, at: datetime) -> None:
        """Cancel the order; only orders not yet shipped can be."""
        self._move(OrderStatus.CANCELLED, actor, reason, at)

    def cancel_paid(self, *, actor: str, reason: str, refund_reference: str, at: datetime) -> None:
        """Cancel a paid order whose capture the gateway refunded in full."""
        if self.status is not OrderStatus.PAID:
            raise IllegalTransition(self.status, OrderStatus.CANCELLED)
        captured = self.captured
        self._record_payment(PaymentStatus.REFUNDED, refund_reference, "", at)
        self.payments[-1] = replace(self.payments[-1], refunded=captured)
        self.unsaved_payments[-1] = self.payments[-1]
        self.restock_required = self.stock_committed
        self._move(OrderStatus.CANCELLED, actor, reason, at)

    def mark_saved(self) -> None:
        """Forget the pending changes once the repository wrote them."""
        self.unsaved_history.clear()
        self.unsaved_payments.clear()
        self.unsaved_refunds.clear()
        self.loaded_status = self.status
        self.restock_required = False

    def _record_payment(
        self, status: PaymentStatus, reference: str, failure_reason: str, at: datetime
    ) -> None:
        attempt = PaymentAttempt(uuid.uuid4(), status, self.total, reference, failure_reason, at)
        self.payments.append(attempt)
        self.unsaved_payments.append(attempt)

    def _move(self, target: OrderStatus, actor: str, reason: str, at: datetime) -> None:
        if not can_move(self.status, target):
            raise IllegalTransition(self.status, target)
        change = StatusChange(self.status, target, actor, reason, at)
        self.status = target
        self.updated_at = at
        self.history.append(change)
        self.unsaved_history.append(change)

    def _note(self, actor: str, reason: str, at: datetime) -> None:
        """A timeline entry without a status change, such as one seller of several shipping."""
        change = StatusChange(self.status, self.status, actor, reason, at)
        self.updated_at = at
        self.history.append(change)
        self.unsaved_history.append(change)
