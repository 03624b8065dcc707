"""MongoDB catalog search: filters, sort orders, keyset cursors, totals and facets."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from services.product.adapters.mongo.documents import Document, product_from_doc
from services.product.adapters.mongo.schema import PRODUCTS, Database
from services.product.domain.commands import FacetCount, SearchFilter, SearchPage, SortOrder
from services.product.domain.model import ProductState, attribute_pair

SORTS: dict[SortOrder, list[tuple[str, Any]]] = {
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


def filter_value(raw: str) -> str:
    """An attribute filter's value in the normalised form stored in attribute_pairs."""
    lowered = raw.strip().lower()
    if lowered in ("true", "false"):
        return lowered
    try:
        return attribute_pair("_", float(lowered)).removeprefix("_=")
    except ValueError:
        return attribute_pair("_", raw).removeprefix("_=")


def state_filter(states: Sequence[ProductState]) -> Any:
    """The filter on `state` matching any of `states` (a plain value when there is one)."""
    if len(states) == 1:
        return states[0].value
    return {"$in": [state.value for state in states]}


def search_filter(search: SearchFilter, states: Sequence[ProductState]) -> dict[str, Any]:
    """The MongoDB filter of a search among products in `states` (the caller's rule)."""
    query: dict[str, Any] = {"state": state_filter(states)}
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


class MongoCatalogSearch:
    """Searches the `products` collection: text, filters, sort orders and facets."""

    def __init__(self, db: Database) -> None:
        self._products = db[PRODUCTS]

    async def search(
        self,
        search: SearchFilter,
        *,
        states: Sequence[ProductState],
        offset: int,
        limit: int,
        after: tuple[int | float | str, ...] | None = None,
    ) -> SearchPage:
        """One page of the products in `states` matching `search`, the total and the facets.

        `after` is the sort key of the last product of the previous page (keyset paging);
        it is ignored for relevance, whose scores are not comparable, and `offset` is used.
        """
        query = search_filter(search, states)
        page_query = query
        if after is not None and search.sort_order is not SortOrder.RELEVANCE:
            # The cursor's $or sits beside the filters (which never use $or themselves),
            # so a $text filter stays at the top level where MongoDB requires it.
            page_query = {**query, **_after(search.sort_order, after)}
        cursor = self._products.find(page_query).sort(SORTS[search.sort_order]).skip(offset)
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
