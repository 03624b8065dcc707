"""MongoDB storage of products: listings, their state, discounts and ratings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument

from services.common.money import Money
from services.product.adapters.cache import ProductCache, ProductDocs
from services.product.adapters.mongo.documents import (
    BUMP_REVISION,
    attribute_pairs,
    discount_to_doc,
    money_to_doc,
    price_fields,
    product_from_doc,
    product_to_doc,
    time_to_ms,
)
from services.product.adapters.mongo.schema import PRODUCTS, Database
from services.product.adapters.mongo.search import SORTS, state_filter
from services.product.domain.commands import SortOrder
from services.product.domain.model import Discount, Product, ProductState


def _stored(value: Any) -> Any:
    """A domain value in its stored shape, for $set."""
    if isinstance(value, Money):
        return money_to_doc(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


class MongoProductRepository:
    """Products in the `products` collection, one document per product keyed by its id."""

    def __init__(self, db: Database, docs: ProductDocs | None = None) -> None:
        self._products = db[PRODUCTS]
        self._docs = docs or ProductDocs(self._products, ProductCache(None))

    async def add(self, product: Product) -> None:
        """Store a new product."""
        await self._products.insert_one(product_to_doc(product))

    async def get(self, product_id: str) -> Product | None:
        """The product with this id, or None; served from the cache when it holds it."""
        doc = await self._docs.get(product_id)
        return product_from_doc(doc) if doc else None

    async def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]:
        """The products among `product_ids` that exist, by id."""
        docs = await self._docs.get_many(list(product_ids))
        return {product_id: product_from_doc(doc) for product_id, doc in docs.items()}

    async def update_fields(
        self,
        product_id: str,
        *,
        expected_version: int,
        fields: Mapping[str, Any],
        now: datetime,
    ) -> Product | None:
        """Apply an edit if the product is still at `expected_version`; None if it moved on."""
        current = await self._products.find_one({"_id": product_id})
        if current is None or int(current.get("version", 1)) != expected_version:
            return None
        stored = {name: _stored(value) for name, value in fields.items()}
        merged = {**current, **stored}
        values = {**stored, "update_time": time_to_ms(now)}
        if "attributes" in fields:
            values["attribute_pairs"] = attribute_pairs(fields["attributes"])
        old = product_from_doc(current)
        fresh = product_from_doc(merged)
        values.update(price_fields(fresh.list_price, fresh.sale_price, old.discounts, now))
        if "list_price" in stored:
            values["currency"] = stored["list_price"]["currency"]
        doc = await self._products.find_one_and_update(
            # The version check makes concurrent edits of one version succeed once.
            {"_id": product_id, "version": expected_version},
            {"$set": values, "$inc": {"version": 1, **BUMP_REVISION}},
            return_document=ReturnDocument.AFTER,
        )
        await self._docs.written(doc)
        return product_from_doc(doc) if doc else None

    async def set_state(
        self,
        product_id: str,
        *,
        from_states: Sequence[ProductState],
        to_state: ProductState,
        now: datetime,
    ) -> Product | None:
        """Move the product to `to_state` if it is in one of `from_states`; None if not."""
        doc = await self._products.find_one_and_update(
            {"_id": product_id, "state": {"$in": [s.value for s in from_states]}},
            {
                "$set": {"state": to_state.value, "update_time": time_to_ms(now)},
                "$inc": {"version": 1, **BUMP_REVISION},
            },
            return_document=ReturnDocument.AFTER,
        )
        await self._docs.written(doc)
        return product_from_doc(doc) if doc else None

    async def archive_seller_products(self, seller_id: str, *, now: datetime) -> int:
        """Archive every product of the seller not archived yet; how many were archived."""
        live = {"seller_id": seller_id, "state": {"$ne": ProductState.ARCHIVED.value}}
        ids = [str(doc["_id"]) for doc in await self._products.find(live, {"_id": 1}).to_list()]
        if not ids:
            return 0
        result = await self._products.update_many(
            {**live, "_id": {"$in": ids}},
            {
                "$set": {"state": ProductState.ARCHIVED.value, "update_time": time_to_ms(now)},
                "$inc": {"version": 1, **BUMP_REVISION},
            },
        )
        await self._docs.refresh(*ids)
        return int(result.modified_count)

    async def add_discount(
        self, product_id: str, discount: Discount, *, now: datetime, max_discounts: int
    ) -> Product | None:
        """Append a discount and restate the stored price; None when the product is gone."""
        for _ in range(10):
            current = await self._products.find_one({"_id": product_id})
            if current is None:
                return None
            product = product_from_doc(current)
            if len(product.discounts) >= max_discounts:
                return product
            discounts = (*product.discounts, discount)
            doc = await self._products.find_one_and_update(
                # The discount list read is the one extended: concurrent additions retry.
                {"_id": product_id, "revision": current.get("revision", 0)},
                {
                    "$set": {
                        f"discounts.{discount.discount_id}": discount_to_doc(discount),
                        "update_time": time_to_ms(now),
                        **price_fields(product.list_price, product.sale_price, discounts, now),
                    },
                    "$inc": {"version": 1, **BUMP_REVISION},
                },
                return_document=ReturnDocument.AFTER,
            )
            if doc is not None:
                await self._docs.written(doc)
                return product_from_doc(doc)
        raise RuntimeError("discount kept racing with other writes")

    async def remove_discount(self, product_id: str, discount_id: str, *, now: datetime) -> bool:
        """Remove a discount and restate the stored price; False when it was not there."""
        for _ in range(10):
            current = await self._products.find_one(
                {"_id": product_id, f"discounts.{discount_id}": {"$exists": True}}
            )
            if current is None:
                return False
            product = product_from_doc(current)
            remaining = tuple(d for d in product.discounts if d.discount_id != discount_id)
            result = await self._products.update_one(
                {"_id": product_id, "revision": current.get("revision", 0)},
                {
                    "$unset": {f"discounts.{discount_id}": ""},
                    "$set": {
                        "update_time": time_to_ms(now),
                        **price_fields(product.list_price, product.sale_price, remaining, now),
                    },
                    "$inc": {"version": 1, **BUMP_REVISION},
                },
            )
            if result.modified_count == 1:
                await self._docs.refresh(product_id)
                return True
        raise RuntimeError("discount removal kept racing with other writes")

    async def reprice_due(self, now: datetime, *, limit: int = 200) -> int:
        """Restate the stored price of products whose discounts started or ended by `now`."""
        due = await self._products.find(
            {"price_changes_at_ms": {"$gt": 0, "$lte": time_to_ms(now)}}, limit=limit
        ).to_list()
        repriced = 0
        for doc in due:
            product = product_from_doc(doc)
            result = await self._products.update_one(
                {"_id": product.product_id, "revision": doc.get("revision", 0)},
                {
                    "$set": price_fields(
                        product.list_price, product.sale_price, product.discounts, now
                    ),
                    "$inc": BUMP_REVISION,
                },
            )
            if result.modified_count:
                repriced += 1
                await self._docs.refresh(product.product_id)
        return repriced

    async def change_rating(
        self, product_id: str, *, add: int | None = None, remove: int | None = None
    ) -> None:
        """Count a review's stars in (`add`) and/or out (`remove`) of the product's rating.

        The counters move with one atomic $inc, so concurrent reviews never lose a count.
        The stored average (which search filters and sorts by) is then restated from the
        counters with a compare-and-set, retried until it matches the counters it read.
        """
        inc: dict[str, int] = {}
        for stars, sign in ((add, 1), (remove, -1)):
            if stars is None:
                continue
            inc["rating.count"] = inc.get("rating.count", 0) + sign
            inc["rating.total"] = inc.get("rating.total", 0) + sign * stars
            key = f"rating.histogram.{stars}"
            inc[key] = inc.get(key, 0) + sign
        inc = {key: value for key, value in inc.items() if value}
        if not inc:
            return
        await self._products.update_one({"_id": product_id}, {"$inc": {**inc, **BUMP_REVISION}})
        for _ in range(50):
            doc = await self._products.find_one({"_id": product_id}, {"rating": 1})
            if doc is None:
                return
            rating = doc.get("rating") or {}
            count, total = int(rating.get("count", 0)), int(rating.get("total", 0))
            average = round(total / count, 4) if count > 0 else 0.0
            if rating.get("average") == average:
                break
            result = await self._products.update_one(
                {"_id": product_id, "rating.count": count, "rating.total": total},
                {"$set": {"rating.average": average}, "$inc": BUMP_REVISION},
            )
            if result.modified_count:
                break
        await self._docs.refresh(product_id)

    async def in_category(
        self,
        category: str,
        *,
        states: Sequence[ProductState],
        exclude: Sequence[str],
        limit: int,
        by_rating: bool,
    ) -> list[Product]:
        """Products of a category in `states`, best rated first or newest first."""
        sort = SORTS[SortOrder.RATING if by_rating else SortOrder.NEWEST]
        docs = (
            await self._products.find(
                {
                    "state": state_filter(states),
                    "category": category,
                    "_id": {"$nin": list(exclude)},
                },
                limit=limit,
            )
            .sort(sort)
            .to_list()
        )
        return [product_from_doc(doc) for doc in docs]

    async def count_in_category(self, category_id: str) -> int:
        """How many products name the category as their category or subcategory."""
        return await self._products.count_documents(
            {"$or": [{"category": category_id}, {"subcategory": category_id}]}
        )

    async def list_by_seller(
        self,
        seller_id: str,
        *,
        states: Sequence[ProductState],
        category: str,
        max_available: int | None,
        after: tuple[int, str] | None,
        limit: int,
    ) -> list[Product]:
        """A seller's products in `states`, newest first, after the cursor."""
        query: dict[str, Any] = {"seller_id": seller_id, "state": state_filter(states)}
        conditions: list[dict[str, Any]] = []
        if category:
            conditions.append({"$or": [{"category": category}, {"subcategory": category}]})
        if max_available is not None:
            query["inventory.available"] = {"$lte": max_available}
        if after is not None:
            # Keyset paging on the sort key: rows added meanwhile neither repeat nor skip.
            created_ms, product_id = after
            conditions.append(
                {
                    "$or": [
                        {"create_time_ms": {"$lt": created_ms}},
                        {"create_time_ms": created_ms, "_id": {"$lt": product_id}},
                    ]
                }
            )
        if conditions:
            query["$and"] = conditions
        docs = await self._products.find(query, limit=limit).sort(SORTS[SortOrder.NEWEST]).to_list()
        return [product_from_doc(doc) for doc in docs]
