"""Reservation use cases for the order service: reserve, commit and release stock."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

import structlog

from services.common.clock import Clock
from services.common.errors import Aborted, DomainError, FailedPrecondition, NotFound
from services.product.domain.commands import (
    CommitReservation,
    ReleaseReservation,
    ReserveInventory,
)
from services.product.domain.model import (
    LISTED_STATES,
    PricedItem,
    Product,
    Reservation,
    ReservationLine,
    ReservationState,
)
from services.product.domain.reasons import ErrorReason
from services.product.service_layer import validation
from services.product.service_layer.access import product_not_found
from services.product.service_layer.ports import (
    HoldOutcome,
    LedgerNote,
    ProductRepository,
    ReservationStore,
    StockStore,
)

log = structlog.get_logger("product")


async def reserve_inventory(
    command: ReserveInventory,
    *,
    reservations: ReservationStore,
    stock: StockStore,
    products: ProductRepository,
    clock: Clock,
    wait_seconds: float = 5.0,
    lease_seconds: float = 30.0,
    expires_in_seconds: float = 900.0,
) -> Reservation:
    """Hold every line for the order or none; a repeated order id gets the first result.

    The reservation document keyed by order id is claimed first, so of two concurrent calls
    for one order only one reserves; the other waits for its outcome. Each product holds at
    most one hold per order, so a retry after a crash never reserves twice.
    """
    validation.validate_reserve(command)
    if command.checkout_id:
        await _release_earlier_attempt(command, reservations, stock, clock)
    deadline = time.monotonic() + wait_seconds
    while True:
        existing = await reservations.claim(
            command.order_id, command.lines, lease_seconds=lease_seconds, now=clock.now()
        )
        if existing is None:
            return await _reserve_claimed(
                command, reservations, stock, products, expires_in_seconds, clock
            )
        _check_same_request(existing, command)
        if existing.state is ReservationState.PENDING:
            if await reservations.take_over(
                command.order_id, lease_seconds=lease_seconds, now=clock.now()
            ):
                log.warning("reservation_taken_over", order_id=command.order_id)
                return await _reserve_claimed(
                    command, reservations, stock, products, expires_in_seconds, clock
                )
            if time.monotonic() >= deadline:
                raise Aborted(
                    "another call is reserving stock for this order; retry",
                    reason=ErrorReason.RESERVATION_IN_PROGRESS,
                    metadata={"order_id": command.order_id},
                )
            await asyncio.sleep(0.02)
            continue  # the claim is retried: the other call may have given up on the order
        if existing.state in (ReservationState.RELEASING, ReservationState.RELEASED):
            raise FailedPrecondition(
                "this order's reservation was released",
                reason=ErrorReason.RESERVATION_RELEASED,
                metadata={"order_id": command.order_id},
            )
        return existing


async def _release_earlier_attempt(
    command: ReserveInventory, reservations: ReservationStore, stock: StockStore, clock: Clock
) -> None:
    """A retried checkout came back with a new order id: its earlier reservation goes back.

    The order service asks for a new order id only once the earlier attempt ended without
    an order, so that reservation holds stock nobody will buy; a committed one is a sale
    and stays. A release that cannot finish now is left to the order reconciler's retry
    and the expiry sweeper.
    """
    earlier = await reservations.link_checkout(
        command.checkout_id, command.order_id, now=clock.now()
    )
    if earlier is None:
        return
    try:
        await release_reservation(
            ReleaseReservation(earlier), reservations=reservations, stock=stock, clock=clock
        )
    except DomainError as error:
        log.info("earlier_reservation_kept", order_id=earlier, reason=error.reason)
        return
    log.info("earlier_reservation_released", order_id=earlier, replaced_by=command.order_id)


def _check_same_request(existing: Reservation, command: ReserveInventory) -> None:
    if not existing.same_request(command.lines):
        raise FailedPrecondition(
            "this order id already reserved different items",
            reason=ErrorReason.RESERVATION_MISMATCH,
            metadata={"order_id": command.order_id},
        )


async def _reserve_claimed(
    command: ReserveInventory,
    reservations: ReservationStore,
    stock: StockStore,
    products: ProductRepository,
    expires_in_seconds: float,
    clock: Clock,
) -> Reservation:
    order_id = command.order_id
    now = clock.now()  # one price instant for every line of the order
    held: list[str] = []
    items: list[PricedItem] = []
    try:
        # Refuse unknown products before moving any stock, so the common error touches nothing.
        known = await products.get_many([line.product_id for line in command.lines])
        for line in command.lines:
            product = known.get(line.product_id)
            if product is None or not product.is_published:
                raise product_not_found(line.product_id)
        for line in command.lines:
            note = LedgerNote(f"reserve order {order_id}", "order-service", now)
            result = await stock.hold(
                line.product_id, order_id, line.quantity, note, states=LISTED_STATES
            )
            if result.outcome is HoldOutcome.NOT_FOUND or result.product is None:
                raise product_not_found(line.product_id)
            if result.outcome is HoldOutcome.OUT_OF_STOCK:
                raise FailedPrecondition(
                    "not enough stock for this product",
                    reason=ErrorReason.OUT_OF_STOCK,
                    metadata={"product_id": line.product_id},
                )
            held.append(line.product_id)
            items.append(_priced(result.product, line, now))
        await reservations.mark_reserved(
            order_id, items, expires_in_seconds=expires_in_seconds, now=clock.now()
        )
    except BaseException:
        # Undo on every failure, cancellation included: an order holds all its items or none.
        undo = LedgerNote(
            f"undo partial reservation of order {order_id}", "order-service", clock.now()
        )
        for product_id in reversed(held):
            await stock.unhold(product_id, order_id, undo)
        await reservations.abandon(order_id)
        raise
    log.info("inventory_reserved", order_id=order_id, items=len(items))
    return Reservation(order_id, ReservationState.RESERVED, command.lines, tuple(items))


def _priced(product: Product, line: ReservationLine, now: datetime) -> PricedItem:
    return PricedItem(
        product_id=product.product_id,
        seller_id=product.seller_id,
        title=product.title,
        quantity=line.quantity,
        unit_price=product.effective_price_at(now),
    )


async def commit_reservation(
    command: CommitReservation,
    *,
    reservations: ReservationStore,
    stock: StockStore,
    clock: Clock,
) -> None:
    """Sell the order's held units; repeating a commit is harmless, a released order refused."""
    validation.validate_order_id(command.order_id)
    order_id = command.order_id
    reservation = await reservations.transition(
        order_id,
        from_states=(ReservationState.RESERVED, ReservationState.COMMITTING),
        to_state=ReservationState.COMMITTING,
    )
    if reservation is None:
        current = await reservations.get(order_id)
        if current is None:
            raise NotFound(
                "no reservation for this order",
                reason=ErrorReason.RESERVATION_NOT_FOUND,
                metadata={"order_id": order_id},
            )
        if current.state is ReservationState.COMMITTED:
            return
        if current.state in (ReservationState.RELEASING, ReservationState.RELEASED):
            raise FailedPrecondition(
                "this order's reservation was released",
                reason=ErrorReason.RESERVATION_RELEASED,
                metadata={"order_id": order_id},
            )
        raise _in_progress(order_id)
    note = LedgerNote(f"commit order {order_id}", "order-service", clock.now())
    for line in reservation.lines:
        await stock.sell_hold(line.product_id, order_id, note, quantity=line.quantity)
    await reservations.transition(
        order_id, from_states=(ReservationState.COMMITTING,), to_state=ReservationState.COMMITTED
    )
    log.info("reservation_committed", order_id=order_id)


async def release_reservation(
    command: ReleaseReservation,
    *,
    reservations: ReservationStore,
    stock: StockStore,
    clock: Clock,
    expired: bool = False,
) -> None:
    """Return the order's held units; unknown orders and repeats are no-ops, sold ones refused.

    The expiry sweeper releases lapsed reservations through here too (`expired`), so a
    commit racing with the expiry settles one way: the reservation's state is claimed first.
    """
    validation.validate_order_id(command.order_id)
    order_id = command.order_id
    reservation = await reservations.transition(
        order_id,
        from_states=(ReservationState.RESERVED, ReservationState.RELEASING),
        to_state=ReservationState.RELEASING,
    )
    if reservation is None:
        current = await reservations.get(order_id)
        if current is None or current.state is ReservationState.RELEASED:
            return
        if current.state in (ReservationState.COMMITTING, ReservationState.COMMITTED):
            raise FailedPrecondition(
                "this order's reservation was already committed",
                reason=ErrorReason.RESERVATION_COMMITTED,
                metadata={"order_id": order_id},
            )
        raise _in_progress(order_id)
    if expired:
        note = LedgerNote(
            f"expire reservation of order {order_id}", "reservation-sweeper", clock.now()
        )
    else:
        note = LedgerNote(f"release order {order_id}", "order-service", clock.now())
    for line in reservation.lines:
        await stock.unhold(line.product_id, order_id, note, quantity=line.quantity)
    await reservations.transition(
        order_id, from_states=(ReservationState.RELEASING,), to_state=ReservationState.RELEASED
    )
    log.info("reservation_released", order_id=order_id)


def _in_progress(order_id: str) -> Aborted:
    return Aborted(
        "the order's reservation is still being made; retry",
        reason=ErrorReason.RESERVATION_IN_PROGRESS,
        metadata={"order_id": order_id},
    )
