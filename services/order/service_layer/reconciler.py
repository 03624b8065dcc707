"""The reconciler: finishes or compensates orders a crash left mid-saga, from durable state.

The saga writes enough before every step for a later process to settle it: the key row
names the order before stock is reserved, the order row exists before any money moves,
each gateway call is recorded as pending before it is made and carries an idempotency
key derived from the order id. So for an order stuck in PENDING the reconciler asks the
gateway what the capture and authorize keys did: a capture that happened finishes the
order (commit the stock, mark it paid); an authorisation without capture is voided and
the order cancelled with its stock released; nothing at all cancels and releases. A paid
order whose stock commit was lost gets the commit retried.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from services.common.errors import DomainError, FailedPrecondition, Unavailable
from services.common.workers import repeat
from services.order.adapters.inventory import Inventory
from services.order.adapters.payments import PaymentError, PaymentGateway
from services.order.domain.idempotency import StoredError
from services.order.domain.model import SYSTEM_ACTOR, OrderStatus, PaymentStatus
from services.order.service_layer.handlers import OrderCodec, gateway_call
from services.order.service_layer.unit_of_work import UnitOfWork, UnitOfWorkFactory

log = structlog.get_logger("reconciler")


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Reconciler:
    """Settles orders untouched for `stale_after`; `run_once()` for tests, `run()` for production."""

    uow: UnitOfWorkFactory
    inventory: Inventory
    payments: PaymentGateway
    codec: OrderCodec
    stale_after: timedelta
    in_flight: Callable[[], frozenset[uuid.UUID]] = frozenset
    clock: Callable[[], datetime] = _now
    batch_size: int = 50

    async def run_once(self) -> int:
        """Settle one batch of stuck orders and keys; returns how many were settled."""
        cutoff = self.clock() - self.stale_after
        busy = self.in_flight()
        async with self.uow() as uow:
            stuck = await uow.orders.stale(
                (OrderStatus.PENDING, OrderStatus.PAID), older_than=cutoff, limit=self.batch_size
            )
            keys = await uow.idempotency.stale_in_progress(older_than=cutoff, limit=self.batch_size)
        settled = 0
        for order_id in stuck:
            if order_id in busy:
                continue
            try:
                settled += await self._settle(order_id)
            except (DomainError, PaymentError) as error:
                # A dependency is down: leave the order for the next pass.
                log.warning("reconcile_deferred", order_id=str(order_id), error=str(error))
        for buyer_id, key, key_order in keys:
            if key_order is not None and key_order in busy:
                continue
            try:
                settled += await self._settle_key(buyer_id, key, key_order)
            except DomainError as error:
                log.warning("reconcile_key_deferred", key=key, error=str(error))
        return settled

    async def run(self, interval_seconds: float) -> None:
        """Reconcile forever, a pass every `interval_seconds`."""
        await repeat(
            self.run_once, interval_seconds=interval_seconds, failure_event="reconcile_failed"
        )

    async def _settle(self, order_id: uuid.UUID) -> int:
        async with self.uow() as uow:
            order = await uow.orders.get(order_id, for_update=True)
            if order is None:
                return 0
            if order.status is OrderStatus.PAID:
                # Paid, stock commit lost: committing is idempotent in the product service.
                await self.inventory.commit(order_id)
                order.stock_committed = True
                await uow.orders.save(order)
                await uow.commit()
                log.info("reconciled_stock_commit", order_id=str(order_id))
                return 1
            if order.status is not OrderStatus.PENDING:
                return 0
            keys = f"order-{order_id}"
            capture = await self.payments.find_capture(f"{keys}:capture")
            at = self.clock()
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
                    order.mark_paid(gateway_reference=capture.charge_id, at=at)
                    order.cancel_paid(
                        actor=SYSTEM_ACTOR,
                        reason="recovered after a crash; the stock was no longer held",
                        refund_reference=capture.charge_id,
                        at=at,
                    )
                    await self._finish(uow, order_id, error=_recovered_failure(order_id))
                    await uow.orders.save(order)
                    await uow.commit()
                    return 1
                order.mark_paid(gateway_reference=capture.charge_id, at=at)
                order.stock_committed = True
                await uow.orders.save(order)
                await self._finish(uow, order_id, response=self.codec.encode(order))
                await uow.commit()
                log.info("reconciled_paid", order_id=str(order_id))
                return 1
            authorization = await self.payments.find_authorization(f"{keys}:authorize")
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
            order.cancel_for_payment(
                status=PaymentStatus.VOIDED if authorization else PaymentStatus.FAILED,
                failure_reason="interrupted",
                gateway_reference=authorization.authorization_id if authorization else "",
                at=at,
            )
            await uow.orders.save(order)
            await self._finish(uow, order_id, error=_recovered_failure(order_id))
            await uow.commit()
        log.info("reconciled_cancelled", order_id=str(order_id), voided=authorization is not None)
        return 1

    async def _settle_key(self, buyer_id: uuid.UUID, key: str, order_id: uuid.UUID | None) -> int:
        """A key in progress whose order row never got written: release stock and the key."""
        async with self.uow() as uow:
            if order_id is not None and await uow.orders.get(order_id) is not None:
                return 0  # the order exists: _settle handles it
            if order_id is not None:
                await self.inventory.release(order_id)
            await uow.idempotency.release(buyer_id, key)
            await uow.commit()
        log.info("reconciled_key", key=key, order_id=str(order_id))
        return 1

    async def _finish(
        self,
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


def _recovered_failure(order_id: uuid.UUID) -> StoredError:
    failure = Unavailable(
        "the order was interrupted and cancelled; nothing was charged: place it again with "
        "a new idempotency key",
        reason="ORDER_INTERRUPTED",
        metadata={"order_id": str(order_id)},
    )
    return StoredError(failure.code.name, failure.message, failure.reason, dict(failure.metadata))
