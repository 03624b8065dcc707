"""Order notifications: an order event from the order service becomes mail, once."""

from __future__ import annotations

import uuid

import structlog

from services.common.clock import Clock
from services.user.domain.model import Preferences
from services.user.domain.order_mail import OrderNotice, Recipient, order_mails
from services.user.service_layer.ports import UnitOfWork

log = structlog.get_logger("user.order_notifications")


async def notify_order_event(
    cmd: OrderNotice, *, uow: UnitOfWork, clock: Clock, base_url: str
) -> int:
    """Queue the mails of one order event; returns how many, 0 for a repeated event.

    The event id is recorded and the mails are queued in one transaction, so an event
    delivered twice (a redelivery, two consumers, a crash before the acknowledgement)
    mails once; the email relay sends what the outbox holds. Recipients' addresses and
    preferences are read as they are now, not as they were when the order changed.
    """
    async with uow:
        if not await uow.processed_events.remember(cmd.event_id, cmd.kind.value, clock.now()):
            log.info("order_event_already_notified", event_id=cmd.event_id)
            return 0
        recipients: dict[uuid.UUID, Recipient] = {}
        for user_id in cmd.recipient_ids():
            user = await uow.users.get(user_id)
            if user is None:
                continue
            preferences = await uow.preferences.get(user_id) or Preferences(user_id)
            recipients[user_id] = Recipient(user_id, user.email, preferences.notification_channels)
        mails = order_mails(cmd, recipients, base_url=base_url)
        for mail in mails:
            await uow.outbox.add(mail)
        await uow.commit()
    log.info("order_event_notified", event_id=cmd.event_id, type=cmd.kind.value, mails=len(mails))
    return len(mails)
