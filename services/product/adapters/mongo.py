"""The product service's MongoDB collections and their indexes."""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, DESCENDING, TEXT
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

type Database = AsyncDatabase[dict[str, Any]]
type Collection = AsyncCollection[dict[str, Any]]

PRODUCTS = "products"
RESERVATIONS = "reservations"
LEDGER = "inventory_ledger"
CATEGORIES = "categories"
REVIEWS = "reviews"
PURCHASES = "purchases"  # delivered (buyer, product) pairs, for verified reviews
ORDER_BASKETS = "order_baskets"  # orders counted in the co-purchase figures
CO_PURCHASES = "co_purchases"
PROCESSED_EVENTS = "processed_events"


async def ensure_indexes(db: Database) -> None:
    """Create the indexes the queries need; creating an existing index is a no-op."""
    products = db[PRODUCTS]
    await products.create_index(
        [("category", ASCENDING), ("subcategory", ASCENDING)], name="category_subcategory"
    )
    await products.create_index(
        [("title", TEXT), ("description", TEXT)], name="title_description_text"
    )
    await products.create_index([("seller_id", ASCENDING)], name="seller")
    # Search lists published products only, newest first, by price or by rating.
    await products.create_index(
        [("state", ASCENDING), ("create_time_ms", DESCENDING)], name="state_newest_ms"
    )
    await products.create_index(
        [("state", ASCENDING), ("effective_price_minor", ASCENDING)], name="state_price"
    )
    await products.create_index(
        [("state", ASCENDING), ("rating.average", DESCENDING)], name="state_rating"
    )
    await products.create_index([("attribute_pairs", ASCENDING)], name="attribute_pairs")
    await products.create_index([("price_changes_at", ASCENDING)], name="price_changes_at")
    await db[RESERVATIONS].create_index(
        [("state", ASCENDING), ("expires_ms", ASCENDING)], name="reservation_state_expiry"
    )
    await db[LEDGER].create_index(
        [("product_id", ASCENDING), ("create_time", DESCENDING)], name="ledger_product_time"
    )
    await db[CATEGORIES].create_index([("parent_id", ASCENDING)], name="category_parent")
    reviews = db[REVIEWS]
    # One review per user and product, enforced by the database under any concurrency.
    await reviews.create_index(
        [("product_id", ASCENDING), ("author_id", ASCENDING)], name="review_author", unique=True
    )
    await reviews.create_index(
        [("product_id", ASCENDING), ("create_time", DESCENDING)], name="review_newest"
    )
    await db[PURCHASES].create_index(
        [("buyer_id", ASCENDING), ("product_id", ASCENDING)], name="purchase_pair", unique=True
    )
    await db[CO_PURCHASES].create_index(
        [("product_id", ASCENDING), ("count", DESCENDING)], name="co_purchase_product"
    )
