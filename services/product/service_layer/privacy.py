"""Privacy: a user's reviews and listings for their export, anonymised after deletion."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import structlog

from services.common.clock import Clock
from services.common.errors import FieldViolation, InvalidArgument
from services.common.user_events import UserDeleted
from services.product.domain.model import Product, ProductState, Review
from services.product.service_layer.ports import (
    ProcessedEvents,
    ProductRepository,
    PurchaseStore,
    ReviewRepository,
)

log = structlog.get_logger("product.privacy")

_PAGE = 200
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class UserRecords:
    """What the product service holds about one user."""

    reviews: list[Review]
    listings: list[Product]


async def export_user(
    user_id: str, *, products: ProductRepository, reviews: ReviewRepository
) -> UserRecords:
    """Every review the user wrote and every product they sell, in every state.

    Only the user service calls this (the contract's callers), on behalf of the user it
    authenticated; the product service checks the id's shape only.
    """
    if not user_id.strip():
        raise InvalidArgument([FieldViolation("user_id", "is required")])
    listings: list[Product] = []
    after: tuple[int, str] | None = None
    while True:
        page = await products.list_by_seller(
            user_id,
            states=tuple(ProductState),
            category="",
            max_available=None,
            after=after,
            limit=_PAGE,
        )
        listings.extend(page)
        if len(page) < _PAGE:
            break
        last = page[-1]
        after = ((last.create_time - _EPOCH) // timedelta(milliseconds=1), last.product_id)
    return UserRecords(reviews=await reviews.by_author(user_id), listings=listings)


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
