"""The product service's MongoDB collections and their indexes."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from pymongo import ASCENDING, DESCENDING, TEXT
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import OperationFailure

type Database = AsyncDatabase[dict[str, Any]]
type Collection = AsyncCollection[dict[str, Any]]

log = structlog.get_logger("product.indexes")

PRODUCTS = "products"
RESERVATIONS = "reservations"
LEDGER = "inventory_ledger"
CATEGORIES = "categories"
REVIEWS = "reviews"
PURCHASES = "purchases"  # delivered (buyer, product) pairs, for verified reviews
ORDER_BASKETS = "order_baskets"  # orders counted in the co-purchase figures
CO_PURCHASES = "co_purchases"
PROCESSED_EVENTS = "processed_events"

# What the MongoDB wire server (nx-27017) answers when a text index is created again on a
# collection that holds documents: it refills its full-text tables and hits their keys.
_WIRE_SERVER_TEXT_INDEX_EXISTS = "constraint failed"


class IndexConflict(RuntimeError):
    """An index of the wanted name exists with another definition; an operator decides."""


@dataclass(frozen=True)
class IndexSpec:
    """One index the queries need: its collection, name, keys and options."""

    collection: str
    name: str
    keys: tuple[tuple[str, int | str], ...]
    unique: bool = False

    @property
    def fields(self) -> tuple[str, ...]:
        """The indexed fields, in key order."""
        return tuple(field for field, _ in self.keys)

    @property
    def is_text(self) -> bool:
        """Whether this is the collection's full-text index."""
        return any(direction == TEXT for _, direction in self.keys)


INDEXES: tuple[IndexSpec, ...] = (
    IndexSpec(
        PRODUCTS, "category_subcategory", (("category", ASCENDING), ("subcategory", ASCENDING))
    ),
    IndexSpec(PRODUCTS, "title_description_text", (("title", TEXT), ("description", TEXT))),
    IndexSpec(PRODUCTS, "seller", (("seller_id", ASCENDING),)),
    # A seller's own listings, newest first, in every state.
    IndexSpec(
        PRODUCTS, "seller_newest_ms", (("seller_id", ASCENDING), ("create_time_ms", DESCENDING))
    ),
    # Search lists published products only, newest first, by price or by rating.
    IndexSpec(PRODUCTS, "state_newest_ms", (("state", ASCENDING), ("create_time_ms", DESCENDING))),
    IndexSpec(
        PRODUCTS, "state_price", (("state", ASCENDING), ("effective_price_minor", ASCENDING))
    ),
    IndexSpec(PRODUCTS, "state_rating", (("state", ASCENDING), ("rating.average", DESCENDING))),
    IndexSpec(PRODUCTS, "attribute_pairs", (("attribute_pairs", ASCENDING),)),
    IndexSpec(PRODUCTS, "price_changes_at", (("price_changes_at", ASCENDING),)),
    IndexSpec(
        RESERVATIONS,
        "reservation_state_expiry",
        (("state", ASCENDING), ("expires_ms", ASCENDING)),
    ),
    IndexSpec(
        LEDGER, "ledger_product_time", (("product_id", ASCENDING), ("create_time", DESCENDING))
    ),
    IndexSpec(CATEGORIES, "category_parent", (("parent_id", ASCENDING),)),
    # One review per user and product, enforced by the database under any concurrency.
    IndexSpec(
        REVIEWS,
        "review_author",
        (("product_id", ASCENDING), ("author_id", ASCENDING)),
        unique=True,
    ),
    IndexSpec(REVIEWS, "review_newest", (("product_id", ASCENDING), ("create_time", DESCENDING))),
    IndexSpec(
        PURCHASES,
        "purchase_pair",
        (("buyer_id", ASCENDING), ("product_id", ASCENDING)),
        unique=True,
    ),
    IndexSpec(
        CO_PURCHASES, "co_purchase_product", (("product_id", ASCENDING), ("count", DESCENDING))
    ),
)


async def ensure_indexes(db: Database, indexes: Sequence[IndexSpec] = INDEXES) -> list[IndexSpec]:
    """Create the wanted indexes that do not exist yet; returns the ones it created.

    What exists is read with listIndexes and compared by keys and options, so a restart
    on existing data creates nothing. The comparison holds on real MongoDB and on the
    MongoDB wire server, which renames indexes to `idx_<collection>_<fields>`, lists every
    key as ascending and does not list text indexes at all.

    Raises:
        IndexConflict: An index of a wanted name exists with other keys or options.
    """
    created: list[IndexSpec] = []
    for name in dict.fromkeys(spec.collection for spec in indexes):
        collection = db[name]
        existing = [dict(info) async for info in await collection.list_indexes()]
        for spec in (spec for spec in indexes if spec.collection == name):
            if _exists(spec, existing):
                continue
            if spec.is_text:
                if not await _create_text_index(db, collection, spec):
                    continue
            else:
                await collection.create_index(list(spec.keys), name=spec.name, unique=spec.unique)
            created.append(spec)
            log.info("index_created", collection=name, index=spec.name)
    return created


def _exists(spec: IndexSpec, existing: Sequence[Mapping[str, Any]]) -> bool:
    """Whether one of the listed indexes is `spec`."""
    for info in existing:
        keys = [(str(field), _direction(value)) for field, value in dict(info["key"]).items()]
        if spec.is_text:
            # Real MongoDB lists a text index as {_fts: "text", _ftsx: 1} with the indexed
            # fields as weights; a collection has at most one.
            if ("_fts", TEXT) in keys:
                if set(dict(info.get("weights", {}))) != set(spec.fields):
                    raise IndexConflict(
                        f"{spec.collection} has a text index {info['name']!r} on other fields"
                    )
                return True
            continue
        same_options = bool(info.get("unique", False)) == spec.unique
        if keys == list(spec.keys) and same_options:
            return True
        # The wire server renames the index and forgets its directions: the generated
        # name and the field list are what identifies it there.
        renamed = info["name"] == _wire_server_name(spec)
        if renamed and [field for field, _ in keys] == list(spec.fields) and same_options:
            return True
        if info["name"] == spec.name:
            raise IndexConflict(
                f"index {spec.name!r} of {spec.collection} has other keys or options; "
                "drop it to let the service create it again"
            )
    return False


def _direction(value: Any) -> int | str:
    return value if isinstance(value, str) else int(value)


def _wire_server_name(spec: IndexSpec) -> str:
    return f"idx_{spec.collection}_" + "_".join(f.replace(".", "_") for f in spec.fields)


async def _create_text_index(db: Database, collection: Collection, spec: IndexSpec) -> bool:
    """Create the text index; False when it turned out to exist already.

    Real MongoDB lists a text index, so `_exists` has found it before this runs. The wire
    server never lists one and refuses to build it again over existing documents with
    exactly `constraint failed`; only that answer, for this index, is taken as "exists",
    and only once the server's own list of full-text fields confirms every field.
    """
    try:
        await collection.create_index(list(spec.keys), name=spec.name)
    except OperationFailure as error:
        message = str((error.details or {}).get("errmsg", ""))
        if message != _WIRE_SERVER_TEXT_INDEX_EXISTS:
            raise
        if not set(spec.fields) <= await _wire_server_text_fields(db, collection.name):
            raise
        log.info("text_index_exists", collection=collection.name, index=spec.name)
        return False
    return True


async def _wire_server_text_fields(db: Database, collection: str) -> set[str]:
    """The fields the wire server keeps a full-text index of; empty when it cannot say."""
    try:
        answer = await db.command({"listSearchIndexes": collection})
    except OperationFailure:
        return set()  # real MongoDB: listIndexes already showed the text index, if any
    fields: set[str] = set()
    for entry in answer.get("cursor", {}).get("firstBatch", []):
        fields.update(field for field, kind in dict(entry.get("key", {})).items() if kind == TEXT)
    return fields
