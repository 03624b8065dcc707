"""MongoDB storage of reviews and of the admins' moderation of their authors."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from pymongo.errors import DuplicateKeyError

from services.product.adapters.mongo.documents import review_from_doc, review_to_doc, time_to_ms
from services.product.adapters.mongo.schema import REVIEWS, Database
from services.product.domain.model import Review, ReviewState

# One document per (product, author) an admin hid a review of, keyed by both, so it needs
# no index of its own and outlives the review it was made for.
REVIEW_MODERATIONS = "review_moderations"
# The author id of a review whose author deleted their account.
ANONYMOUS_AUTHOR_PREFIX = "deleted:"


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

    async def by_author(self, author_id: str) -> list[Review]:
        """Every review of the author, in every state, oldest first."""
        docs = await self._reviews.find({"author_id": author_id}).sort("create_time", 1).to_list()
        return [review_from_doc(doc) for doc in docs]

    async def anonymise_author(self, author_id: str, *, now: datetime) -> int:
        """Detach the author's reviews from them and drop their text; how many changed.

        The rating stays, so product ratings do not move; the title, body and author go
        (free text may name the author). Each review gets an author id of its own,
        "deleted:<review id>", because one author reviews a product once (a unique index)
        and because one shared pseudonym would still link the reviews together.
        """
        changed = 0
        async for doc in self._reviews.find({"author_id": author_id}, {"_id": 1}):
            result = await self._reviews.update_one(
                {"_id": doc["_id"], "author_id": author_id},
                {
                    "$set": {
                        "author_id": f"{ANONYMOUS_AUTHOR_PREFIX}{doc['_id']}",
                        "title": "",
                        "body": "",
                        "update_time": time_to_ms(now),
                    },
                    "$inc": {"version": 1},
                },
            )
            changed += int(result.modified_count)
        await self._moderations.delete_many({"author_id": author_id})
        return changed

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

    async def list_page(
        self, product_id: str, *, states: Sequence[ReviewState], offset: int, limit: int
    ) -> list[Review]:
        """One page of the product's reviews in `states`, newest first."""
        docs = (
            await self._reviews.find(
                {"product_id": product_id, "state": {"$in": [state.value for state in states]}}
            )
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
