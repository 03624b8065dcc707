"""The reconciler: settles every saga, change and release a crash or silence left open.

The saga writes enough before every step for a later process to settle it: the key row
names the order before stock is reserved and is leased by the running saga (the lease
lapses within seconds of a crash, or at once when the saga handed an unknown payment
outcome over), the order row exists before any money moves, and each gateway call
carries an idempotency key derived from the order id, which the gateway answers lookups
by. So for an order stuck in PENDING the reconciler asks the gateway what the capture
and authorize keys did, and waits while the gateway cannot tell yet: a capture that
happened finishes the order (commit the stock, mark it paid) or, when the stock is gone,
is refunded and the order cancelled; an authorisation without capture is voided and the
order cancelled with its stock released; nothing at all cancels and releases. A paid
order whose stock commit was lost gets the commit retried; a cancel or refund whose
process died is finished with its own gateway key; a reservation whose release failed is
released again. No transaction is held open across a call to another service.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from services.common.clock import Clock
from services.common.errors import DomainError, FailedPrecondition, Unavailable
from services.common.workers import repeat
from services.order.domain.changes import OrderChange
from services.order.domain.idempotency import StoredError
from services.order.domain.model import Order
from services.order.domain.reasons import ErrorReason
from services.order.domain.status import SYSTEM_ACTOR, OrderStatus, PaymentStatus
from services.order.service_layer.payment_recovery import (
    OutcomeUnknown,
    authorization_made,
    capture_made,
    gateway_call,
    order_keys,
)
from services.order.service_layer.ports import (
    Inventory,
    OrderCodec,
    PaymentError,
    PaymentGateway,
    UnitOfWork,
    UnitOfWorkFactory,
)
from services.order.service_layer.refunds import (
    ChangeOutcomeUnknown,
    ChangeRunner,
    cancel_unsellable,
)

log = structlog.get_logger("reconciler")


@dataclass
class Reconciler:
    """Settles what was left open; `run_once()` for tests, `run()` for production.

    Orders leased by a live saga wait for the lease; unleased ones wait `stale_after`.
    """

    uow: UnitOfWorkFactory
    inventory: Inventory
    payments: PaymentGateway
    codec: OrderCodec
    stale_after: timedelta
    clock: Clock
    in_flight: Callable[[], frozenset[uuid.UUID]] = frozenset
    batch_size: int = 50
    # Finishes cancels and refunds whose process died; None leaves them alone.
    changes: ChangeRunner | None = None

    async def run_once(self) -> int:
        """Settle one batch of stuck orders, keys, releases and changes; returns how many."""
        now = self.clock.now()
        cutoff = now - self.stale_after
        busy = self.in_flight()
        async with self.uow() as uow:
            stuck = await uow.orders.stale(
                (OrderStatus.PENDING, OrderStatus.PAID),
                older_than=cutoff,
                now=now,
                limit=self.batch_size,
            )
            keys = await uow.idempotency.stale_in_progress(
                older_than=cutoff, now=now, limit=self.batch_size
            )
            releases = await uow.releases.due(limit=self.batch_size)
            changes = await uow.changes.abandoned(now=now, limit=self.batch_size)
        settled = 0
        for order_id in stuck:
            if order_id in busy:
                continue
            try:
                settled += await self._settle(order_id)
            except (DomainError, PaymentError, OutcomeUnknown) as error:
                # A dependency is down or the gateway cannot tell yet: the next pass retries.
                log.warning("reconcile_deferred", order_id=str(order_id), error=str(error))
        for buyer_id, key, key_order in keys:
            if key_order is not None and key_order in busy:
                continue
            try:
                settled += await self._settle_key(buyer_id, key, key_order)
            except DomainError as error:
                log.warning("reconcile_key_deferred", key=key, error=str(error))
        for order_id in releases:
            settled += await self._release(order_id)
        for change in changes:
            settled += await self._finish_change(change)
        return settled

    async def run(self, interval_seconds: float) -> None:
        """Reconcile forever, a pass every `interval_seconds`; the first pass at once."""
        await repeat(
            self.run_once, interval_seconds=interval_seconds, failure_event="reconcile_failed"
        )

    async def _settle(self, order_id: uuid.UUID) -> int:
        async with self.uow() as uow:
            order = await uow.orders.get(order_id)
        if order is None:
            return 0
        if order.status is OrderStatus.PAID:
            # Paid, stock commit lost: committing is idempotent in the product service.
            try:
                await self.inventory.commit(order_id)
            except FailedPrecondition as error:
                if error.reason != ErrorReason.RESERVATION_RELEASED or self.changes is None:
                    raise
                # The hold lapsed before the sale was committed: the units may be sold to
                # someone else, so this sale cannot stand and the money goes back.
                done = await cancel_unsellable(
                    order_id,
                    "the stock was no longer held when the payment settled",
                    uow=self.uow,
                    changes=self.changes,
                    clock=self.clock,
                )
                log.warning("reconciled_unsellable_paid_order", order_id=str(order_id), done=done)
                return int(done)
            async with self.uow() as uow:
                fresh = await uow.orders.get(order_id, for_update=True)
                if fresh is None or fresh.stock_committed or fresh.status is not order.status:
                    return 0
                fresh.stock_committed = True
                await uow.orders.save(fresh)
                await uow.commit()
            log.info("reconciled_stock_commit", order_id=str(order_id))
            return 1
        if order.status is not OrderStatus.PENDING:
            return 0
        keys = order_keys(order_id)
        capture = await capture_made(self.payments, order_id)
        if capture is not None:
            try:
                await self.inventory.commit(order_id)
            except FailedPrecondition:
                # The stock went back meanwhile: the sale cannot stand, give the money back.
                await gateway_call(
                    self.uow,
                    order_id,
                    "refund",
                    capture.amount,
                    f"{keys}:reconcile-refund",
                    lambda k: self.payments.refund(capture.charge_id, capture.amount, k),
                    self.clock,
                )

                def refund(fresh: Order, at: datetime) -> None:
                    fresh.mark_paid(gateway_reference=capture.charge_id, at=at)
                    fresh.cancel_paid(
                        actor=SYSTEM_ACTOR,
                        reason="recovered after a crash; the stock was no longer held",
                        refund_reference=capture.charge_id,
                        at=at,
                    )

                done = await self._record(
                    order_id, refund, error=_recovered_failure(order_id, True)
                )
                log.info("reconciled_refunded", order_id=str(order_id), done=done)
                return int(done)

            def paid(fresh: Order, at: datetime) -> None:
                fresh.mark_paid(gateway_reference=capture.charge_id, at=at)
                fresh.stock_committed = True

            done = await self._record(order_id, paid, response=True)
            log.info("reconciled_paid", order_id=str(order_id), done=done)
            return int(done)
        authorization = await authorization_made(self.payments, order_id)
        if authorization is not None:
            await gateway_call(
                self.uow,
                order_id,
                "void",
                authorization.amount,
                f"{keys}:void",
                lambda k: self.payments.void(authorization.authorization_id, k),
                self.clock,
            )
        await self.inventory.release(order_id)

        def cancel(fresh: Order, at: datetime) -> None:
            fresh.cancel_for_payment(
                status=PaymentStatus.VOIDED if authorization else PaymentStatus.FAILED,
                failure_reason="interrupted",
                gateway_reference=authorization.authorization_id if authorization else "",
                at=at,
            )

        done = await self._record(order_id, cancel, error=_recovered_failure(order_id, False))
        log.info("reconciled_cancelled", order_id=str(order_id), voided=authorization is not None)
        return int(done)

    async def _record(
        self,
        order_id: uuid.UUID,
        change: Callable[[Order, datetime], None],
        *,
        response: bool = False,
        error: StoredError | None = None,
    ) -> bool:
        """Apply `change` to the order if it is still PENDING, and answer its key; one short transaction."""
        async with self.uow() as uow:
            fresh = await uow.orders.get(order_id, for_update=True)
            if fresh is None or fresh.status is not OrderStatus.PENDING:
                return False  # someone settled it meanwhile
            change(fresh, self.clock.now())
            await uow.orders.save(fresh)
            await _answer_key(
                uow, order_id, response=self.codec.encode(fresh) if response else None, error=error
            )
            await uow.commit()
        return True

    async def _settle_key(self, buyer_id: uuid.UUID, key: str, order_id: uuid.UUID | None) -> int:
        """A key in progress whose order row never got written: release stock and the key."""
        if order_id is not None:
            async with self.uow() as uow:
                if await uow.orders.get(order_id) is not None:
                    return 0  # the order exists: _settle handles it
            await self.inventory.release(order_id)
        async with self.uow() as uow:
            if order_id is not None and await uow.orders.get(order_id) is not None:
                return 0
            await uow.idempotency.release(buyer_id, key)
            await uow.commit()
        log.info("reconciled_key", key=key, order_id=str(order_id))
        return 1

    async def _release(self, order_id: uuid.UUID) -> int:
        """Give back a reservation whose release failed earlier."""
        try:
            await self.inventory.release(order_id)
        except DomainError as error:
            log.warning("reservation_release_deferred", order_id=str(order_id), error=str(error))
            return 0
        async with self.uow() as uow:
            await uow.releases.done(order_id)
            await uow.commit()
        log.info("reconciled_release", order_id=str(order_id))
        return 1

    async def _finish_change(self, change: OrderChange) -> int:
        """Finish a cancel or refund whose process died or never heard from the gateway."""
        if self.changes is None or change.change_id in self.changes.in_flight():
            return 0
        now = self.clock.now()
        lease = now + timedelta(seconds=self.changes.change_lease_seconds)
        async with self.uow() as uow:
            taken = await uow.changes.take_over(change.change_id, now=now, until=lease)
            await uow.commit()
        if not taken:
            return 0
        try:
            await self.changes.finish(change)
        except (ChangeOutcomeUnknown, DomainError) as error:
            log.warning(
                "reconcile_change_deferred", change_id=str(change.change_id), error=str(error)
            )
            return 0
        log.info("reconciled_change", change_id=str(change.change_id), kind=change.kind.value)
        return 1


async def _answer_key(
    work: UnitOfWork,
    order_id: uuid.UUID,
    *,
    response: bytes | None = None,
    error: StoredError | None = None,
) -> None:
    owner = await work.idempotency.for_order(order_id)
    if owner is None:
        return
    if response is not None:
        await work.idempotency.complete(owner[0], owner[1], response)
    elif error is not None:
        await work.idempotency.fail(owner[0], owner[1], error)


def _recovered_failure(order_id: uuid.UUID, refunded: bool) -> StoredError:
    money = "the charge was refunded in full" if refunded else "nothing was charged"
    failure = Unavailable(
        f"the order was interrupted and cancelled; {money}: place it again with a new "
        "idempotency key",
        reason=ErrorReason.ORDER_INTERRUPTED,
        metadata={"order_id": str(order_id)},
    )
    return StoredError(failure.kind.name, failure.message, failure.reason, dict(failure.metadata))
