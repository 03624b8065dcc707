"""Gateway calls recorded around the call, and finding out what a call with no answer did."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

import structlog

from services.common.clock import Clock
from services.common.money import Money
from services.order.domain.model import GatewayCall
from services.order.service_layer.ports import (
    Authorization,
    Capture,
    PaymentDeclined,
    PaymentError,
    PaymentGateway,
    PaymentTimeout,
    PaymentUnavailable,
    UnitOfWork,
    UnitOfWorkFactory,
)

log = structlog.get_logger("payments")


class OutcomeUnknown(Exception):
    """A gateway call went unanswered and the gateway cannot say yet what it did.

    Not a failure: the money may have moved. Whoever meets it leaves the order as it is
    and hands it to the reconciler, which asks again until the gateway knows.
    """


def order_keys(order_id: uuid.UUID) -> str:
    """The prefix of the gateway's idempotency keys of an order: one charge per order, ever."""
    return f"order-{order_id}"


@dataclass(frozen=True)
class Settled:
    """The outcome of a successful gateway call, written by the caller's next transaction."""

    attempt_id: uuid.UUID
    reference: str
    at: datetime

    async def record(self, work: UnitOfWork) -> None:
        """Write the outcome in `work`'s transaction."""
        await work.attempts.finish(self.attempt_id, "succeeded", self.reference, "", self.at)


def new_call(
    order_id: uuid.UUID, operation: str, amount: Money, key: str, clock: Clock
) -> GatewayCall:
    """A gateway call about to be made, to record as pending before it is."""
    return GatewayCall(uuid.uuid4(), order_id, operation, key, amount, clock.now())


async def gateway_call[T](
    uow: UnitOfWorkFactory,
    order_id: uuid.UUID,
    operation: str,
    amount: Money,
    key: str,
    call: Callable[[str], Awaitable[T]],
    clock: Clock,
    *,
    recorded: GatewayCall | None = None,
    settled: list[Settled] | None = None,
) -> T:
    """Make one payment gateway call, recorded as pending before and with its outcome after.

    The pending row is durable before the money can move, so a crash mid-call leaves a
    trace the reconciler settles by looking the gateway's idempotency key up.

    A saga saves transactions with the two keywords: `recorded` is a pending row the
    caller already committed with its own writes (the order, the previous call's
    outcome), and with `settled` a success's outcome is appended there for the caller's
    next transaction to write. Until that commits the row says pending, exactly as
    after a crash mid-call, which the reconciler settles the same way. Failures are
    written at once, in a transaction of their own.
    """
    attempt = recorded or new_call(order_id, operation, amount, key, clock)
    if recorded is None:
        async with uow() as work:
            await work.attempts.start(attempt)
            await work.commit()
    outcome, reference, detail = "failed", "", ""
    try:
        result = await call(attempt.idempotency_key)
        outcome = "succeeded"
        if isinstance(result, Authorization):
            reference = result.authorization_id
        elif isinstance(result, Capture):
            reference = result.charge_id
        return result
    except PaymentDeclined as declined:
        outcome, detail = "declined", declined.decline_code
        raise
    except PaymentTimeout as timeout:
        outcome, detail = "timed_out", str(timeout)
        raise
    except PaymentError as error:
        detail = str(error)
        raise
    finally:
        if outcome == "succeeded" and settled is not None:
            settled.append(Settled(attempt.attempt_id, reference, clock.now()))
        else:
            try:
                async with uow() as work:
                    await work.attempts.finish(
                        attempt.attempt_id, outcome, reference, detail, clock.now()
                    )
                    await work.commit()
            except Exception:
                log.exception("payment_attempt_not_recorded", attempt_id=str(attempt.attempt_id))


async def authorization_made(payments: PaymentGateway, order_id: uuid.UUID) -> Authorization | None:
    """The authorisation the order's authorize key made; None if the gateway never made one.

    Raises OutcomeUnknown while the gateway cannot tell (still processing, unreachable).
    """
    try:
        return await payments.find_authorization(f"{order_keys(order_id)}:authorize")
    except PaymentUnavailable as error:
        log.warning("payment_outcome_unknown", order_id=str(order_id), step="authorize")
        raise OutcomeUnknown(str(error)) from None


async def capture_made(payments: PaymentGateway, order_id: uuid.UUID) -> Capture | None:
    """The capture the order's capture key made; None if the gateway never made one.

    Raises OutcomeUnknown while the gateway cannot tell (still processing, unreachable).
    """
    try:
        return await payments.find_capture(f"{order_keys(order_id)}:capture")
    except PaymentUnavailable as error:
        log.warning("payment_outcome_unknown", order_id=str(order_id), step="capture")
        raise OutcomeUnknown(str(error)) from None
