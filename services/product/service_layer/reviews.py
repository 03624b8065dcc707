"""Review use cases: one review per user and product, seller replies, admin moderation.

Moderation sticks to the author and the product, not to one review document: when an admin
hides a review, a moderation record keyed by (product, author) is stored first, and that
author can never post a new review of that product (FAILED_PRECONDITION REVIEW_MODERATED),
so deleting a hidden review and posting it again does not bring it back. Refusing is chosen
over silently hiding the new review: the author learns why, and nothing pretends to be
published that nobody else can see. Other products stay open to the author.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace

import structlog

from services.common.clock import Clock
from services.common.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    Violations,
)
from services.common.identity import Role
from services.common.pagination import clamp_page_size, decode_page_token, encode_page_token
from services.common.text import is_single_line
from services.product.domain.commands import (
    CreateReview,
    ListReviews,
    ReviewAction,
    UpdateReview,
)
from services.product.domain.model import PUBLIC_REVIEW_STATES, Review, ReviewState, to_millis
from services.product.domain.reasons import ErrorReason
from services.product.service_layer import validation
from services.product.service_layer.access import listed_product, product_not_found
from services.product.service_layer.ports import (
    ProductRepository,
    PurchaseStore,
    ReviewRepository,
)

log = structlog.get_logger("product")

MAX_REVIEW_TITLE = 120
MAX_REVIEW_BODY = 5000
MAX_REPLY = 2000
DEFAULT_REVIEW_PAGE = 20
MAX_REVIEW_PAGE = 100
_EDIT_ATTEMPTS = 5


def _check_content(violations: Violations, rating: int, title: str, body: str) -> None:
    violations.check(1 <= rating <= 5, "review.rating", "must be from 1 to 5")
    violations.check(is_single_line(title), "review.title", "must be a single line of text")
    violations.check(
        len(title) <= MAX_REVIEW_TITLE,
        "review.title",
        f"must be at most {MAX_REVIEW_TITLE} characters",
    )
    violations.check(
        len(body) <= MAX_REVIEW_BODY, "review.body", f"must be at most {MAX_REVIEW_BODY} characters"
    )


def _review_not_found(review_id: str) -> NotFound:
    return NotFound(
        "no such review", reason=ErrorReason.REVIEW_NOT_FOUND, metadata={"review_id": review_id}
    )


async def create_review(
    command: CreateReview,
    *,
    products: ProductRepository,
    reviews: ReviewRepository,
    purchases: PurchaseStore,
    clock: Clock,
) -> Review:
    """Write the caller's review; a second one of the same product is ALREADY_EXISTS."""
    caller = command.caller
    violations = Violations()
    validation.check_id(violations, command.product_id, "product_id")
    _check_content(violations, command.rating, command.title, command.body)
    violations.raise_if_any()
    if not caller.email_verified:
        raise PermissionDenied(
            "verify your email address before writing reviews",
            reason=ErrorReason.EMAIL_NOT_VERIFIED,
        )
    product = await listed_product(command.product_id, products)
    if product.seller_id == caller.user_id:
        raise PermissionDenied(
            "sellers cannot review their own products", reason=ErrorReason.OWN_PRODUCT_REVIEW
        )
    if await reviews.is_moderated(command.product_id, caller.user_id):
        raise FailedPrecondition(
            "an admin hid your earlier review of this product; you cannot review it again",
            reason=ErrorReason.REVIEW_MODERATED,
            metadata={"product_id": command.product_id},
        )
    now = to_millis(clock.now())
    review = Review(
        review_id=uuid.uuid4().hex,
        product_id=command.product_id,
        author_id=caller.user_id,
        rating=command.rating,
        title=command.title.strip(),
        body=command.body,
        verified_purchase=await purchases.has_received(caller.user_id, command.product_id),
        seller_reply="",
        state=ReviewState.VISIBLE,
        create_time=now,
        update_time=now,
    )
    if not await reviews.add(review):
        raise AlreadyExists(
            "you already reviewed this product; edit your review instead",
            reason=ErrorReason.REVIEW_EXISTS,
            metadata={"product_id": command.product_id},
        )
    if not review.verified_purchase and await purchases.has_received(
        caller.user_id, command.product_id
    ):
        # The delivery was recorded between our check and the insert, so the event's own
        # mark_verified found no review yet: flag it here, or it would stay unverified.
        await reviews.mark_verified(caller.user_id, [command.product_id])
        review = replace(review, verified_purchase=True)
    await products.change_rating(command.product_id, add=review.rating)
    log.info("review_created", product_id=command.product_id, review_id=review.review_id)
    return review


async def _existing(product_id: str, review_id: str, reviews: ReviewRepository) -> Review:
    violations = Violations()
    validation.check_id(violations, product_id, "product_id")
    validation.check_id(violations, review_id, "review_id")
    violations.raise_if_any()
    review = await reviews.get(product_id, review_id)
    if review is None:
        raise _review_not_found(review_id)
    return review


async def update_review(
    command: UpdateReview,
    *,
    products: ProductRepository,
    reviews: ReviewRepository,
    clock: Clock,
) -> Review:
    """Edit the caller's own review; the product's rating follows a changed star count."""
    caller = command.caller
    violations = Violations()
    if not command.paths:
        violations.add("update_mask", "is required")
    for path in command.paths:
        if path not in ("rating", "title", "body"):
            violations.add("update_mask", f"{path!r} cannot be updated")
    violations.raise_if_any()
    for _ in range(_EDIT_ATTEMPTS):
        current = await _existing(command.product_id, command.review_id, reviews)
        if current.author_id != caller.user_id:
            raise PermissionDenied(
                "only its author may edit a review", reason=ErrorReason.NOT_REVIEW_AUTHOR
            )
        paths = set(command.paths)
        updated = replace(
            current,
            rating=command.rating if "rating" in paths else current.rating,
            title=command.title.strip() if "title" in paths else current.title,
            body=command.body if "body" in paths else current.body,
            update_time=to_millis(clock.now()),
            version=current.version + 1,
        )
        _check_content(violations, updated.rating, updated.title, updated.body)
        violations.raise_if_any()
        # The version check pairs each rating change with the exact rating it replaces.
        if await reviews.replace(updated, expected_version=current.version):
            if current.counted and updated.rating != current.rating:
                await products.change_rating(
                    command.product_id, add=updated.rating, remove=current.rating
                )
            return updated
    raise Aborted("the review kept changing; retry", reason=ErrorReason.REVIEW_CONTENDED)


async def delete_review(
    command: ReviewAction,
    *,
    products: ProductRepository,
    reviews: ReviewRepository,
) -> None:
    """Delete the caller's own review, or any review for admins."""
    caller = command.caller
    for _ in range(_EDIT_ATTEMPTS):
        current = await _existing(command.product_id, command.review_id, reviews)
        if current.author_id != caller.user_id and not caller.is_admin:
            raise PermissionDenied(
                "only its author or an admin may delete a review",
                reason=ErrorReason.NOT_REVIEW_AUTHOR,
            )
        if await reviews.delete(current):
            if current.counted:
                await products.change_rating(command.product_id, remove=current.rating)
            return
    raise Aborted("the review kept changing; retry", reason=ErrorReason.REVIEW_CONTENDED)


async def reply_to_review(
    command: ReviewAction,
    *,
    products: ProductRepository,
    reviews: ReviewRepository,
    clock: Clock,
) -> Review:
    """Set the seller's public reply; the product's seller or an admin."""
    caller = command.caller
    violations = Violations()
    reply = command.text.strip()
    violations.check(bool(reply), "reply", "is required")
    violations.check(len(reply) <= MAX_REPLY, "reply", f"must be at most {MAX_REPLY} characters")
    violations.raise_if_any()
    for _ in range(_EDIT_ATTEMPTS):
        current = await _existing(command.product_id, command.review_id, reviews)
        product = await products.get(command.product_id)
        if product is None:
            raise product_not_found(command.product_id)
        if not product.managed_by(caller.user_id, is_admin=caller.is_admin):
            raise PermissionDenied(
                "only the product's seller may reply to its reviews",
                reason=ErrorReason.NOT_PRODUCT_OWNER,
            )
        updated = replace(current, seller_reply=reply, version=current.version + 1)
        if await reviews.replace(updated, expected_version=current.version):
            return updated
    raise Aborted("the review kept changing; retry", reason=ErrorReason.REVIEW_CONTENDED)


async def hide_review(
    command: ReviewAction,
    *,
    products: ProductRepository,
    reviews: ReviewRepository,
    clock: Clock,
) -> Review:
    """Hide an abusive review and take it out of the rating; admins only, repeatable.

    The moderation record is written before the review changes, so there is no moment at
    which the review is hidden but its author could post it again.
    """
    caller = command.caller
    caller.require_any_role(Role.ADMIN)
    violations = Violations()
    validation.validate_reason(violations, command.text)
    violations.raise_if_any()
    for _ in range(_EDIT_ATTEMPTS):
        current = await _existing(command.product_id, command.review_id, reviews)
        await reviews.record_moderation(
            current.product_id,
            current.author_id,
            review_id=current.review_id,
            admin_id=caller.user_id,
            now=to_millis(clock.now()),
        )
        if current.state is ReviewState.HIDDEN:
            return current
        updated = replace(current, state=ReviewState.HIDDEN, version=current.version + 1)
        if await reviews.replace(updated, expected_version=current.version):
            await products.change_rating(command.product_id, remove=current.rating)
            log.info(
                "review_hidden",
                review_id=current.review_id,
                admin=caller.user_id,
                reason=command.text.strip(),
            )
            return updated
    raise Aborted("the review kept changing; retry", reason=ErrorReason.REVIEW_CONTENDED)


@dataclass(frozen=True)
class ReviewPage:
    """A page of reviews and the token of the next page ("" on the last)."""

    reviews: list[Review]
    next_page_token: str


async def list_reviews(
    command: ListReviews, *, products: ProductRepository, reviews: ReviewRepository
) -> ReviewPage:
    """The visible reviews of a published product, newest first."""
    limit = clamp_page_size(command.page_size, default=DEFAULT_REVIEW_PAGE, maximum=MAX_REVIEW_PAGE)
    violations = Violations()
    validation.check_id(violations, command.product_id, "product_id")
    offset = 0
    position = decode_page_token(command.page_token)
    if position is not None:
        raw = position.get("o")
        if position.get("p") != command.product_id or not isinstance(raw, int) or raw < 0:
            violations.add("page_token", "does not belong to this product's reviews")
        else:
            offset = raw
    violations.raise_if_any()
    await listed_product(command.product_id, products)
    page = await reviews.list_page(
        command.product_id, states=PUBLIC_REVIEW_STATES, offset=offset, limit=limit + 1
    )
    more = len(page) > limit
    token = encode_page_token({"o": offset + limit, "p": command.product_id}) if more else ""
    return ReviewPage(page[:limit], token)
