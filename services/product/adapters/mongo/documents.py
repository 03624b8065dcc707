"""How products, reservations, categories and reviews are stored as MongoDB documents."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from services.common.money import Money
from services.product.domain.model import (
    CATEGORY_SCHEMA_VERSION,
    PRODUCT_SCHEMA_VERSION,
    RESERVATION_SCHEMA_VERSION,
    REVIEW_SCHEMA_VERSION,
    AttributeValue,
    Category,
    Discount,
    Inventory,
    LedgerEntry,
    PricedItem,
    Product,
    ProductState,
    Rating,
    Reservation,
    ReservationLine,
    ReservationState,
    Review,
    ReviewState,
    attribute_pair,
    effective_price,
    next_price_change,
)

type Document = dict[str, Any]

LEDGER_SCHEMA_VERSION = 1

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Every write to a product bumps its revision, so the cache can tell newer from older.
BUMP_REVISION = {"revision": 1}


def hold_field(order_id: str) -> str:
    """The product field holding an order's units; hashed so any order id is a safe key."""
    return "holds.h" + hashlib.sha256(order_id.encode()).hexdigest()[:40]


def money_to_doc(money: Money) -> Document:
    """A Money as a subdocument."""
    return {"currency": money.currency, "minor": money.minor}


def money_from_doc(doc: Mapping[str, Any]) -> Money:
    """A Money from its subdocument."""
    return Money(int(doc["minor"]), str(doc["currency"]))


def discount_to_doc(discount: Discount) -> Document:
    """A discount as a subdocument."""
    return {
        "discount_id": discount.discount_id,
        "percent_off": discount.percent_off,
        "amount_off": money_to_doc(discount.amount_off) if discount.amount_off else None,
        "start_time": discount.start_time,
        "end_time": discount.end_time,
    }


def discount_from_doc(doc: Mapping[str, Any]) -> Discount:
    """The discount a subdocument describes."""
    amount_off = doc.get("amount_off")
    return Discount(
        discount_id=str(doc["discount_id"]),
        start_time=time_from_doc(doc["start_time"]),
        end_time=time_from_doc(doc["end_time"]),
        percent_off=int(doc.get("percent_off") or 0),
        amount_off=money_from_doc(amount_off) if amount_off else None,
    )


def time_to_ms(value: datetime) -> int:
    """A time as milliseconds since the epoch.

    Times that updates `$set` at the top level of a document are stored as integers: they
    compare and sort the same on every server (the wire server in tests turns a top-level
    `$set` of a date into a string). Times written only with inserts stay dates.
    """
    return (value - _EPOCH) // timedelta(milliseconds=1)


def time_from_doc(value: Any) -> datetime:
    """A stored time: a date (schema 1 documents) or milliseconds since the epoch."""
    if isinstance(value, datetime):
        return value
    return _EPOCH + timedelta(milliseconds=int(value))


def price_fields(
    list_price: Money, sale_price: Money | None, discounts: Sequence[Discount], now: datetime
) -> Document:
    """The stored price fields search filters and sorts by, and when they go stale.

    Reads compute the effective price afresh; the stored copy is refreshed by the repricer
    once `price_changes_at` passes, so searches by price follow discounts within a sweep.
    """
    changes_at = next_price_change(discounts, now)
    return {
        "effective_price_minor": effective_price(list_price, sale_price, discounts, now).minor,
        # 0 when no discount starts or ends in the future.
        "price_changes_at_ms": time_to_ms(changes_at) if changes_at else 0,
    }


def attribute_pairs(attributes: Mapping[str, AttributeValue]) -> list[str]:
    """The normalised name=value pairs of a product, for attribute filters and facets."""
    return sorted(attribute_pair(name, value) for name, value in attributes.items())


def product_to_doc(product: Product) -> Document:
    """The stored shape of a product."""
    inventory = product.inventory
    rating = product.rating
    return {
        "_id": product.product_id,
        "schema_version": PRODUCT_SCHEMA_VERSION,
        "seller_id": product.seller_id,
        "title": product.title,
        "description": product.description,
        "category": product.category,
        "subcategory": product.subcategory,
        "attributes": dict(product.attributes),
        "attribute_pairs": attribute_pairs(product.attributes),
        "list_price": money_to_doc(product.list_price),
        "sale_price": money_to_doc(product.sale_price) if product.sale_price else None,
        # Keyed by discount id, so one is added or removed with a $set or $unset of its key.
        "discounts": {d.discount_id: discount_to_doc(d) for d in product.discounts},
        **price_fields(
            product.list_price, product.sale_price, product.discounts, product.update_time
        ),
        "currency": product.list_price.currency,
        "inventory": {
            "on_hand": inventory.on_hand,
            "reserved": inventory.reserved,
            "available": inventory.available,
        },
        "holds": {},
        # Ledger entries queued by stock moves, keyed by entry id, until copied to the ledger.
        "ledger_outbox": {},
        "ledger_pending": 0,
        "state": product.state.value,
        "image_urls": list(product.image_urls),
        "rating": {
            "average": rating.average,
            "count": rating.count,
            "total": rating.total,
            "histogram": {str(stars): rating.histogram[stars - 1] for stars in range(1, 6)},
        },
        "version": product.version,
        # Bumped by every write, edits and stock moves alike; the cache keeps the newest.
        "revision": 1,
        "create_time": product.create_time,
        # Newest-first sorting and its cursors compare integers, which every server orders
        # alike (the wire server compares dates inconsistently).
        "create_time_ms": time_to_ms(product.create_time),
        "update_time": time_to_ms(product.update_time),
    }


def _attribute(value: Any) -> AttributeValue:
    if isinstance(value, bool | str):
        return value
    return float(value)


def rating_from_doc(doc: Mapping[str, Any]) -> Rating:
    """The rating aggregate of a product document; schema 1 documents had only count."""
    histogram = doc.get("histogram") or {}
    count = int(doc.get("count", 0))
    total = int(doc.get("total", round(float(doc.get("average", 0.0)) * count)))
    h = tuple(max(int(histogram.get(str(stars), 0)), 0) for stars in range(1, 6))
    return Rating(
        count=max(count, 0), total=max(total, 0), histogram=(h[0], h[1], h[2], h[3], h[4])
    )


def _discounts(stored: Any) -> tuple[Discount, ...]:
    values = stored.values() if isinstance(stored, Mapping) else (stored or ())
    return tuple(
        sorted((discount_from_doc(d) for d in values), key=lambda d: (d.start_time, d.discount_id))
    )


def product_from_doc(doc: Mapping[str, Any]) -> Product:
    """The product a stored document describes."""
    inventory = doc["inventory"]
    sale_price = doc.get("sale_price")
    return Product(
        product_id=str(doc["_id"]),
        seller_id=str(doc["seller_id"]),
        title=str(doc["title"]),
        description=str(doc.get("description", "")),
        category=str(doc["category"]),
        subcategory=str(doc.get("subcategory", "")),
        attributes={str(k): _attribute(v) for k, v in (doc.get("attributes") or {}).items()},
        list_price=money_from_doc(doc["list_price"]),
        sale_price=money_from_doc(sale_price) if sale_price else None,
        inventory=Inventory(on_hand=int(inventory["on_hand"]), reserved=int(inventory["reserved"])),
        state=ProductState(doc["state"]),
        image_urls=tuple(str(u) for u in doc.get("image_urls", ())),
        create_time=time_from_doc(doc["create_time"]),
        update_time=time_from_doc(doc["update_time"]),
        version=int(doc.get("version", 1)),
        rating=rating_from_doc(doc.get("rating") or {}),
        discounts=_discounts(doc.get("discounts")),
    )


def ledger_entry_to_doc(entry: LedgerEntry) -> Document:
    """A ledger entry, as queued on the product and as stored in the ledger collection."""
    return {
        "_id": entry.entry_id,
        "schema_version": LEDGER_SCHEMA_VERSION,
        "product_id": entry.product_id,
        "on_hand_delta": entry.on_hand_delta,
        "reserved_delta": entry.reserved_delta,
        "reason": entry.reason,
        "actor": entry.actor,
        "create_time": entry.create_time,
    }


def ledger_entry_from_doc(doc: Mapping[str, Any]) -> LedgerEntry:
    """The ledger entry a stored document describes."""
    return LedgerEntry(
        entry_id=str(doc["_id"]),
        product_id=str(doc["product_id"]),
        on_hand_delta=int(doc["on_hand_delta"]),
        reserved_delta=int(doc["reserved_delta"]),
        reason=str(doc["reason"]),
        actor=str(doc["actor"]),
        create_time=time_from_doc(doc["create_time"]),
    )


def category_to_doc(category: Category) -> Document:
    """The stored shape of a category."""
    return {
        "_id": category.category_id,
        "schema_version": CATEGORY_SCHEMA_VERSION,
        "parent_id": category.parent_id,
        "display_name": category.display_name,
        "attribute_names": list(category.attribute_names),
    }


def category_from_doc(doc: Mapping[str, Any]) -> Category:
    """The category a stored document describes."""
    return Category(
        category_id=str(doc["_id"]),
        parent_id=str(doc.get("parent_id", "")),
        display_name=str(doc["display_name"]),
        attribute_names=tuple(str(n) for n in doc.get("attribute_names", ())),
    )


def review_to_doc(review: Review) -> Document:
    """The stored shape of a review."""
    return {
        "_id": review.review_id,
        "schema_version": REVIEW_SCHEMA_VERSION,
        "product_id": review.product_id,
        "author_id": review.author_id,
        "rating": review.rating,
        "title": review.title,
        "body": review.body,
        "verified_purchase": review.verified_purchase,
        "seller_reply": review.seller_reply,
        "state": review.state.value,
        "version": review.version,
        "create_time": review.create_time,
        "update_time": time_to_ms(review.update_time),
    }


def review_from_doc(doc: Mapping[str, Any]) -> Review:
    """The review a stored document describes."""
    return Review(
        review_id=str(doc["_id"]),
        product_id=str(doc["product_id"]),
        author_id=str(doc["author_id"]),
        rating=int(doc["rating"]),
        title=str(doc.get("title", "")),
        body=str(doc.get("body", "")),
        verified_purchase=bool(doc.get("verified_purchase", False)),
        seller_reply=str(doc.get("seller_reply", "")),
        state=ReviewState(doc["state"]),
        create_time=time_from_doc(doc["create_time"]),
        update_time=time_from_doc(doc["update_time"]),
        version=int(doc.get("version", 1)),
    )


def reservation_to_doc(
    order_id: str, lines: tuple[ReservationLine, ...], *, lease_expires_ms: int
) -> Document:
    """A new pending reservation, leased to the call that claimed it."""
    return {
        "_id": order_id,
        "schema_version": RESERVATION_SCHEMA_VERSION,
        "state": ReservationState.PENDING.value,
        "lines": [{"product_id": line.product_id, "quantity": line.quantity} for line in lines],
        "items": [],
        # Milliseconds since the epoch: plain integers compare the same on every server.
        "lease_expires_ms": lease_expires_ms,
    }


def priced_item_to_doc(item: PricedItem) -> Document:
    """A priced item as a subdocument."""
    return {
        "product_id": item.product_id,
        "seller_id": item.seller_id,
        "title": item.title,
        "quantity": item.quantity,
        "unit_price": money_to_doc(item.unit_price),
    }


def reservation_from_doc(doc: Mapping[str, Any]) -> Reservation:
    """The reservation a stored document describes."""
    return Reservation(
        order_id=str(doc["_id"]),
        state=ReservationState(doc["state"]),
        lines=tuple(
            ReservationLine(str(line["product_id"]), int(line["quantity"]))
            for line in doc.get("lines", ())
        ),
        items=tuple(
            PricedItem(
                product_id=str(item["product_id"]),
                seller_id=str(item["seller_id"]),
                title=str(item["title"]),
                quantity=int(item["quantity"]),
                unit_price=money_from_doc(item["unit_price"]),
            )
            for item in doc.get("items", ())
        ),
    )
