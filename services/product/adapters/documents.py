"""How products and reservations are stored as MongoDB documents, both ways."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from services.common.money import Money
from services.product.domain.model import (
    PRODUCT_SCHEMA_VERSION,
    RESERVATION_SCHEMA_VERSION,
    AttributeValue,
    Inventory,
    PricedItem,
    Product,
    ProductState,
    Rating,
    Reservation,
    ReservationLine,
    ReservationState,
)

type Document = dict[str, Any]


def hold_field(order_id: str) -> str:
    """The product field holding an order's units; hashed so any order id is a safe key."""
    return "holds.h" + hashlib.sha256(order_id.encode()).hexdigest()[:40]


def money_to_doc(money: Money) -> Document:
    """A Money as a subdocument."""
    return {"currency": money.currency, "minor": money.minor}


def money_from_doc(doc: Mapping[str, Any]) -> Money:
    """A Money from its subdocument."""
    return Money(int(doc["minor"]), str(doc["currency"]))


def product_to_doc(product: Product) -> Document:
    """The stored shape of a product; effective_price_minor feeds price filters and sorting."""
    inventory = product.inventory
    return {
        "_id": product.product_id,
        "schema_version": PRODUCT_SCHEMA_VERSION,
        "seller_id": product.seller_id,
        "title": product.title,
        "description": product.description,
        "category": product.category,
        "subcategory": product.subcategory,
        "attributes": dict(product.attributes),
        "list_price": money_to_doc(product.list_price),
        "sale_price": money_to_doc(product.sale_price) if product.sale_price else None,
        "effective_price_minor": product.effective_price.minor,
        "currency": product.list_price.currency,
        "inventory": {
            "on_hand": inventory.on_hand,
            "reserved": inventory.reserved,
            "available": inventory.available,
        },
        "holds": {},
        "state": product.state.value,
        "image_urls": list(product.image_urls),
        "rating": {"average": product.rating.average, "count": product.rating.count},
        "version": product.version,
        "create_time": product.create_time,
        "update_time": product.update_time,
    }


def _attribute(value: Any) -> AttributeValue:
    if isinstance(value, bool | str):
        return value
    return float(value)


def product_from_doc(doc: Mapping[str, Any]) -> Product:
    """The product a stored document describes."""
    inventory = doc["inventory"]
    rating = doc.get("rating") or {}
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
        create_time=doc["create_time"],
        update_time=doc["update_time"],
        version=int(doc.get("version", 1)),
        rating=Rating(float(rating.get("average", 0.0)), int(rating.get("count", 0))),
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
