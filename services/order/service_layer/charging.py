"""Charging a checkout's order: authorise and capture, and settle what an unanswered call did."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import structlog

from services.common.clock import Clock
from services.common.errors import FailedPrecondition, Unavailable
from services.order.domain.commands import PlaceOrder
from services.order.domain.model import GatewayCall, Order
from services.order.domain.reasons import ErrorReason
from services.order.domain.status import PaymentStatus
from services.order.service_layer.idempotency_keys import store_failure
from services.order.service_layer.payment_recovery import (
    OutcomeUnknown,
    Settled,
    authorization_made,
    capture_made,
    gateway_call,
    new_call,
    order_keys,
)
from services.order.service_layer.ports import (
    Authorization,
    Capture,
    Inventory,
    PaymentDeclined,
    PaymentError,
    PaymentGateway,
    PaymentUnavailable,
    UnitOfWorkFactory,
)
from services.order.service_layer.stock import release_stock

log = structlog.get_logger("orders")


async def charge(
    command: PlaceOrder,
    order: Order,
    *,
    uow: UnitOfWorkFactory,
    payments: PaymentGateway,
    inventory: Inventory,
    clock: Clock,
    checkpoint: Callable[[str], None],
    authorize_call: GatewayCall,
    settled: list[Settled],
) -> Capture:
    """Authorise and capture the total; find out what an unanswered call did.

    A definite failure (declined, refused, never received) cancels the order and
    returns the stock. An outcome the gateway cannot tell yet leaves the order PENDING
    and its key in progress for the reconciler, and the buyer is told just that.

    One transaction per step: `authorize_call` is the pending authorisation the caller
    committed with the order; the authorisation's outcome is written with the pending
    capture; the capture's outcome lands in `settled` for the caller's next transaction.
    """
    authorization: Authorization | None = None
    keys = order_keys(order.order_id)
    try:
        authorized: list[Settled] = []
        authorization = await _authorize(
            command,
            order,
            keys,
            uow=uow,
            payments=payments,
            clock=clock,
            recorded=authorize_call,
            settled=authorized,
        )
        checkpoint("after_authorize")
        capture_call = new_call(order.order_id, "capture", order.total, f"{keys}:capture", clock)
        async with uow() as work:
            for outcome in authorized:
                await outcome.record(work)
            await work.attempts.start(capture_call)
            await work.commit()
        return await _capture(
            order,
            authorization,
            uow=uow,
            payments=payments,
            clock=clock,
            recorded=capture_call,
            settled=settled,
        )
    except PaymentDeclined as declined:
        await release_stock(uow=uow, inventory=inventory, order_id=order.order_id)
        order.cancel_for_payment(
            status=PaymentStatus.DECLINED,
            failure_reason=declined.decline_code,
            gateway_reference="",
            at=clock.now(),
        )
        error = FailedPrecondition(
            "the payment was declined; try another payment method",
            reason=ErrorReason.PAYMENT_DECLINED,
            metadata={"order_id": str(order.order_id), "decline_code": declined.decline_code},
        )
        await store_failure(uow, command, order, error)
        raise error from None
    except OutcomeUnknown:
        raise _payment_pending(order) from None
    except PaymentError as failure:
        # A definite answer: the gateway refused the call, or never received it.
        log.warning("payment_failed", order_id=str(order.order_id), error=str(failure))
        if authorization is not None:
            try:
                await _void(
                    order.order_id,
                    authorization,
                    f"{keys}:void",
                    uow=uow,
                    payments=payments,
                    clock=clock,
                )
            except PaymentError as error:
                # The hold may still stand: the reconciler voids it before cancelling.
                log.error("payment_void_failed", order_id=str(order.order_id), error=str(error))
                raise _payment_pending(order) from None
        await release_stock(uow=uow, inventory=inventory, order_id=order.order_id)
        order.cancel_for_payment(
            status=PaymentStatus.FAILED,
            failure_reason=type(failure).__name__,
            gateway_reference=authorization.authorization_id if authorization else "",
            at=clock.now(),
        )
        unavailable = Unavailable(
            "the payment service did not answer; the order was cancelled and nothing "
            "charged: place it again with a new idempotency key",
            reason=ErrorReason.PAYMENT_UNAVAILABLE,
            metadata={"order_id": str(order.order_id)},
        )
        await store_failure(uow, command, order, unavailable)
        raise unavailable from None


async def _authorize(
    command: PlaceOrder,
    order: Order,
    keys: str,
    *,
    uow: UnitOfWorkFactory,
    payments: PaymentGateway,
    clock: Clock,
    recorded: GatewayCall,
    settled: list[Settled],
) -> Authorization:
    try:
        return await gateway_call(
            uow,
            order.order_id,
            "authorize",
            order.total,
            f"{keys}:authorize",
            lambda key: payments.authorize(order.total, command.payment_method_token, key),
            clock,
            recorded=recorded,
            settled=settled,
        )
    except PaymentUnavailable:
        found = await authorization_made(payments, order.order_id)
        if found is None:
            raise  # the gateway never got it: a failure, and nothing is held
        return found


async def _capture(
    order: Order,
    authorization: Authorization,
    *,
    uow: UnitOfWorkFactory,
    payments: PaymentGateway,
    clock: Clock,
    recorded: GatewayCall,
    settled: list[Settled],
) -> Capture:
    try:
        return await gateway_call(
            uow,
            order.order_id,
            "capture",
            order.total,
            recorded.idempotency_key,
            lambda key: payments.capture(authorization.authorization_id, order.total, key),
            clock,
            recorded=recorded,
            settled=settled,
        )
    except PaymentUnavailable:
        found = await capture_made(payments, order.order_id)
        if found is None:
            raise  # the gateway never got it: the hold is voided, nothing taken
        return found


async def _void(
    order_id: uuid.UUID,
    authorization: Authorization,
    key: str,
    *,
    uow: UnitOfWorkFactory,
    payments: PaymentGateway,
    clock: Clock,
) -> None:
    await gateway_call(
        uow,
        order_id,
        "void",
        authorization.amount,
        key,
        lambda k: payments.void(authorization.authorization_id, k),
        clock,
    )


def _payment_pending(order: Order) -> Unavailable:
    log.warning("payment_pending", order_id=str(order.order_id))
    return Unavailable(
        "the payment's outcome is not known yet, so nothing is final: the order stays pending "
        "and is settled shortly; retry with the same idempotency key to get its final state",
        reason=ErrorReason.PAYMENT_PENDING,
        metadata={"order_id": str(order.order_id)},
    )
