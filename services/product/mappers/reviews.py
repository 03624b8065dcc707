"""Reviews: requests to commands, reviews to messages."""

from __future__ import annotations

from marketplace.product.v1 import product_pb2, product_service_pb2

from services.common.identity import Caller
from services.product.domain.commands import (
    CreateReview,
    ListReviews,
    ReviewAction,
    UpdateReview,
)
from services.product.domain.model import (
    Review,
    ReviewState,
)
from services.product.mappers.fields import (
    mask_paths_of,
    timestamp,
)
from services.product.service_layer.reviews import ReviewPage

_REVIEW_STATES = {
    ReviewState.VISIBLE: product_pb2.REVIEW_STATE_VISIBLE,
    ReviewState.HIDDEN: product_pb2.REVIEW_STATE_HIDDEN,
}


def review_to_proto(review: Review) -> product_pb2.Review:
    """The API view of a review."""
    return product_pb2.Review(
        review_id=review.review_id,
        product_id=review.product_id,
        author_id=review.author_id,
        rating=review.rating,
        title=review.title,
        body=review.body,
        verified_purchase=review.verified_purchase,
        seller_reply=review.seller_reply,
        state=_REVIEW_STATES[review.state],
        create_time=timestamp(review.create_time),
        update_time=timestamp(review.update_time),
    )


def list_reviews_command(request: product_service_pb2.ListReviewsRequest) -> ListReviews:
    """The command of a ListReviews request."""
    return ListReviews(
        product_id=request.product_id, page_size=request.page_size, page_token=request.page_token
    )


def reviews_response(page: ReviewPage) -> product_service_pb2.ListReviewsResponse:
    """The response of ListReviews."""
    return product_service_pb2.ListReviewsResponse(
        reviews=[review_to_proto(r) for r in page.reviews], next_page_token=page.next_page_token
    )


def create_review_command(
    request: product_service_pb2.CreateReviewRequest, *, caller: Caller
) -> CreateReview:
    """The command of a CreateReview request."""
    review = request.review
    return CreateReview(
        caller=caller,
        product_id=request.product_id,
        rating=review.rating,
        title=review.title,
        body=review.body,
    )


def update_review_command(
    request: product_service_pb2.UpdateReviewRequest, *, caller: Caller
) -> UpdateReview:
    """The command of an UpdateReview request."""
    review = request.review
    return UpdateReview(
        caller=caller,
        product_id=review.product_id,
        review_id=review.review_id,
        paths=mask_paths_of(request.update_mask),
        rating=review.rating,
        title=review.title,
        body=review.body,
    )


def review_action_command(
    product_id: str, review_id: str, text: str = "", *, caller: Caller
) -> ReviewAction:
    """The command of a DeleteReview, ReplyToReview or HideReview request."""
    return ReviewAction(caller=caller, product_id=product_id, review_id=review_id, text=text)
