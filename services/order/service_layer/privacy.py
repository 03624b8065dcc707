"""Privacy: a buyer's data for their export, and its erasure when their account is deleted."""

from __future__ import annotations

import uuid

import structlog

from services.common.clock import Clock
from services.common.errors import FieldViolation, InvalidArgument
from services.common.user_events import UserDeleted
from services.order.service_layer.ports.privacy import BuyerRecords, PrivacyUnitOfWork

log = structlog.get_logger("order.privacy")

USER_DELETED = "USER_EVENT_TYPE_DELETED"


async def export_buyer(user_id: str, *, uow: PrivacyUnitOfWork) -> BuyerRecords:
    """Everything the order service holds about a user as a buyer, read in one transaction.

    Only the user service calls this (the contract's callers), on behalf of the user it
    authenticated; the order service checks the id's shape only.
    """
    try:
        buyer_id = uuid.UUID(user_id)
    except ValueError:
        raise InvalidArgument([FieldViolation("user_id", "must be a user id (UUID)")]) from None
    async with uow:
        return await uow.buyer_data.read(buyer_id)


async def erase_buyer(event: UserDeleted, *, uow: PrivacyUnitOfWork, clock: Clock) -> bool:
    """Erase a deleted user's personal data; False when the event was applied before.

    Orders stay for the ledger (lines, money, status, the country for tax and reports);
    the rest of their shipping address goes, with the cart. The event id is recorded in
    the transaction of the erasure, so a redelivery changes nothing, and a crash before
    the commit leaves the event unacknowledged for the next delivery.
    """
    try:
        buyer_id = uuid.UUID(event.user_id)
    except ValueError:
        log.warning("user_event_bad_user_id", event_id=event.event_id)
        return False
    async with uow:
        if not await uow.buyer_data.remember_event(event.event_id, USER_DELETED, clock.now()):
            return False
        erased = await uow.buyer_data.erase(buyer_id)
        await uow.commit()
    log.info("buyer_erased", event_id=event.event_id, orders_erased=erased)
    return True
