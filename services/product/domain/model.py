"""Products, their stock and the reservations orders hold on it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from services.common.money import Money

# Bumped when the stored shape of a document changes, so readers can migrate old ones.
PRODUCT_SCHEMA_VERSION = 1
RESERVATION_SCHEMA_VERSION = 1

type AttributeValue = str | float | bool


class ProductState(StrEnum):
    """Where a product is in its lifecycle; buyers only see published ones."""

    DRAFT = "DRAFT"
    PUBLISHED = "PUBLISHED"
    UNPUBLISHED = "UNPUBLISHED"
    ARCHIVED = "ARCHIVED"


@dataclass(frozen=True)
class Inventory:
    """A product's stock: units held, units promised to open orders, units still orderable."""

    on_hand: int
    reserved: int = 0

    @property
    def available(self) -> int:
        """Units that can be ordered now; never negative."""
        return max(self.on_hand - self.reserved, 0)


@dataclass(frozen=True)
class Rating:
    """The aggregate of a product's visible reviews."""

    average: float = 0.0
    count: int = 0


@dataclass(frozen=True)
class Product:
    """One listing of the catalog, owned by a seller."""

    product_id: str
    seller_id: str
    title: str
    description: str
    category: str
    subcategory: str
    attributes: Mapping[str, AttributeValue]
    list_price: Money
    sale_price: Money | None
    inventory: Inventory
    state: ProductState
    image_urls: tuple[str, ...]
    create_time: datetime
    update_time: datetime
    version: int = 1
    rating: Rating = field(default_factory=Rating)

    @property
    def effective_price(self) -> Money:
        """What a buyer pays now: the sale price when set, else the list price."""
        return self.sale_price if self.sale_price is not None else self.list_price

    @property
    def etag(self) -> str:
        """An opaque version tag that changes with every write."""
        return str(self.version)

    @property
    def is_published(self) -> bool:
        """Whether buyers can see and order the product."""
        return self.state is ProductState.PUBLISHED

    def visible_to(self, user_id: str | None, *, is_admin: bool) -> bool:
        """Published products are public; the others only their seller and admins see."""
        return self.is_published or is_admin or (user_id is not None and user_id == self.seller_id)


class ReservationState(StrEnum):
    """Where an order's reservation is; each transition is claimed before it is applied."""

    PENDING = "pending"  # claimed by a call that is reserving the items
    RESERVED = "reserved"
    COMMITTING = "committing"
    COMMITTED = "committed"
    RELEASING = "releasing"
    RELEASED = "released"


@dataclass(frozen=True)
class ReservationLine:
    """One product and quantity an order asks for."""

    product_id: str
    quantity: int


@dataclass(frozen=True)
class PricedItem:
    """What the catalog promised an order for one product, priced when it was reserved."""

    product_id: str
    seller_id: str
    title: str
    quantity: int
    unit_price: Money


@dataclass(frozen=True)
class Reservation:
    """The stock an order holds: the lines asked for and, once reserved, their prices."""

    order_id: str
    state: ReservationState
    lines: tuple[ReservationLine, ...]
    items: tuple[PricedItem, ...] = ()

    def same_request(self, lines: tuple[ReservationLine, ...]) -> bool:
        """Whether `lines` ask for what this reservation was made for, in any order."""
        return sorted(self.lines, key=_line_key) == sorted(lines, key=_line_key)


def _line_key(line: ReservationLine) -> tuple[str, int]:
    return (line.product_id, line.quantity)
