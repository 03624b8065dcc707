"""Giving reserved stock back and turning it into a sale, with failures remembered for retry."""

from __future__ import annotations

import asyncio
import uuid

import structlog

from services.common.errors import DomainError
from services.order.service_layer.ports import Inventory, UnitOfWorkFactory

log = structlog.get_logger("orders")


async def release_stock(
    order_id: uuid.UUID, *, uow: UnitOfWorkFactory, inventory: Inventory
) -> None:
    """Return the order's reserved units; a failure is remembered for the reconciler."""
    try:
        await inventory.release(order_id)
    except DomainError as error:
        # Remembered durably: the reconciler retries until the product service answers,
        # so the units do not stay held for the reservation's whole lifetime.
        log.warning("reservation_release_failed", order_id=str(order_id), reason=error.reason)
        try:
            async with uow() as work:
                await work.releases.add(order_id)
                await work.commit()
        except Exception:
            log.exception("reservation_release_not_recorded", order_id=str(order_id))


async def commit_stock(order_id: uuid.UUID, *, inventory: Inventory) -> bool:
    """Turn the order's reservation into a sale, retrying briefly; False when it did not."""
    # The order is paid either way; an uncommitted reservation still holds the units,
    # so a failure here can never oversell, it only needs a retry (the reconciler's).
    for attempt in range(3):
        try:
            await inventory.commit(order_id)
            return True
        except DomainError as error:
            log.warning(
                "reservation_commit_failed",
                order_id=str(order_id),
                attempt=attempt,
                reason=error.reason,
            )
            await asyncio.sleep(0.1 * (attempt + 1))
    log.error("reservation_commit_abandoned", order_id=str(order_id))
    return False
