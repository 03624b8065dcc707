"""Returns: the buyer asks, the seller decides, and receipt refunds through the order's refund path.

The refund of a received return is an order change like any refund (refunds.py): a short
transaction locks the return and the order, claims the change (one pending per order, so
a concurrent refund or receipt is refused at once) and marks the return RECEIVED with the
change's id; the gateway is called outside any transaction by the ChangeRunner; a last
short transaction marks the return REFUNDED. When the gateway leaves the outcome unknown,
the reconciler finishes the change, and the return settles from the change's outcome the
next time anyone reads or receives it.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import structlog

from services.common.clock import Clock
from services.common.errors import (
    Aborted,
    DomainError,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
)
from services.common.money import Money
from services.common.reasons import ErrorReason as CommonReason
from services.order.domain.changes import ChangeKind, ChangeState, OrderChange
from services.order.domain.commands import Caller
from services.order.domain.reasons import ErrorReason
from services.order.domain.returns import (
    CreateReturn,
    DecideReturn,
    GetReturn,
    ListReturns,
    ListSellerReturns,
    ReceiveReturn,
    Return,
    ReturnCursor,
    ReturnState,
    new_return,
)
from services.order.domain.status import IllegalTransition, OrderRuleViolated, PaymentStatus
from services.order.service_layer.access import rule_error, visible
from services.order.service_layer.payment_recovery import order_keys
from services.order.service_layer.ports import ReturnUnitOfWork, ReturnUnitOfWorkFactory
from services.order.service_layer.refunds import ChangeRunner, change_in_progress

log = structlog.get_logger("orders")

REFUND_REFUSED = "the payment gateway refused the refund; receive the return again to retry"


async def create_return(
    command: CreateReturn, *, uow: ReturnUnitOfWorkFactory, clock: Clock, window: timedelta
) -> Return:
    """Ask to return delivered lines, once per idempotency key."""
    caller = command.caller
    async with uow() as work:
        # The order's row lock serialises the returns of one order, so two concurrent
        # requests never both claim the same units.
        order = visible(await work.orders.get(command.order_id, for_update=True), caller)
        if str(order.buyer_id) != caller.user_id:
            raise PermissionDenied(
                "only the buyer of the order can return its items",
                reason=ErrorReason.NOT_ORDER_BUYER,
            )
        earlier = await work.returns.by_key(order.buyer_id, command.idempotency_key)
        if earlier is not None:
            if earlier.request_fingerprint != command.request_fingerprint:
                raise FailedPrecondition(
                    "this idempotency key was used for a different return; use a new key",
                    reason=ErrorReason.IDEMPOTENCY_KEY_REUSED,
                )
            return earlier
        created = new_return(
            order,
            command.lines,
            return_id=uuid.uuid4(),
            reason=command.reason,
            earlier=await work.returns.for_order(order.order_id),
            now=clock.now(),
            window=window,
            idempotency_key=command.idempotency_key,
            request_fingerprint=command.request_fingerprint,
        )
        await work.returns.add(created)
        await work.commit()
    log.info("return_requested", return_id=str(created.return_id), order_id=str(order.order_id))
    return created


async def get_return(command: GetReturn, *, uow: ReturnUnitOfWorkFactory, clock: Clock) -> Return:
    """One return, as its buyer, its seller or an admin sees it."""
    async with uow() as work:
        found = _visible(await work.returns.get(command.return_id), command.caller)
        if _unsettled(found):
            found = await _settle(work, command.return_id, clock)
            await work.commit()
    return found


async def list_returns(
    command: ListReturns, *, uow: ReturnUnitOfWorkFactory, clock: Clock
) -> tuple[list[Return], ReturnCursor | None]:
    """One page of an order's returns the caller may see, and the cursor of the next."""
    caller = command.caller
    async with uow() as work:
        order = visible(await work.orders.get(command.order_id), caller)
        mine = caller.is_admin or str(order.buyer_id) == caller.user_id
        page = await work.returns.page(
            order.order_id,
            seller_id=None if mine else caller.user_id,
            limit=command.page_size + 1,
            after=command.after,
        )
        shown = []
        for item in page[: command.page_size]:
            shown.append(await _settle(work, item.return_id, clock) if _unsettled(item) else item)
        await work.commit()
    if len(page) <= command.page_size:
        return shown, None
    last = shown[-1]
    return shown, ReturnCursor(last.created_at, last.return_id)


ME = "me"


async def list_seller_returns(
    command: ListSellerReturns, *, uow: ReturnUnitOfWorkFactory, clock: Clock
) -> tuple[list[Return], ReturnCursor | None]:
    """One page of a seller's returns, newest first, and the cursor of the next.

    A seller lists their own ("me" or their id), admins any seller's; another seller's id
    is refused before anything is read.
    """
    caller = command.caller
    if not (caller.is_seller or caller.is_admin):
        raise PermissionDenied(
            "only sellers and admins list a seller's returns", reason=CommonReason.ROLE_REQUIRED
        )
    seller_id = caller.user_id if command.seller_id == ME else command.seller_id
    if seller_id != caller.user_id and not caller.is_admin:
        raise PermissionDenied(
            "sellers list only their own returns",
            reason=ErrorReason.NOT_RETURN_SELLER,
            metadata={"seller_id": seller_id},
        )
    async with uow() as work:
        page = await work.returns.of_seller(
            seller_id,
            states=command.states,
            limit=command.page_size + 1,
            before=command.before,
        )
        shown = []
        for item in page[: command.page_size]:
            shown.append(await _settle(work, item.return_id, clock) if _unsettled(item) else item)
        await work.commit()
    if len(page) <= command.page_size:
        return shown, None
    last = shown[-1]
    return shown, ReturnCursor(last.created_at, last.return_id)


async def decide_return(
    command: DecideReturn, *, uow: ReturnUnitOfWorkFactory, clock: Clock
) -> Return:
    """Approve or reject a requested return; repeating the same decision changes nothing."""
    async with uow() as work:
        found = _decidable(await work.returns.get(command.return_id, for_update=True), command)
        now = clock.now()
        if command.approve:
            changed = found.approve(command.reason, now)
        else:
            changed = found.reject(command.reason, now)
        if changed:
            await work.returns.save(found)
            await work.commit()
            log.info("return_decided", return_id=str(found.return_id), state=found.state.value)
    return found


async def receive_return(
    command: ReceiveReturn, *, uow: ReturnUnitOfWorkFactory, changes: ChangeRunner, clock: Clock
) -> Return:
    """The items are back: refund them once, capped at what the order may still refund."""
    async with uow() as work:
        found = _decidable(await work.returns.get(command.return_id, for_update=True), command)
        if _unsettled(found):
            found = await _settle(work, found.return_id, clock)
        if found.state is ReturnState.REFUNDED:
            await work.commit()
            return found
        found.check_receivable()
        if found.refund_change_id is not None:
            raise Aborted(
                "the refund of this return is being carried out; read it again shortly",
                reason=ErrorReason.RETURN_REFUND_IN_PROGRESS,
            )
        change = await _claim_refund(work, found, command.caller, changes, clock)
        await work.returns.save(found)
        await work.commit()
    if change is None:
        log.info("return_closed_without_refund", return_id=str(found.return_id))
        return found
    try:
        await changes.finish_answering(change)
    except DomainError:
        # The refund was refused (the return can be received again) or its outcome is
        # unknown (the reconciler finishes it); either way the return says so now.
        async with uow() as work:
            await _settle(work, found.return_id, clock)
            await work.commit()
        raise
    async with uow() as work:
        done = await _settle(work, found.return_id, clock)
        await work.commit()
    log.info("return_refunded", return_id=str(done.return_id), state=done.state.value)
    return done


async def _claim_refund(
    work: ReturnUnitOfWork, found: Return, caller: Caller, changes: ChangeRunner, clock: Clock
) -> OrderChange | None:
    """Claim the refund of a received return; None when nothing is left to refund."""
    order = await work.orders.get(found.order_id, for_update=True)
    if order is None:
        raise NotFound("no such order", reason=ErrorReason.ORDER_NOT_FOUND)
    now = clock.now()
    # Capped as every refund is: by the seller's lines' value not yet refunded and by the
    # captured amount not yet refunded, whichever is less.
    refundable = order.refundable(found.seller_id)
    amount = min(found.items_total.minor, refundable.minor)
    if amount <= 0:
        found.refunded(Money(0, found.currency), now)
        return None
    payment = order.payment
    if payment is None or payment.status not in (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED):
        raise FailedPrecondition(
            "the order has no captured payment", reason=ErrorReason.NOT_CAPTURED
        )
    try:
        order.check_refund(Money(amount, order.currency), found.seller_id)
    except (OrderRuleViolated, IllegalTransition) as error:
        raise rule_error(error) from None
    key = found.next_refund_key()
    change = changes.new_change(
        order,
        ChangeKind.REFUND,
        now=now,
        gateway_key=f"{order_keys(order.order_id)}:{key}",
        amount_minor=amount,
        actor=caller.user_id,
        seller_id=found.seller_id,
        reason=f"return {found.return_id}: {found.reason}",
        request_key=key,
    )
    if not await work.changes.claim(change):
        raise change_in_progress()
    found.start_refund(change.change_id, now)
    return change


def _unsettled(item: Return) -> bool:
    return item.state is ReturnState.RECEIVED and item.refund_change_id is not None


async def _settle(work: ReturnUnitOfWork, return_id: uuid.UUID, clock: Clock) -> Return:
    """The return, locked, after taking in how its running refund ended, if it ended."""
    found = await work.returns.get(return_id, for_update=True)
    assert found is not None  # returns are never deleted
    if not _unsettled(found):
        return found
    assert found.refund_change_id is not None
    change = await work.changes.get(found.refund_change_id)
    if change is None or change.state is ChangeState.PENDING:
        return found
    now = clock.now()
    if change.state is ChangeState.FAILED:
        found.refund_failed(REFUND_REFUSED, now)
    else:
        order = await work.orders.get(found.order_id)
        refund = next(
            (r for r in (order.refunds if order else []) if r.refund_id == change.change_id),
            None,
        )
        if refund is None:  # the change was applied by no one: treat as refused
            found.refund_failed(REFUND_REFUSED, now)
        else:
            found.refunded(refund.amount, refund.at)
    await work.returns.save(found)
    return found


def _visible(found: Return | None, caller: Caller) -> Return:
    if found is None or not found.visible_to(caller):
        raise NotFound("no such return", reason=ErrorReason.RETURN_NOT_FOUND)
    return found


def _decidable(found: Return | None, command: DecideReturn | ReceiveReturn) -> Return:
    seen = _visible(found, command.caller)
    if not seen.may_decide(command.caller):
        raise PermissionDenied(
            "only the seller of the returned items or an admin decides on a return",
            reason=ErrorReason.NOT_RETURN_SELLER,
        )
    return seen
