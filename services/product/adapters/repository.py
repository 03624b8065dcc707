"""MongoDB storage of products, catalog search, stock holds, the ledger and reservations."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.common.money import Money
from services.product.adapters.cache import ProductCache, ProductDocs
from services.product.adapters.documents import (
    Document,
    attribute_pairs,
    discount_to_doc,
    hold_field,
    ledger_entry_from_doc,
    ledger_entry_to_doc,
    money_to_doc,
    price_fields,
    priced_item_to_doc,
    product_from_doc,
    product_to_doc,
    reservation_from_doc,
    reservation_to_doc,
    time_to_ms,
)
from services.product.adapters.mongo import LEDGER, PRODUCTS, RESERVATIONS, Database
from services.product.domain.commands import FacetCount, SearchFilter, SearchPage, SortOrder
from services.product.domain.model import (
    Discount,
    LedgerEntry,
    PricedItem,
    Product,
    ProductState,
    Reservation,
    ReservationLine,
    ReservationState,
    attribute_pair,
)
from services.product.service_layer.ports import HoldOutcome, HoldResult, LedgerNote

_SORTS: dict[SortOrder, list[tuple[str, Any]]] = {
    # _id breaks ties so pages never overlap or skip equal-ranked products.
    SortOrder.RELEVANCE: [("score", {"$meta": "textScore"}), ("_id", 1)],
    SortOrder.NEWEST: [("create_time_ms", -1), ("_id", -1)],
    SortOrder.PRICE_ASCENDING: [("effective_price_minor", 1), ("_id", 1)],
    SortOrder.PRICE_DESCENDING: [("effective_price_minor", -1), ("_id", 1)],
    SortOrder.RATING: [("rating.average", -1), ("rating.count", -1), ("_id", 1)],
}
_MAX_FACET_VALUES = 50
_MAX_ATTRIBUTE_FACETS = 10
# Text searches count and facet their matches by id up to this many matches.
_MAX_TEXT_MATCHES = 5000
# Every write to a product bumps its revision, so the cache can tell newer from older.
_BUMP = {"revision": 1}


def filter_value(raw: str) -> str:
    """An attribute filter's value in the normalised form stored in attribute_pairs."""
    lowered = raw.strip().lower()
    if lowered in ("true", "false"):
        return lowered
    try:
        return attribute_pair("_", float(lowered)).removeprefix("_=")
    except ValueError:
        return attribute_pair("_", raw).removeprefix("_=")


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
    if search.attributes:
        query["attribute_pairs"] = {
            "$all": [f"{name}={filter_value(value)}" for name, value in search.attributes]
        }
    return query


def _queued(entry: Document) -> Document:
    return {f"ledger_outbox.{entry['_id']}": entry}


def _stored(value: Any) -> Any:
    """A domain value in its stored shape, for $set."""
    if isinstance(value, Money):
        return money_to_doc(value)
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    return value


def _note_doc(product_id: str, note: LedgerNote, on_hand: int, reserved: int) -> Document:
    return ledger_entry_to_doc(
        LedgerEntry(
            entry_id=uuid.uuid4().hex,
            product_id=product_id,
            on_hand_delta=on_hand,
            reserved_delta=reserved,
            reason=note.reason,
            actor=note.actor,
            create_time=note.time,
        )
    )


def _sort_key(order: SortOrder, doc: Document) -> tuple[int | float | str, ...]:
    product_id = str(doc["_id"])
    if order is SortOrder.NEWEST:
        return (int(doc.get("create_time_ms", 0)), product_id)
    if order in (SortOrder.PRICE_ASCENDING, SortOrder.PRICE_DESCENDING):
        return (int(doc.get("effective_price_minor", 0)), product_id)
    if order is SortOrder.RATING:
        rating = doc.get("rating") or {}
        return (float(rating.get("average", 0.0)), int(rating.get("count", 0)), product_id)
    return (product_id,)


def _after(order: SortOrder, key: tuple[int | float | str, ...]) -> dict[str, Any]:
    """The products strictly after `key` in `order`; a malformed key matches nothing."""
    try:
        if order is SortOrder.NEWEST:
            millis, product_id = int(key[0]), str(key[1])
            return {
                "$or": [
                    {"create_time_ms": {"$lt": millis}},
                    {"create_time_ms": millis, "_id": {"$lt": product_id}},
                ]
            }
        if order in (SortOrder.PRICE_ASCENDING, SortOrder.PRICE_DESCENDING):
            price, product_id = int(key[0]), str(key[1])
            beyond = "$gt" if order is SortOrder.PRICE_ASCENDING else "$lt"
            return {
                "$or": [
                    {"effective_price_minor": {beyond: price}},
                    {"effective_price_minor": price, "_id": {"$gt": product_id}},
                ]
            }
        if order is SortOrder.RATING:
            average, count, product_id = float(key[0]), int(key[1]), str(key[2])
            return {
                "$or": [
                    {"rating.average": {"$lt": average}},
                    {"rating.average": average, "rating.count": {"$lt": count}},
                    {"rating.average": average, "rating.count": count, "_id": {"$gt": product_id}},
                ]
            }
    except (IndexError, TypeError, ValueError):
        pass
    return {"$or": [{"_id": {"$in": []}}]}


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
            {"$set": values, "$inc": {"version": 1, **_BUMP}},
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
                "$inc": {"version": 1, **_BUMP},
            },
            return_document=ReturnDocument.AFTER,
        )
        await self._docs.written(doc)
        return product_from_doc(doc) if doc else None

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
                    "$inc": {"version": 1, **_BUMP},
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
                    "$inc": {"version": 1, **_BUMP},
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
                    "$inc": _BUMP,
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
        await self._products.update_one({"_id": product_id}, {"$inc": {**inc, **_BUMP}})
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
                {"$set": {"rating.average": average}, "$inc": _BUMP},
            )
            if result.modified_count:
                break
        await self._docs.refresh(product_id)

    async def search(
        self,
        search: SearchFilter,
        *,
        offset: int,
        limit: int,
        after: tuple[int | float | str, ...] | None = None,
    ) -> SearchPage:
        """One page of the published products matching `search`, the total and the facets.

        `after` is the sort key of the last product of the previous page (keyset paging);
        it is ignored for relevance, whose scores are not comparable, and `offset` is used.
        """
        query = search_filter(search)
        page_query = query
        if after is not None and search.sort_order is not SortOrder.RELEVANCE:
            # The cursor's $or sits beside the filters (which never use $or themselves),
            # so a $text filter stays at the top level where MongoDB requires it.
            page_query = {**query, **_after(search.sort_order, after)}
        cursor = self._products.find(page_query).sort(_SORTS[search.sort_order]).skip(offset)
        counting, known_total = query, None
        if search.query:
            matches = await self._text_matches(query)
            if matches is not None:
                # The total and the facets count the text matches by id: the same set the
                # pages come from, in plain $match stages every server runs alike.
                counting, known_total = {"_id": {"$in": matches}}, len(matches)
        page, total, categories, subcategories, attributes = await asyncio.gather(
            cursor.limit(limit).to_list(),
            self._count(counting, known_total),
            self._facet(counting, "category"),
            self._facet(counting, "subcategory"),
            self._attribute_facets(counting),
        )
        return SearchPage(
            products=tuple(product_from_doc(doc) for doc in page),
            total_size=total,
            facets={"category": categories, "subcategory": subcategories, **attributes},
            keys=tuple(_sort_key(search.sort_order, doc) for doc in page),
        )

    async def _count(self, query: dict[str, Any], known: int | None) -> int:
        return known if known is not None else await self._products.count_documents(query)

    async def _text_matches(self, query: dict[str, Any]) -> list[str] | None:
        """The ids of every text match, or None when there are too many to list."""
        docs = await self._products.find(query, {"_id": 1}, limit=_MAX_TEXT_MATCHES + 1).to_list()
        if len(docs) > _MAX_TEXT_MATCHES:
            return None
        return [str(doc["_id"]) for doc in docs]

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

    async def _attribute_facets(self, query: dict[str, Any]) -> dict[str, tuple[FacetCount, ...]]:
        pipeline: list[dict[str, Any]] = [
            {"$match": query},
            {"$unwind": "$attribute_pairs"},
            {"$group": {"_id": "$attribute_pairs", "count": {"$sum": 1}}},
        ]
        cursor = await self._products.aggregate(pipeline)
        by_name: dict[str, list[FacetCount]] = {}
        for doc in await cursor.to_list():
            name, _, value = str(doc["_id"]).partition("=")
            by_name.setdefault(name, []).append(FacetCount(value, int(doc["count"])))
        # The attributes most products carry are the useful facets; the rest is noise.
        ranked = sorted(by_name.items(), key=lambda item: (-sum(v.count for v in item[1]), item[0]))
        return {
            f"attributes.{name}": tuple(
                sorted(values, key=lambda v: (-v.count, v.value))[:_MAX_FACET_VALUES]
            )
            for name, values in ranked[:_MAX_ATTRIBUTE_FACETS]
        }

    async def published_in_category(
        self, category: str, *, exclude: Sequence[str], limit: int, by_rating: bool
    ) -> list[Product]:
        """Published products of a category, best rated first or newest first."""
        sort = _SORTS[SortOrder.RATING if by_rating else SortOrder.NEWEST]
        docs = (
            await self._products.find(
                {
                    "state": ProductState.PUBLISHED.value,
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


class MongoStockStore:
    """Stock on the product documents; each order's units are tagged on the product.

    A hold moves units from available to reserved and records the order under `holds` in
    the same atomic update, so a repeated hold, unhold or sale for one order is a no-op.
    Every stock move queues its ledger entry on the product in that same atomic update
    (`ledger_outbox`), and the entries are then copied to the ledger collection: a crash
    between the two loses no entry, since the next flush copies what is still queued.
    """

    def __init__(self, db: Database, docs: ProductDocs | None = None) -> None:
        self._products = db[PRODUCTS]
        self._ledger = db[LEDGER]
        self._docs = docs or ProductDocs(self._products, ProductCache(None))

    async def hold(
        self, product_id: str, order_id: str, quantity: int, note: LedgerNote | None = None
    ) -> HoldResult:
        """Move `quantity` available units to reserved for the order, unless already done."""
        hold = hold_field(order_id)
        note = note or LedgerNote(f"reserve order {order_id}", "order-service")
        doc = await self._products.find_one_and_update(
            {
                "_id": product_id,
                "state": ProductState.PUBLISHED.value,
                "inventory.available": {"$gte": quantity},
                hold: {"$exists": False},
            },
            {
                "$inc": {
                    "inventory.available": -quantity,
                    "inventory.reserved": quantity,
                    "ledger_pending": 1,
                    **_BUMP,
                },
                "$set": {
                    hold: {"order_id": order_id, "quantity": quantity},
                    **_queued(_note_doc(product_id, note, 0, quantity)),
                },
            },
            return_document=ReturnDocument.AFTER,
        )
        if doc is not None:
            await self._docs.written(doc)
            await self.flush_ledger(product_id)
            return HoldResult(HoldOutcome.HELD, product_from_doc(doc))
        current = await self._products.find_one({"_id": product_id})
        if current is None:
            return HoldResult(HoldOutcome.NOT_FOUND)
        if _held_quantity(current, order_id) is not None:
            return HoldResult(HoldOutcome.HELD, product_from_doc(current))
        if current.get("state") != ProductState.PUBLISHED.value:
            return HoldResult(HoldOutcome.NOT_FOUND)
        return HoldResult(HoldOutcome.OUT_OF_STOCK, product_from_doc(current))

    async def unhold(self, product_id: str, order_id: str, note: LedgerNote | None = None) -> None:
        """Give the order's held units back to available; nothing when it holds none."""
        note = note or LedgerNote(f"release order {order_id}", "order-service")
        await self._settle(product_id, order_id, sold=False, note=note)

    async def sell_hold(
        self, product_id: str, order_id: str, note: LedgerNote | None = None
    ) -> None:
        """Take the order's held units out of stock; nothing when it holds none."""
        note = note or LedgerNote(f"commit order {order_id}", "order-service")
        await self._settle(product_id, order_id, sold=True, note=note)

    async def _settle(
        self, product_id: str, order_id: str, *, sold: bool, note: LedgerNote
    ) -> None:
        hold = hold_field(order_id)
        current = await self._products.find_one({"_id": product_id, hold: {"$exists": True}})
        quantity = _held_quantity(current, order_id) if current else None
        if quantity is None:
            return
        target = "inventory.on_hand" if sold else "inventory.available"
        entry = _note_doc(product_id, note, -quantity if sold else 0, -quantity)
        # The filter on the hold makes the update happen once even if two calls race here.
        doc = await self._products.find_one_and_update(
            {"_id": product_id, hold: {"$exists": True}},
            {
                "$unset": {hold: ""},
                "$set": _queued(entry),
                "$inc": {
                    "inventory.reserved": -quantity,
                    target: -quantity if sold else quantity,
                    "ledger_pending": 1,
                    **_BUMP,
                },
            },
            return_document=ReturnDocument.AFTER,
        )
        if doc is not None:
            await self._docs.written(doc)
            await self.flush_ledger(product_id)

    async def restock(
        self, product_id: str, order_id: str, quantity: int, note: LedgerNote
    ) -> bool:
        """Put a cancelled order's sold units back, once per order; False if done before.

        The order is marked on the product in the same atomic update, like a hold.
        """
        marker = "restocks.r" + hold_field(order_id).removeprefix("holds.h")
        doc = await self._products.find_one_and_update(
            {"_id": product_id, marker: {"$exists": False}},
            {
                "$inc": {
                    "inventory.on_hand": quantity,
                    "inventory.available": quantity,
                    "ledger_pending": 1,
                    **_BUMP,
                },
                "$set": {marker: True, **_queued(_note_doc(product_id, note, quantity, 0))},
            },
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return False
        await self._docs.written(doc)
        await self.flush_ledger(product_id)
        return True

    async def adjust(self, product_id: str, delta: int, note: LedgerNote) -> Product | None:
        """Change on-hand units by `delta` unless that would take them below the reserved.

        Returns the product after the change, or None when refused (or not found).
        """
        condition: dict[str, Any] = {"_id": product_id}
        if delta < 0:
            # available = on_hand - reserved, so this keeps on_hand >= reserved atomically.
            condition["inventory.available"] = {"$gte": -delta}
        doc = await self._products.find_one_and_update(
            condition,
            {
                "$inc": {
                    "inventory.on_hand": delta,
                    "inventory.available": delta,
                    "ledger_pending": 1,
                    **_BUMP,
                },
                "$set": _queued(_note_doc(product_id, note, delta, 0)),
            },
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None
        await self._docs.written(doc)
        await self.flush_ledger(product_id)
        return product_from_doc(doc)

    async def flush_ledger(self, product_id: str) -> None:
        """Copy the product's queued ledger entries to the ledger, then unqueue them."""
        doc = await self._products.find_one({"_id": product_id}, {"ledger_outbox": 1})
        queued = dict((doc or {}).get("ledger_outbox") or {})
        for entry_id, entry in queued.items():
            # An entry may have been copied by an earlier flush that died before unqueueing it.
            with contextlib.suppress(DuplicateKeyError):
                await self._ledger.insert_one(entry)
            key = f"ledger_outbox.{entry_id}"
            # Conditional, so two flushes racing here decrement the counter once.
            await self._products.update_one(
                {"_id": product_id, key: {"$exists": True}},
                {"$unset": {key: ""}, "$inc": {"ledger_pending": -1}},
            )

    async def flush_all_ledgers(self, *, limit: int = 200) -> int:
        """Flush the products that still have queued entries (after a crash); how many."""
        docs = await self._products.find(
            {"ledger_pending": {"$gt": 0}}, {"_id": 1}, limit=limit
        ).to_list()
        for doc in docs:
            await self.flush_ledger(str(doc["_id"]))
        return len(docs)

    async def ledger_page(self, product_id: str, *, offset: int, limit: int) -> list[LedgerEntry]:
        """One page of a product's ledger, newest first."""
        await self.flush_ledger(product_id)
        docs = (
            await self._ledger.find({"product_id": product_id})
            .sort([("create_time", -1), ("_id", -1)])
            .skip(offset)
            .limit(limit)
            .to_list()
        )
        return [ledger_entry_from_doc(doc) for doc in docs]


def _held_quantity(doc: dict[str, Any], order_id: str) -> int | None:
    key = hold_field(order_id).removeprefix("holds.")
    hold = (doc.get("holds") or {}).get(key)
    return int(hold["quantity"]) if isinstance(hold, dict) else None


def _now_ms() -> int:
    return int(time.time() * 1000)


# The latest order id of each checkout attempt, keyed by checkout id (no extra index).
RESERVATION_CHECKOUTS = "reservation_checkouts"


class MongoReservationStore:
    """Reservations in the `reservations` collection, keyed by order id."""

    def __init__(self, db: Database) -> None:
        self._reservations = db[RESERVATIONS]
        self._checkouts = db[RESERVATION_CHECKOUTS]

    async def link_checkout(self, checkout_id: str, order_id: str) -> str | None:
        """Make `order_id` the checkout's current order; the order it replaced, if any."""
        before = await self._checkouts.find_one_and_update(
            {"_id": checkout_id},
            {"$set": {"order_id": order_id, "linked_ms": _now_ms()}},
            upsert=True,
            return_document=ReturnDocument.BEFORE,
        )
        if before is None or before.get("order_id") == order_id:
            return None
        return str(before["order_id"])

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

    async def mark_reserved(
        self, order_id: str, items: Sequence[PricedItem], *, expires_in_seconds: float = 900.0
    ) -> None:
        """Record that every line is held, with the prices promised and when they lapse."""
        await self._reservations.update_one(
            {"_id": order_id, "state": ReservationState.PENDING.value},
            {
                "$set": {
                    "state": ReservationState.RESERVED.value,
                    "items": [priced_item_to_doc(item) for item in items],
                    "expires_ms": _now_ms() + int(expires_in_seconds * 1000),
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

    async def stale_pending(self, *, limit: int = 100) -> list[str]:
        """Orders whose pending claim outlived its lease: the reserving call died."""
        docs = await self._reservations.find(
            {"state": ReservationState.PENDING.value, "lease_expires_ms": {"$lt": _now_ms()}},
            {"_id": 1},
            limit=limit,
        ).to_list()
        return [str(doc["_id"]) for doc in docs]

    async def expired(self, *, limit: int = 100) -> list[str]:
        """Orders whose reservation lapsed: reserved past its expiry, or stuck releasing."""
        now = _now_ms()
        docs = await self._reservations.find(
            {
                "$or": [
                    {"state": ReservationState.RESERVED.value, "expires_ms": {"$lt": now}},
                    # A release that died half-way is finished by the sweeper.
                    {"state": ReservationState.RELEASING.value, "expires_ms": {"$lt": now}},
                ]
            },
            {"_id": 1},
            limit=limit,
        ).to_list()
        return [str(doc["_id"]) for doc in docs]
