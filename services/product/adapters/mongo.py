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
    # Search lists published products only, newest first or by price.
    await products.create_index(
        [("state", ASCENDING), ("create_time", DESCENDING)], name="state_newest"
    )
    await products.create_index(
        [("state", ASCENDING), ("effective_price_minor", ASCENDING)], name="state_price"
    )
    await db[RESERVATIONS].create_index([("state", ASCENDING)], name="reservation_state")
