"""User events from the user service: a deleted account's reviews and listings."""

from __future__ import annotations

import structlog

from services.common.clock import Clock
from services.common.user_events import UserDeleted
from services.product.service_layer.ports import (
    ProcessedEvents,
    ProductRepository,
    PurchaseStore,
    ReviewRepository,
)

log = structlog.get_logger("product.user_events")


async def handle_user_deleted(
    event: UserDeleted,
    *,
    processed: ProcessedEvents,
    products: ProductRepository,
    reviews: ReviewRepository,
    purchases: PurchaseStore,
    clock: Clock,
) -> bool:
    """Anonymise the user's reviews, archive their listings; False when seen before.

    Reviews keep their rating (product ratings stay as buyers saw them) and lose their
    author, title and body. Listings are archived, never deleted: orders name them. The
    event is remembered only after its effects, and every effect is idempotent on its own
    (an anonymised review no longer names the user, an archived product stays archived),
    so a replay after a crash, or a redelivery, changes nothing.
    """
    if await processed.seen(event.event_id):
        return False
    now = clock.now()
    anonymised = await reviews.anonymise_author(event.user_id, now=now)
    archived = await products.archive_seller_products(event.user_id, now=now)
    await purchases.forget_buyer(event.user_id)
    fresh = await processed.remember(event.event_id, "USER_EVENT_TYPE_DELETED", now=now)
    log.info(
        "user_deleted_applied",
        event_id=event.event_id,
        reviews_anonymised=anonymised,
        listings_archived=archived,
    )
    return fresh
