"""Reviews, order events and recommendations over real gRPC, MongoDB and Redis Streams."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import grpc
import pytest
import pytest_asyncio
from google.protobuf import field_mask_pb2
from marketplace.order.v1 import events_pb2, order_pb2
from marketplace.product.v1 import product_pb2, product_service_pb2, product_service_pb2_grpc
from redis.asyncio import Redis

from services.common.identity import Role
from services.product.app import ProductWorkers
from services.product.config import Settings
from tests.support.failures import failure_of, violated_fields
from tests.support.product import (
    ServedProduct,
    create,
    product_settings,
    product_stub,
    serve_product,
)
from tests.support.servers import Backends
from tests.support.tokens import TestTokens, bearer

pytestmark = pytest.mark.asyncio(loop_scope="session")

if TYPE_CHECKING:
    from tests.support.product import ProductStub


@pytest.fixture(scope="module")
def settings(backends: Backends) -> Settings:
    return product_settings(
        backends,
        "products_reviews",
        internal_secret="product-reviews-secret",
        # Unlike the other modules, this one consumes order events (the service's default),
        # from a stream of its own, so other tests' events never mix in.
        consume_order_events=True,
        order_events_stream=f"test.order.events.{uuid.uuid4().hex[:8]}",
        event_consumer_name="product-test",
        event_block_ms=50,
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def served(settings: Settings, tokens: TestTokens) -> AsyncIterator[ServedProduct]:
    async with serve_product(settings, tokens) as running:
        yield running


@pytest.fixture
def stub(served: ServedProduct) -> ProductStub:
    return product_stub(served[0])


@pytest_asyncio.fixture(loop_scope="session")
async def redis(backends: Backends) -> AsyncIterator[Redis]:
    client = Redis.from_url(backends.redis_url)
    yield client
    await client.aclose()


def as_user(tokens: TestTokens, user_id: str, *roles: Role, verified: bool = True) -> Any:
    return bearer(tokens.mint(user_id, roles=roles or (Role.CUSTOMER,), email_verified=verified))


async def write_review(
    stub: ProductStub, product_id: str, metadata: Any, rating: int, title: str = "Good"
) -> product_pb2.Review:
    return await stub.CreateReview(
        product_service_pb2.CreateReviewRequest(
            product_id=product_id,
            review=product_pb2.Review(rating=rating, title=title, body="Works as described."),
        ),
        metadata=metadata,
    )


async def rating_of(stub: ProductStub, product_id: str) -> product_pb2.RatingSummary:
    read = await stub.GetProduct(product_service_pb2.GetProductRequest(product_id=product_id))
    return read.rating


async def publish_event(
    redis: Redis,
    settings: Settings,
    kind: int,
    order_id: str,
    buyer_id: str,
    product_ids: list[str],
    event_id: str | None = None,
    *,
    quantity: int = 1,
    restock_required: bool = False,
) -> str:
    event_id = event_id or uuid.uuid4().hex
    event = events_pb2.OrderEvent(
        event_id=event_id,
        event_type=kind,  # type: ignore[arg-type]
        order=order_pb2.Order(
            order_id=order_id,
            buyer_id=buyer_id,
            items=[order_pb2.OrderItem(product_id=p, quantity=quantity) for p in product_ids],
        ),
        restock_required=restock_required,
    )
    await redis.xadd(
        settings.order_events_stream,
        {
            "event_id": event_id,
            "type": events_pb2.OrderEventType.Name(kind),  # type: ignore[arg-type]
            "payload": event.SerializeToString(),
        },
    )
    return event_id


async def drain(workers: ProductWorkers) -> None:
    while await workers.consumer.run_once(block_ms=50):
        pass


# --- Reviews ---------------------------------------------------------------------------------


async def test_one_review_per_user_and_the_rating_follows_edits(
    stub: ProductStub, tokens: TestTokens
) -> None:
    item = await create(stub, tokens)
    author = str(uuid.uuid4())
    metadata = as_user(tokens, author)
    review = await write_review(stub, item.product_id, metadata, 2)
    assert review.author_id == author and review.state == product_pb2.REVIEW_STATE_VISIBLE
    assert not review.verified_purchase
    second = await failure_of(write_review(stub, item.product_id, metadata, 5))
    assert second.code == grpc.StatusCode.ALREADY_EXISTS
    await write_review(stub, item.product_id, as_user(tokens, str(uuid.uuid4())), 4)
    summary = await rating_of(stub, item.product_id)
    assert (summary.count, summary.average, list(summary.histogram)) == (2, 3.0, [0, 1, 0, 1, 0])

    edited = await stub.UpdateReview(
        product_service_pb2.UpdateReviewRequest(
            review=product_pb2.Review(
                product_id=item.product_id, review_id=review.review_id, rating=5, title="Ignored"
            ),
            update_mask=field_mask_pb2.FieldMask(paths=["rating"]),
        ),
        metadata=metadata,
    )
    assert edited.rating == 5 and edited.title == "Good"
    summary = await rating_of(stub, item.product_id)
    assert (summary.count, summary.average, list(summary.histogram)) == (2, 4.5, [0, 0, 0, 1, 1])

    stranger = await failure_of(
        stub.UpdateReview(
            product_service_pb2.UpdateReviewRequest(
                review=product_pb2.Review(
                    product_id=item.product_id, review_id=review.review_id, rating=1
                ),
                update_mask=field_mask_pb2.FieldMask(paths=["rating"]),
            ),
            metadata=as_user(tokens, str(uuid.uuid4())),
        )
    )
    assert stranger.code == grpc.StatusCode.PERMISSION_DENIED

    await stub.DeleteReview(
        product_service_pb2.DeleteReviewRequest(
            product_id=item.product_id, review_id=review.review_id
        ),
        metadata=metadata,
    )
    summary = await rating_of(stub, item.product_id)
    assert (summary.count, summary.average) == (1, 4.0)


async def test_reviews_are_validated_and_need_a_verified_email(
    stub: ProductStub, tokens: TestTokens
) -> None:
    item = await create(stub, tokens)
    invalid = await failure_of(
        stub.CreateReview(
            product_service_pb2.CreateReviewRequest(
                product_id=item.product_id,
                review=product_pb2.Review(rating=6, title="x" * 121),
            ),
            metadata=as_user(tokens, str(uuid.uuid4())),
        )
    )
    assert invalid.code == grpc.StatusCode.INVALID_ARGUMENT
    assert set(violated_fields(invalid)) == {"review.rating", "review.title"}
    unverified = await failure_of(
        write_review(stub, item.product_id, as_user(tokens, str(uuid.uuid4()), verified=False), 5)
    )
    assert unverified.code == grpc.StatusCode.PERMISSION_DENIED
    assert unverified.reason == "EMAIL_NOT_VERIFIED"
    anonymous = await failure_of(write_review(stub, item.product_id, (), 5))
    assert anonymous.code == grpc.StatusCode.UNAUTHENTICATED
    own = await failure_of(
        write_review(stub, item.product_id, as_user(tokens, item.seller_id, Role.SELLER), 5)
    )
    assert own.code == grpc.StatusCode.PERMISSION_DENIED
    missing = await failure_of(
        write_review(stub, str(uuid.uuid4()), as_user(tokens, str(uuid.uuid4())), 5)
    )
    assert missing.code == grpc.StatusCode.NOT_FOUND


async def test_the_rating_is_exact_under_concurrent_reviews(
    stub: ProductStub, tokens: TestTokens
) -> None:
    item = await create(stub, tokens)
    ratings = [1 + n % 5 for n in range(25)]
    await asyncio.gather(
        *(
            write_review(stub, item.product_id, as_user(tokens, str(uuid.uuid4())), stars)
            for stars in ratings
        )
    )
    # One user racing with itself still gets one review.
    author = as_user(tokens, str(uuid.uuid4()))
    racing = await asyncio.gather(
        *(write_review(stub, item.product_id, author, 5) for _ in range(6)),
        return_exceptions=True,
    )
    assert sum(isinstance(r, product_pb2.Review) for r in racing) == 1
    ratings.append(5)
    summary = await rating_of(stub, item.product_id)
    assert summary.count == len(ratings)
    assert summary.average == pytest.approx(sum(ratings) / len(ratings), abs=1e-4)
    assert list(summary.histogram) == [ratings.count(stars) for stars in range(1, 6)]
    found = await stub.SearchProducts(
        product_service_pb2.SearchProductsRequest(
            seller_id=item.seller_id, min_rating=round(sum(ratings) / len(ratings), 2) - 0.01
        )
    )
    assert [p.product_id for p in found.products] == [item.product_id]


async def test_sellers_reply_and_admins_hide(stub: ProductStub, tokens: TestTokens) -> None:
    item = await create(stub, tokens)
    abusive = await write_review(stub, item.product_id, as_user(tokens, str(uuid.uuid4())), 1)
    kind = await write_review(stub, item.product_id, as_user(tokens, str(uuid.uuid4())), 5)
    replied = await stub.ReplyToReview(
        product_service_pb2.ReplyToReviewRequest(
            product_id=item.product_id, review_id=kind.review_id, reply="Thank you!"
        ),
        metadata=as_user(tokens, item.seller_id, Role.SELLER),
    )
    assert replied.seller_reply == "Thank you!" and replied.rating == 5
    other_seller = await failure_of(
        stub.ReplyToReview(
            product_service_pb2.ReplyToReviewRequest(
                product_id=item.product_id, review_id=kind.review_id, reply="Buy mine instead"
            ),
            metadata=as_user(tokens, str(uuid.uuid4()), Role.SELLER),
        )
    )
    assert other_seller.code == grpc.StatusCode.PERMISSION_DENIED

    hide = product_service_pb2.HideReviewRequest(
        product_id=item.product_id, review_id=abusive.review_id, reason="insults"
    )
    not_admin = await failure_of(
        stub.HideReview(hide, metadata=as_user(tokens, item.seller_id, Role.SELLER))
    )
    assert not_admin.code == grpc.StatusCode.PERMISSION_DENIED
    admin = as_user(tokens, str(uuid.uuid4()), Role.ADMIN)
    hidden = await stub.HideReview(hide, metadata=admin)
    assert hidden.state == product_pb2.REVIEW_STATE_HIDDEN
    await stub.HideReview(hide, metadata=admin)  # hiding twice counts it out once
    summary = await rating_of(stub, item.product_id)
    assert (summary.count, summary.average, list(summary.histogram)) == (1, 5.0, [0, 0, 0, 0, 1])
    listed = await stub.ListReviews(
        product_service_pb2.ListReviewsRequest(product_id=item.product_id)
    )
    assert [r.review_id for r in listed.reviews] == [kind.review_id]


async def test_reviews_page_newest_first(stub: ProductStub, tokens: TestTokens) -> None:
    item = await create(stub, tokens)
    written = []
    for stars in (3, 4, 5):
        written.append(
            await write_review(stub, item.product_id, as_user(tokens, str(uuid.uuid4())), stars)
        )
        await asyncio.sleep(0.002)
    seen: list[str] = []
    token = ""
    while True:
        page = await stub.ListReviews(
            product_service_pb2.ListReviewsRequest(
                product_id=item.product_id, page_size=2, page_token=token
            )
        )
        seen.extend(r.review_id for r in page.reviews)
        token = page.next_page_token
        if not token:
            break
    assert seen == [r.review_id for r in reversed(written)]


# --- Order events ----------------------------------------------------------------------------


async def test_a_delivered_order_makes_reviews_verified_once_in_effect(
    stub: ProductStub,
    tokens: TestTokens,
    served: ServedProduct,
    redis: Redis,
    settings: Settings,
) -> None:
    workers = served[1]
    first, second = await create(stub, tokens), await create(stub, tokens)
    buyer = str(uuid.uuid4())
    metadata = as_user(tokens, buyer)
    early = await write_review(stub, first.product_id, metadata, 4)
    assert not early.verified_purchase
    order = str(uuid.uuid4())
    delivered = events_pb2.ORDER_EVENT_TYPE_DELIVERED
    event_id = await publish_event(
        redis, settings, delivered, order, buyer, [first.product_id, second.product_id]
    )
    # The same event delivered again (a publisher retry) changes nothing twice.
    await publish_event(
        redis,
        settings,
        delivered,
        order,
        buyer,
        [first.product_id, second.product_id],
        event_id=event_id,
    )
    await drain(workers)
    listed = await stub.ListReviews(
        product_service_pb2.ListReviewsRequest(product_id=first.product_id)
    )
    assert listed.reviews[0].verified_purchase
    later = await write_review(stub, second.product_id, metadata, 5)
    assert later.verified_purchase
    also = await stub.ListRecommendations(
        product_service_pb2.ListRecommendationsRequest(
            product_id=first.product_id, kind=product_service_pb2.RECOMMENDATION_KIND_ALSO_BOUGHT
        )
    )
    assert [p.product_id for p in also.products] == [second.product_id]
    pending = await redis.xpending(settings.order_events_stream, "product-service")
    assert pending["pending"] == 0  # everything was acknowledged


async def test_co_purchases_count_paid_orders_once_and_drop_cancelled_ones(
    stub: ProductStub,
    tokens: TestTokens,
    served: ServedProduct,
    redis: Redis,
    settings: Settings,
) -> None:
    workers = served[1]
    anchor = await create(stub, tokens)
    often, once, cancelled = [await create(stub, tokens) for _ in range(3)]
    paid = events_pb2.ORDER_EVENT_TYPE_PAID
    for _ in range(3):
        order = str(uuid.uuid4())
        await publish_event(
            redis, settings, paid, order, str(uuid.uuid4()), [anchor.product_id, often.product_id]
        )
        # The delivery of a paid order does not count its basket a second time.
        await publish_event(
            redis,
            settings,
            events_pb2.ORDER_EVENT_TYPE_DELIVERED,
            order,
            str(uuid.uuid4()),
            [anchor.product_id, often.product_id],
        )
    await publish_event(
        redis, settings, paid, str(uuid.uuid4()), "b", [anchor.product_id, once.product_id]
    )
    dropped = str(uuid.uuid4())
    await publish_event(
        redis, settings, paid, dropped, "c", [anchor.product_id, cancelled.product_id]
    )
    await publish_event(
        redis,
        settings,
        events_pb2.ORDER_EVENT_TYPE_CANCELLED,
        dropped,
        "c",
        [anchor.product_id, cancelled.product_id],
    )
    await redis.xadd(settings.order_events_stream, {"event_id": "junk", "payload": b"\xff\x00"})
    await drain(workers)
    also = await stub.ListRecommendations(
        product_service_pb2.ListRecommendationsRequest(
            product_id=anchor.product_id, kind=product_service_pb2.RECOMMENDATION_KIND_ALSO_BOUGHT
        )
    )
    assert [p.product_id for p in also.products] == [often.product_id, once.product_id]


async def test_a_cancellation_of_sold_stock_restocks_once(
    stub: ProductStub,
    tokens: TestTokens,
    served: ServedProduct,
    redis: Redis,
    settings: Settings,
) -> None:
    seller = str(uuid.uuid4())
    item = await create(stub, tokens, seller_id=seller, initial_stock=5)
    internal = product_service_pb2_grpc.ProductInternalServiceStub(served[0].internal_channel)
    order = str(uuid.uuid4())
    await internal.ReserveInventory(
        product_service_pb2.ReserveInventoryRequest(
            order_id=order,
            items=[product_service_pb2.ReservationItem(product_id=item.product_id, quantity=2)],
        ),
    )
    await internal.CommitReservation(product_service_pb2.CommitReservationRequest(order_id=order))
    cancelled = events_pb2.ORDER_EVENT_TYPE_CANCELLED
    for _ in range(2):  # a second cancellation event of the same order adds nothing
        await publish_event(
            redis,
            settings,
            cancelled,
            order,
            "buyer",
            [item.product_id],
            quantity=2,
            restock_required=True,
        )
    await drain(served[1])
    level = await stub.GetInventory(
        product_service_pb2.GetInventoryRequest(product_id=item.product_id),
        metadata=as_user(tokens, seller, Role.SELLER),
    )
    assert (level.on_hand, level.reserved, level.available) == (5, 0, 5)
    ledger = await stub.ListInventoryLedgerEntries(
        product_service_pb2.ListInventoryLedgerEntriesRequest(product_id=item.product_id),
        metadata=as_user(tokens, seller, Role.SELLER),
    )
    assert ledger.entries[0].reason == f"restock cancelled order {order}"
    assert ledger.entries[0].on_hand_delta == 2


# --- Recommendations -------------------------------------------------------------------------


async def test_recommendations_never_include_the_product_or_unpublished_ones(
    stub: ProductStub,
    tokens: TestTokens,
    served: ServedProduct,
    redis: Redis,
    settings: Settings,
) -> None:
    category = f"cat-{uuid.uuid4().hex[:8]}"
    seller = str(uuid.uuid4())
    seller_metadata = as_user(tokens, seller, Role.SELLER)

    def make(title: str, **fields: Any) -> Any:
        return create(
            stub,
            tokens,
            seller_id=seller,
            category=category,
            title=title,
            description=title,
            **fields,
        )

    anchor = await make(
        "Trail running shoes",
        subcategory=f"{category}-shoes",
        attributes={"colour": product_pb2.AttributeValue(text_value="orange")},
    )
    similar = await make(
        "Trail running shoes for mud",
        subcategory=f"{category}-shoes",
        attributes={"colour": product_pb2.AttributeValue(text_value="orange")},
    )
    unrelated = await make("Camping lantern", subcategory=f"{category}-lights")
    hidden = await make("Trail running shoes, old model", subcategory=f"{category}-shoes")
    await stub.UnpublishProduct(
        product_service_pb2.UnpublishProductRequest(product_id=hidden.product_id),
        metadata=seller_metadata,
    )
    await write_review(stub, unrelated.product_id, as_user(tokens, str(uuid.uuid4())), 5)
    await publish_event(
        redis,
        settings,
        events_pb2.ORDER_EVENT_TYPE_PAID,
        str(uuid.uuid4()),
        "buyer",
        [anchor.product_id, hidden.product_id],
    )
    await drain(served[1])

    request = product_service_pb2.ListRecommendationsRequest(product_id=anchor.product_id)
    found = [p.product_id for p in (await stub.ListRecommendations(request)).products]
    # The co-purchase is unpublished, so similar products come first, then the top rated.
    assert found == [similar.product_id, unrelated.product_id]
    similar_only = await stub.ListRecommendations(
        product_service_pb2.ListRecommendationsRequest(
            product_id=anchor.product_id, kind=product_service_pb2.RECOMMENDATION_KIND_SIMILAR
        )
    )
    assert [p.product_id for p in similar_only.products] == [similar.product_id]
    unpublished = await failure_of(
        stub.ListRecommendations(
            product_service_pb2.ListRecommendationsRequest(product_id=hidden.product_id)
        )
    )
    assert unpublished.code == grpc.StatusCode.NOT_FOUND
