"""MongoDB storage of products, catalog search, stock holds and reservations."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.product.adapters.documents import (
    hold_field,
    priced_item_to_doc,
    product_from_doc,
    product_to_doc,
    reservation_from_doc,
    reservation_to_doc,
)
from services.product.adapters.mongo import PRODUCTS, RESERVATIONS, Database
from services.product.domain.commands import FacetCount, SearchFilter, SearchPage, SortOrder
from services.product.domain.model import (
    PricedItem,
    Product,
    ProductState,
    Reservation,
    ReservationLine,
    ReservationState,
)
from services.product.service_layer.ports import HoldOutcome, HoldResult

_SORTS: dict[SortOrder, list[tuple[str, Any]]] = {
    # _id breaks ties so pages never overlap or skip equal-ranked products.
    SortOrder.RELEVANCE: [("score", {"$meta": "textScore"}), ("_id", 1)],
    SortOrder.NEWEST: [("create_time", -1), ("_id", -1)],
    SortOrder.PRICE_ASCENDING: [("effective_price_minor", 1), ("_id", 1)],
    SortOrder.PRICE_DESCENDING: [("effective_price_minor", -1), ("_id", 1)],
    SortOrder.RATING: [("rating.average", -1), ("rating.count", -1), ("_id", 1)],
}
_MAX_FACET_VALUES = 50


def search_filter(search: SearchFilter) -> dict[str, Any]:
    """The MongoDB filter of a search; only published products are ever found."""
    query: dict[str, Any] = {"state": ProductState.PUBLISHED.value}
    if search.query:
        query["$text"] = {"$search": search.query}
    if search.category:
        query["category"] = search.category
    if search.subcategory:
        query["subcategory"] = search.subcategory
    if search.seller_id:
        query["seller_id"] = search.seller_id
    price: dict[str, int] = {}
    if search.min_price_minor:
        price["$gte"] = search.min_price_minor
    if search.max_price_minor:
        price["$lte"] = search.max_price_minor
    if price:
        query["effective_price_minor"] = price
    if search.in_stock_only:
        query["inventory.available"] = {"$gt": 0}
    if search.min_rating:
        query["rating.average"] = {"$gte": search.min_rating}
    for name, value in search.attributes:
        query[f"attributes.{name}"] = value
    return query


class MongoProductRepository:
    """Products in the `products` collection, one document per product keyed by its id."""

    def __init__(self, db: Database) -> None:
        self._products = db[PRODUCTS]

    async def add(self, product: Product) -> None:
        """Store a new product."""
        await self._products.insert_one(product_to_doc(product))

    async def get(self, product_id: str) -> Product | None:
        """The product with this id, or None."""
        doc = await self._products.find_one({"_id": product_id})
        return product_from_doc(doc) if doc else None

    async def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]:
        """The products among `product_ids` that exist, by id."""
        found: dict[str, Product] = {}
        async for doc in self._products.find({"_id": {"$in": list(product_ids)}}):
            product = product_from_doc(doc)
            found[product.product_id] = product
        return found

    async def search(self, search: SearchFilter, *, offset: int, limit: int) -> SearchPage:
        """One page of the published products matching `search`, the total and the facets."""
        query = search_filter(search)
        cursor = self._products.find(query).sort(_SORTS[search.sort_order]).skip(offset)
        page, total, categories, subcategories = await asyncio.gather(
            cursor.limit(limit).to_list(),
            self._products.count_documents(query),
            self._facet(query, "category"),
            self._facet(query, "subcategory"),
        )
        return SearchPage(
            products=tuple(product_from_doc(doc) for doc in page),
            total_size=total,
            facets={"category": categories, "subcategory": subcategories},
        )

    async def _facet(self, query: dict[str, Any], field: str) -> tuple[FacetCount, ...]:
        pipeline: list[dict[str, Any]] = [
            {"$match": query},
            {"$group": {"_id": f"${field}", "count": {"$sum": 1}}},
            {"$sort": {"count": -1, "_id": 1}},
            {"$limit": _MAX_FACET_VALUES},
        ]
        cursor = await self._products.aggregate(pipeline)
        return tuple(
            FacetCount(str(doc["_id"]), int(doc["count"]))
            for doc in await cursor.to_list()
            if doc["_id"]  # products without a subcategory are not a facet value
        )


class MongoStockStore:
    """Stock on the product documents; each order's units are tagged on the product.

    A hold moves units from available to reserved and records the order under `holds` in
    the same atomic update, so a repeated hold, unhold or sale for one order is a no-op.
    """

    def __init__(self, db: Database) -> None:
        self._products = db[PRODUCTS]

    async def hold(self, product_id: str, order_id: str, quantity: int) -> HoldResult:
        """Move `quantity` available units to reserved for the order, unless already done."""
        hold = hold_field(order_id)
        doc = await self._products.find_one_and_update(
            {
                "_id": product_id,
                "state": ProductState.PUBLISHED.value,
                "inventory.available": {"$gte": quantity},
                hold: {"$exists": False},
            },
            {
                "$inc": {"inventory.available": -quantity, "inventory.reserved": quantity},
                "$set": {hold: {"order_id": order_id, "quantity": quantity}},
            },
            return_document=ReturnDocument.AFTER,
        )
        if doc is not None:
            return HoldResult(HoldOutcome.HELD, product_from_doc(doc))
        current = await self._products.find_one({"_id": product_id})
        if current is None:
            return HoldResult(HoldOutcome.NOT_FOUND)
        if _held_quantity(current, order_id) is not None:
            return HoldResult(HoldOutcome.HELD, product_from_doc(current))
        if current.get("state") != ProductState.PUBLISHED.value:
            return HoldResult(HoldOutcome.NOT_FOUND)
        return HoldResult(HoldOutcome.OUT_OF_STOCK, product_from_doc(current))

    async def unhold(self, product_id: str, order_id: str) -> None:
        """Give the order's held units back to available; nothing when it holds none."""
        await self._settle(product_id, order_id, sold=False)

    async def sell_hold(self, product_id: str, order_id: str) -> None:
        """Take the order's held units out of stock; nothing when it holds none."""
        await self._settle(product_id, order_id, sold=True)

    async def _settle(self, product_id: str, order_id: str, *, sold: bool) -> None:
        hold = hold_field(order_id)
        current = await self._products.find_one({"_id": product_id, hold: {"$exists": True}})
        quantity = _held_quantity(current, order_id) if current else None
        if quantity is None:
            return
        target = "inventory.on_hand" if sold else "inventory.available"
        # The filter on the hold makes the update happen once even if two calls race here.
        await self._products.update_one(
            {"_id": product_id, hold: {"$exists": True}},
            {
                "$unset": {hold: ""},
                "$inc": {"inventory.reserved": -quantity, target: -quantity if sold else quantity},
            },
        )


def _held_quantity(doc: dict[str, Any], order_id: str) -> int | None:
    key = hold_field(order_id).removeprefix("holds.")
    hold = (doc.get("holds") or {}).get(key)
    return int(hold["quantity"]) if isinstance(hold, dict) else None


def _now_ms() -> int:
    return int(time.time() * 1000)


class MongoReservationStore:
    """Reservations in the `reservations` collection, keyed by order id."""

    def __init__(self, db: Database) -> None:
        self._reservations = db[RESERVATIONS]

    async def claim(
        self, order_id: str, lines: Sequence[ReservationLine], *, lease_seconds: float
    ) -> Reservation | None:
        """Create the order's pending reservation; None when created, else the existing one."""
        lease = _now_ms() + int(lease_seconds * 1000)
        for _ in range(3):
            try:
                await self._reservations.insert_one(
                    reservation_to_doc(order_id, tuple(lines), lease_expires_ms=lease)
                )
                return None
            except DuplicateKeyError:
                existing = await self.get(order_id)
                if existing is not None:
                    return existing
                # It was abandoned between our insert and our read: try to claim it again.
        raise RuntimeError("reservation claim kept racing with abandonment")

    async def take_over(self, order_id: str, *, lease_seconds: float) -> bool:
        """Claim a pending reservation whose lease expired (its caller died); True when won."""
        now = _now_ms()
        result = await self._reservations.update_one(
            {
                "_id": order_id,
                "state": ReservationState.PENDING.value,
                "lease_expires_ms": {"$lt": now},
            },
            {"$set": {"lease_expires_ms": now + int(lease_seconds * 1000)}},
        )
        return result.modified_count == 1

    async def get(self, order_id: str) -> Reservation | None:
        """The order's reservation, or None."""
        doc = await self._reservations.find_one({"_id": order_id})
        return reservation_from_doc(doc) if doc else None

    async def mark_reserved(self, order_id: str, items: Sequence[PricedItem]) -> None:
        """Record that every line is held, with the prices promised."""
        await self._reservations.update_one(
            {"_id": order_id, "state": ReservationState.PENDING.value},
            {
                "$set": {
                    "state": ReservationState.RESERVED.value,
                    "items": [priced_item_to_doc(item) for item in items],
                }
            },
        )

    async def abandon(self, order_id: str) -> None:
        """Forget a pending reservation whose lines could not all be held."""
        await self._reservations.delete_one(
            {"_id": order_id, "state": ReservationState.PENDING.value}
        )

    async def transition(
        self,
        order_id: str,
        *,
        from_states: Sequence[ReservationState],
        to_state: ReservationState,
    ) -> Reservation | None:
        """Move the reservation to `to_state` if it is in one of `from_states`; None if not."""
        doc = await self._reservations.find_one_and_update(
            {"_id": order_id, "state": {"$in": [s.value for s in from_states]}},
            {"$set": {"state": to_state.value}},
            return_document=ReturnDocument.AFTER,
        )
        return reservation_from_doc(doc) if doc else None
