"""MongoDB storage of categories, reviews, purchases, co-purchases and processed events."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Sequence
from datetime import UTC, datetime

from pymongo.errors import DuplicateKeyError

from services.product.adapters.documents import (
    category_from_doc,
    category_to_doc,
    review_from_doc,
    review_to_doc,
)
from services.product.adapters.mongo import (
    CATEGORIES,
    CO_PURCHASES,
    ORDER_BASKETS,
    PROCESSED_EVENTS,
    PURCHASES,
    REVIEWS,
    Database,
)
from services.product.domain.model import Category, Review, ReviewState

MAX_BASKET_PRODUCTS = 50  # pairs grow with the square of the basket; big ones are capped
# One document per (product, author) an admin hid a review of, keyed by both, so it needs
# no index of its own and outlives the review it was made for.
REVIEW_MODERATIONS = "review_moderations"


class MongoCategoryRepository:
    """Categories in the `categories` collection, keyed by their slug."""

    def __init__(self, db: Database) -> None:
        self._categories = db[CATEGORIES]

    async def add(self, category: Category) -> bool:
        """Store a new category; False when its id is taken."""
        try:
            await self._categories.insert_one(category_to_doc(category))
        except DuplicateKeyError:
            return False
        return True

    async def get(self, category_id: str) -> Category | None:
        """The category, or None."""
        doc = await self._categories.find_one({"_id": category_id})
        return category_from_doc(doc) if doc else None

    async def list(self, parent_id: str | None) -> list[Category]:
        """Every category, or the children of `parent_id`."""
        query = {} if parent_id is None else {"parent_id": parent_id}
        return [category_from_doc(doc) for doc in await self._categories.find(query).to_list()]

    async def replace(self, category: Category) -> bool:
        """Store new values of an existing category; False when it is gone."""
        result = await self._categories.replace_one(
            {"_id": category.category_id}, category_to_doc(category)
        )
        return result.matched_count == 1

    async def delete(self, category_id: str) -> bool:
        """Delete a category; False when it was not there."""
        result = await self._categories.delete_one({"_id": category_id})
        return result.deleted_count == 1

    async def count_children(self, category_id: str) -> int:
        """How many categories have this one as parent."""
        return await self._categories.count_documents({"parent_id": category_id})


class MongoReviewRepository:
    """Reviews in the `reviews` collection; a unique index allows one per author and product."""

    def __init__(self, db: Database) -> None:
        self._reviews = db[REVIEWS]
        self._moderations = db[REVIEW_MODERATIONS]

    async def add(self, review: Review) -> bool:
        """Store a new review; False when the author already reviewed the product."""
        try:
            await self._reviews.insert_one(review_to_doc(review))
        except DuplicateKeyError:
            return False
        return True

    async def get(self, product_id: str, review_id: str) -> Review | None:
        """The review of this product with this id, or None."""
        doc = await self._reviews.find_one({"_id": review_id, "product_id": product_id})
        return review_from_doc(doc) if doc else None

    async def replace(self, review: Review, *, expected_version: int) -> bool:
        """Store new values of a review still at `expected_version`; False if it moved on."""
        doc = review_to_doc(review)
        for fixed in ("_id", "create_time", "verified_purchase"):
            # verified_purchase is set by order events only, never overwritten by edits.
            doc.pop(fixed)
        result = await self._reviews.update_one(
            {"_id": review.review_id, "version": expected_version}, {"$set": doc}
        )
        return result.modified_count == 1

    async def delete(self, review: Review) -> bool:
        """Delete a review still at its version; False if it moved on or is gone."""
        result = await self._reviews.delete_one(
            {"_id": review.review_id, "version": review.version}
        )
        return result.deleted_count == 1

    async def record_moderation(
        self, product_id: str, author_id: str, *, review_id: str, admin_id: str, now: datetime
    ) -> None:
        """Remember that an admin hid this author's review of this product (idempotent)."""
        await self._moderations.update_one(
            {"_id": f"{product_id}:{author_id}"},
            {
                "$setOnInsert": {
                    "product_id": product_id,
                    "author_id": author_id,
                    "review_id": review_id,
                    "admin_id": admin_id,
                    "create_time": now,
                }
            },
            upsert=True,
        )

    async def is_moderated(self, product_id: str, author_id: str) -> bool:
        """Whether an admin hid a review of this author on this product, ever."""
        doc = await self._moderations.find_one({"_id": f"{product_id}:{author_id}"})
        return doc is not None

    async def list_visible(self, product_id: str, *, offset: int, limit: int) -> list[Review]:
        """One page of the product's visible reviews, newest first."""
        docs = (
            await self._reviews.find({"product_id": product_id, "state": ReviewState.VISIBLE.value})
            .sort([("create_time", -1), ("_id", 1)])
            .skip(offset)
            .limit(limit)
            .to_list()
        )
        return [review_from_doc(doc) for doc in docs]

    async def mark_verified(self, buyer_id: str, product_ids: Sequence[str]) -> int:
        """Flag the buyer's reviews of these products as verified purchases; how many."""
        result = await self._reviews.update_many(
            {"author_id": buyer_id, "product_id": {"$in": list(product_ids)}},
            {"$set": {"verified_purchase": True}},
        )
        return result.modified_count


class MongoPurchaseStore:
    """Delivered purchases and co-purchase counts.

    An order's basket is counted under a marker document keyed by the order id, inserted
    before the pair counters move, so a replayed event never counts an order twice. A crash
    between the marker and the counters under-counts that order; it never over-counts.
    """

    def __init__(self, db: Database) -> None:
        self._purchases = db[PURCHASES]
        self._baskets = db[ORDER_BASKETS]
        self._pairs = db[CO_PURCHASES]

    async def record_delivered(self, buyer_id: str, product_ids: Sequence[str]) -> None:
        """Remember that the buyer received these products."""
        for product_id in dict.fromkeys(product_ids):
            # A duplicate is a product bought before, or a replayed event.
            with contextlib.suppress(DuplicateKeyError):
                await self._purchases.insert_one(
                    {
                        "_id": f"{buyer_id}:{product_id}",
                        "buyer_id": buyer_id,
                        "product_id": product_id,
                        "time": datetime.now(UTC),
                    }
                )

    async def has_received(self, buyer_id: str, product_id: str) -> bool:
        """Whether the buyer received the product."""
        doc = await self._purchases.find_one({"buyer_id": buyer_id, "product_id": product_id})
        return doc is not None

    async def count_basket(self, order_id: str, product_ids: Sequence[str]) -> bool:
        """Count each pair of the order's products as bought together, once per order."""
        products = sorted(dict.fromkeys(product_ids))[:MAX_BASKET_PRODUCTS]
        try:
            await self._baskets.insert_one(
                {"_id": order_id, "state": "counted", "products": products}
            )
        except DuplicateKeyError:
            return False  # counted already, or cancelled before it was paid
        await self._move_pairs(products, 1)
        return True

    async def uncount_basket(self, order_id: str) -> bool:
        """Take a counted order's pairs back out (it was cancelled), once per order."""
        try:
            await self._baskets.insert_one({"_id": order_id, "state": "cancelled", "products": []})
            return False  # never counted: the marker keeps a late payment from counting it
        except DuplicateKeyError:
            pass
        doc = await self._baskets.find_one_and_update(
            {"_id": order_id, "state": "counted"}, {"$set": {"state": "cancelled"}}
        )
        if doc is None:
            return False
        await self._move_pairs(list(doc.get("products") or ()), -1)
        return True

    async def _move_pairs(self, products: Sequence[str], step: int) -> None:
        for first, second in itertools.permutations(products, 2):
            await self._pairs.update_one(
                {"_id": f"{first}|{second}"},
                {
                    "$inc": {"count": step},
                    "$setOnInsert": {"product_id": first, "other_id": second},
                },
                upsert=True,
            )

    async def also_bought(self, product_id: str, *, limit: int) -> list[tuple[str, int]]:
        """Products bought with this one, most often first, with their counts."""
        docs = (
            await self._pairs.find({"product_id": product_id, "count": {"$gt": 0}})
            .sort([("count", -1), ("other_id", 1)])
            .limit(limit)
            .to_list()
        )
        return [(str(doc["other_id"]), int(doc["count"])) for doc in docs]


class MongoProcessedEvents:
    """Processed event ids in `processed_events`; the _id makes each one unique."""

    def __init__(self, db: Database) -> None:
        self._events = db[PROCESSED_EVENTS]

    async def seen(self, event_id: str) -> bool:
        """Whether the event was processed already."""
        return await self._events.find_one({"_id": event_id}, {"_id": 1}) is not None

    async def remember(self, event_id: str, event_type: str) -> bool:
        """Record the event as processed; False when it already was."""
        try:
            await self._events.insert_one(
                {"_id": event_id, "type": event_type, "time": datetime.now(UTC)}
            )
        except DuplicateKeyError:
            return False
        return True
