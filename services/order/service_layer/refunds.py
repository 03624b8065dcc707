"""Cancels and refunds: money back through the gateway, without locks across the network.

A cancel or refund runs in three steps: a short transaction claims it (a pending
`OrderChange`, at most one per order, so concurrent changes are refused at once instead
of queueing on a row lock), the gateway is called outside any transaction with a key
derived from the change, and a second short transaction records the outcome. A change
whose process died or whose gateway call went unanswered stays pending; the reconciler
finishes it with the same gateway key, which the gateway replays instead of refunding twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import structlog

from services.common.clock import Clock
from services.common.errors import (
    Aborted,
    FailedPrecondition,
    PermissionDenied,
    Unavailable,
)
from services.common.money import Money
from services.common.reasons import ErrorReason as CommonReason
from services.order.domain.changes import ChangeKind, ChangeState, OrderChange
from services.order.domain.commands import (
    CancelOrder,
    RefundOrder,
)
from services.order.domain.model import Order, Refund
from services.order.domain.reasons import ErrorReason
from services.order.domain.status import (
    SYSTEM_ACTOR,
    IllegalTransition,
    OrderRuleViolated,
    OrderStatus,
    PaymentStatus,
)
from services.order.service_layer.access import rule_error, view_for, visible
from services.order.service_layer.payment_recovery import gateway_call, order_keys
from services.order.service_layer.ports import (
    Inventory,
    PaymentError,
    PaymentGateway,
    PaymentUnavailable,
    UnitOfWork,
    UnitOfWorkFactory,
)
from services.order.service_layer.stock import release_stock

log = structlog.get_logger("orders")


class ChangeOutcomeUnknown(Exception):
    """The gateway did not answer a change's refund; the change stays pending."""


@dataclass
class ChangeRunner:
    """Carries claimed cancels and refunds out; `finish()` completes a claimed change."""

    uow: UnitOfWorkFactory
    inventory: Inventory
    payments: PaymentGateway
    clock: Clock
    # How long a claimed change is this process's before the reconciler may finish it.
    change_lease_seconds: float = 30.0
    _running: set[uuid.UUID] = field(default_factory=set, repr=False)

    def in_flight(self) -> frozenset[uuid.UUID]:
        """The changes this process is carrying out right now."""
        return frozenset(self._running)

    async def finish(self, change: OrderChange) -> Order | None:
        """Carry a claimed change out: refund at the gateway, then record it on the order.

        Returns the order as recorded, or None when the change was refused or finished
        by someone else. Raises ChangeOutcomeUnknown when the gateway did not answer.
        """
        self._running.add(change.change_id)
        try:
            return await self._carry_out(change)
        finally:
            self._running.discard(change.change_id)

    async def finish_answering(self, change: OrderChange) -> Order:
        """Finish a change for the caller who asked: an unknown outcome answers UNAVAILABLE."""
        try:
            done = await self.finish(change)
        except ChangeOutcomeUnknown:
            async with self.uow() as uow:
                await uow.changes.release_lease(change.change_id, self.clock.now())
                await uow.commit()
            raise Unavailable(
                "the payment gateway did not answer; the change is recorded and is finished "
                "shortly: read the order again in a moment",
                reason=ErrorReason.CHANGE_PENDING,
                metadata={"order_id": str(change.order_id)},
            ) from None
        if done is None:
            raise Unavailable(
                "the payment gateway did not refund; nothing changed, retry with the same key",
                reason=ErrorReason.PAYMENT_UNAVAILABLE,
            )
        return done

    async def _carry_out(self, change: OrderChange) -> Order | None:
        async with self.uow() as uow:
            order = await uow.orders.get(change.order_id)
        if order is None or order.payment is None:
            await self._end(change, ChangeState.FAILED, "the order has no payment")
            return None
        reference = order.payment.gateway_reference
        try:
            await gateway_call(
                self.uow,
                change.order_id,
                "refund",
                change.amount,
                change.gateway_key,
                lambda key: self.payments.refund(reference, change.amount, key),
                self.clock,
            )
        except PaymentUnavailable as error:
            log.warning("change_outcome_unknown", change_id=str(change.change_id), error=str(error))
            raise ChangeOutcomeUnknown(str(error)) from None
        except PaymentError as error:
            log.warning("refund_failed", order_id=str(change.order_id), error=str(error))
            await self._end(change, ChangeState.FAILED, str(error))
            return None
        if change.kind is ChangeKind.CANCEL and not order.stock_committed:
            await release_stock(change.order_id, uow=self.uow, inventory=self.inventory)
        async with self.uow() as uow:
            current = await uow.changes.get(change.change_id)
            order = await uow.orders.get(change.order_id, for_update=True)
            if current is None or current.state is not ChangeState.PENDING or order is None:
                return order  # another process recorded it already
            try:
                self._apply(order, change, reference)
            except (OrderRuleViolated, IllegalTransition) as error:
                # Only a bug lets the order move under a pending change; the money went back.
                log.error(
                    "change_not_applicable", change_id=str(change.change_id), error=str(error)
                )
                await uow.changes.finish(
                    change.change_id, ChangeState.FAILED, str(error), self.clock.now()
                )
                await uow.commit()
                return None
            await uow.orders.save(order)
            await uow.changes.finish(change.change_id, ChangeState.DONE, "", self.clock.now())
            await uow.commit()
        return order

    def _apply(self, order: Order, change: OrderChange, reference: str) -> None:
        at = self.clock.now()
        if change.kind is ChangeKind.CANCEL:
            order.cancel_paid(
                actor=change.actor, reason=change.reason, refund_reference=reference, at=at
            )
            return
        order.refund(
            Refund(
                refund_id=change.change_id,
                idempotency_key=change.request_key,
                request_fingerprint=change.request_fingerprint,
                actor=change.actor,
                seller_id=change.seller_id,
                amount=change.amount,
                reason=change.reason,
                gateway_reference=reference,
                at=at,
            )
        )

    async def _end(self, change: OrderChange, state: ChangeState, detail: str) -> None:
        async with self.uow() as uow:
            await uow.changes.finish(change.change_id, state, detail, self.clock.now())
            await uow.commit()

    def new_change(
        self,
        order: Order,
        kind: ChangeKind,
        *,
        now: datetime,
        gateway_key: str,
        amount_minor: int,
        actor: str,
        seller_id: str | None,
        reason: str,
        request_key: str = "",
        request_fingerprint: bytes = b"",
    ) -> OrderChange:
        """A change of `order` to claim at `now`, leased to this process."""
        return OrderChange(
            change_id=uuid.uuid4(),
            order_id=order.order_id,
            kind=kind,
            gateway_key=gateway_key,
            amount=Money(amount_minor, order.currency),
            actor=actor,
            seller_id=seller_id,
            reason=reason,
            lease_expires_at=now + timedelta(seconds=self.change_lease_seconds),
            created_at=now,
            request_key=request_key,
            request_fingerprint=request_fingerprint,
        )


async def cancel_order(
    command: CancelOrder, *, uow: UnitOfWorkFactory, changes: ChangeRunner, clock: Clock
) -> Order:
    """Cancel a paid order before shipment: refund the capture, return the stock."""
    caller = command.caller
    async with uow() as work:
        order = visible(await work.orders.get(command.order_id, for_update=True), caller)
        if not (caller.is_admin or str(order.buyer_id) == caller.user_id):
            raise PermissionDenied(
                "only the buyer or an admin can cancel an order",
                reason=ErrorReason.NOT_ORDER_BUYER,
            )
        if order.status is OrderStatus.PENDING:
            raise FailedPrecondition(
                "the order's payment is still being processed; try again shortly",
                reason=ErrorReason.PAYMENT_IN_PROGRESS,
            )
        if order.status is not OrderStatus.PAID:
            raise rule_error(IllegalTransition(order.status, OrderStatus.CANCELLED))
        change = _full_cancel(
            order,
            changes,
            clock,
            actor=caller.user_id,
            reason=command.reason or "cancelled by the buyer",
        )
        await _claim(work, change)
        await work.commit()
    done = await changes.finish_answering(change)
    log.info("order_cancelled", order_id=str(done.order_id))
    return view_for(done, caller)


async def refund_order(
    command: RefundOrder, *, uow: UnitOfWorkFactory, changes: ChangeRunner, clock: Clock
) -> Order:
    """Refund all or part of a captured order, once per idempotency key."""
    caller = command.caller
    if not (caller.is_admin or caller.is_seller):
        raise PermissionDenied("only admins and sellers refund", reason=CommonReason.ROLE_REQUIRED)
    async with uow() as work:
        order = visible(await work.orders.get(command.order_id, for_update=True), caller)
        seller_id = None if caller.is_admin else caller.user_id
        if seller_id is not None and seller_id not in order.seller_ids:
            raise PermissionDenied(
                "none of this order's items are yours", reason=ErrorReason.NOT_ORDER_SELLER
            )
        earlier = order.find_refund(command.idempotency_key)
        if earlier is not None:
            if earlier.request_fingerprint != command.request_fingerprint:
                raise FailedPrecondition(
                    "this idempotency key was used for a different refund; use a new key",
                    reason=ErrorReason.IDEMPOTENCY_KEY_REUSED,
                )
            return view_for(order, caller)
        amount = command.amount or order.refundable(seller_id)
        if amount.minor == 0 and command.amount is None:
            raise FailedPrecondition(
                "nothing is left to refund", reason=ErrorReason.NOTHING_TO_REFUND
            )
        try:
            order.check_refund(amount, seller_id)
        except (OrderRuleViolated, IllegalTransition) as error:
            raise rule_error(error) from None
        _check_captured(order)
        change = changes.new_change(
            order,
            ChangeKind.REFUND,
            now=clock.now(),
            gateway_key=f"{order_keys(order.order_id)}:refund:{command.idempotency_key}",
            amount_minor=amount.minor,
            actor=caller.user_id,
            seller_id=seller_id,
            reason=command.reason,
            request_key=command.idempotency_key,
            request_fingerprint=command.request_fingerprint,
        )
        await _claim(work, change)
        await work.commit()
    done = await changes.finish_answering(change)
    log.info("order_refunded", order_id=str(done.order_id), amount_minor=amount.minor)
    return view_for(done, caller)


async def cancel_unsellable(
    order_id: uuid.UUID,
    reason: str,
    *,
    uow: UnitOfWorkFactory,
    changes: ChangeRunner,
    clock: Clock,
) -> bool:
    """Cancel a paid order whose stock is gone, refunding it in full; False if not now.

    The system's cancel is claimed like a buyer's, so the two can never both refund.
    """
    async with uow() as work:
        order = await work.orders.get(order_id, for_update=True)
        if order is None or order.status is not OrderStatus.PAID:
            return False
        change = _full_cancel(order, changes, clock, actor=SYSTEM_ACTOR, reason=reason)
        if not await work.changes.claim(change):
            return False
        await work.commit()
    return await changes.finish(change) is not None


def _full_cancel(
    order: Order, changes: ChangeRunner, clock: Clock, *, actor: str, reason: str
) -> OrderChange:
    """The change that cancels a captured order and refunds all of it, under one gateway key."""
    _check_captured(order)
    return changes.new_change(
        order,
        ChangeKind.CANCEL,
        now=clock.now(),
        gateway_key=f"{order_keys(order.order_id)}:cancel-refund",
        amount_minor=order.captured.minor,
        actor=actor,
        seller_id=None,
        reason=reason,
    )


async def _claim(uow: UnitOfWork, change: OrderChange) -> None:
    if not await uow.changes.claim(change):
        raise change_in_progress()


def change_in_progress() -> Aborted:
    """The answer to a change refused because another one of the order is pending."""
    return Aborted(
        "another cancel or refund of this order is in progress; read the order again and retry",
        reason=ErrorReason.ORDER_CHANGE_IN_PROGRESS,
    )


def _check_captured(order: Order) -> None:
    payment = order.payment
    if payment is None or payment.status not in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED):
        raise FailedPrecondition(
            "the order has no captured payment", reason=ErrorReason.NOT_CAPTURED
        )
