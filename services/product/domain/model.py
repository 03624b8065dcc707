"""Products, their prices, stock, reviews and categories, and the reservations orders hold."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from services.common.money import Money

# Bumped when the stored shape of a document changes, so readers can migrate old ones.
# 2: revision, discounts, attribute_pairs, rating sum and histogram, ledger outbox.
PRODUCT_SCHEMA_VERSION = 2
RESERVATION_SCHEMA_VERSION = 2
REVIEW_SCHEMA_VERSION = 1
CATEGORY_SCHEMA_VERSION = 1

type AttributeValue = str | float | bool


class ProductState(StrEnum):
    """Where a product is in its lifecycle; buyers only see published ones."""

    DRAFT = "DRAFT"
    PUBLISHED = "PUBLISHED"
    UNPUBLISHED = "UNPUBLISHED"
    ARCHIVED = "ARCHIVED"


# The states in which buyers find a product (search, recommendations) and can order it.
LISTED_STATES: tuple[ProductState, ...] = (ProductState.PUBLISHED,)

# The states a seller's own listings show them (and admins): every one, since drafts and
# retired products are theirs to manage and are reachable nowhere else in a list.
SELLER_LISTING_STATES: tuple[ProductState, ...] = tuple(ProductState)


def to_millis(moment: datetime) -> datetime:
    """`moment` cut to milliseconds, as MongoDB stores it (a read-back compares equal)."""
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class LifecycleAction(StrEnum):
    """A change of a product's lifecycle state a seller or admin asks for."""

    PUBLISH = "publish"
    UNPUBLISH = "unpublish"
    ARCHIVE = "archive"


# For each action: the states it may start from, and the state it leads to. Asking for
# the state a product is already in is a no-op, so retried calls are harmless.
LIFECYCLE: dict[LifecycleAction, tuple[frozenset[ProductState], ProductState]] = {
    LifecycleAction.PUBLISH: (
        frozenset({ProductState.DRAFT, ProductState.UNPUBLISHED}),
        ProductState.PUBLISHED,
    ),
    LifecycleAction.UNPUBLISH: (frozenset({ProductState.PUBLISHED}), ProductState.UNPUBLISHED),
    LifecycleAction.ARCHIVE: (
        frozenset({ProductState.DRAFT, ProductState.PUBLISHED, ProductState.UNPUBLISHED}),
        ProductState.ARCHIVED,
    ),
}


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
    """The aggregate of a product's visible reviews: count, star total and histogram."""

    count: int = 0
    total: int = 0
    histogram: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)

    @property
    def average(self) -> float:
        """The mean rating, 0 when there are no reviews."""
        return round(self.total / self.count, 4) if self.count > 0 else 0.0


@dataclass(frozen=True)
class Discount:
    """A price cut for a period: a percentage or a fixed amount off the base price."""

    discount_id: str
    start_time: datetime
    end_time: datetime
    percent_off: int = 0
    amount_off: Money | None = None

    def active_at(self, now: datetime) -> bool:
        """Whether the discount applies at `now`; the end time is exclusive."""
        return self.start_time <= now < self.end_time

    def apply(self, base: Money) -> Money:
        """The price after this discount; a buyer never pays less than one minor unit."""
        if self.amount_off is not None:
            cut = self.amount_off.minor
        else:
            # Rounded down, so the discount is never more than advertised.
            cut = base.minor * self.percent_off // 100
        return Money(max(base.minor - cut, 1), base.currency)


def effective_price(
    list_price: Money, sale_price: Money | None, discounts: Sequence[Discount], now: datetime
) -> Money:
    """The price a buyer pays at `now`: the sale price (or list price) after the best discount.

    Discounts do not stack: the one giving the lowest price wins.
    """
    base = sale_price if sale_price is not None else list_price
    best = base
    for discount in discounts:
        if discount.active_at(now):
            best = min(best, discount.apply(base), key=lambda money: money.minor)
    return best


def next_price_change(discounts: Sequence[Discount], now: datetime) -> datetime | None:
    """The next moment a discount starts or ends after `now`, when stored prices go stale."""
    moments = [
        moment
        for discount in discounts
        for moment in (discount.start_time, discount.end_time)
        if moment > now
    ]
    return min(moments, default=None)


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
    discounts: tuple[Discount, ...] = ()

    def effective_price_at(self, now: datetime) -> Money:
        """What a buyer pays at `now`, after the sale price and the best active discount."""
        return effective_price(self.list_price, self.sale_price, self.discounts, now)

    @property
    def etag(self) -> str:
        """An opaque version tag that changes with every edit of the listing."""
        return str(self.version)

    @property
    def is_published(self) -> bool:
        """Whether buyers can see and order the product."""
        return self.state in LISTED_STATES

    def visible_to(self, user_id: str | None, *, is_admin: bool) -> bool:
        """Published products are public; the others only their seller and admins see."""
        return self.is_published or self.managed_by(user_id, is_admin=is_admin)

    def managed_by(self, user_id: str | None, *, is_admin: bool) -> bool:
        """Whether the caller may change the listing: its seller or an admin."""
        return is_admin or (user_id is not None and user_id == self.seller_id)


def parse_etag(etag: str) -> int | None:
    """The version an etag of `Product.etag` names, or None if it is not one."""
    raw = etag.removeprefix("W/").strip('"')
    return int(raw) if raw.isdigit() else None


def attribute_pair(name: str, value: AttributeValue) -> str:
    """The normalised "name=value" form attribute filters and facets use."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float):
        text = f"{value:g}"
    else:
        text = " ".join(value.split()).lower()
    return f"{name}={text}"


@dataclass(frozen=True)
class Category:
    """A node of the category tree; products name top-level ones and their children."""

    category_id: str
    parent_id: str
    display_name: str
    attribute_names: tuple[str, ...] = ()


class ReviewState(StrEnum):
    """Whether a review is shown and counted."""

    VISIBLE = "VISIBLE"
    HIDDEN = "HIDDEN"


# The reviews everyone sees and the product's rating counts.
PUBLIC_REVIEW_STATES: tuple[ReviewState, ...] = (ReviewState.VISIBLE,)


@dataclass(frozen=True)
class Review:
    """One user's rating and text for a product; one per user and product."""

    review_id: str
    product_id: str
    author_id: str
    rating: int
    title: str
    body: str
    verified_purchase: bool
    seller_reply: str
    state: ReviewState
    create_time: datetime
    update_time: datetime
    version: int = 1

    @property
    def counted(self) -> bool:
        """Whether the review counts in the product's rating."""
        return self.state in PUBLIC_REVIEW_STATES


@dataclass(frozen=True)
class LedgerEntry:
    """One recorded change of a product's stock, for the audit trail."""

    entry_id: str
    product_id: str
    on_hand_delta: int
    reserved_delta: int
    reason: str
    actor: str
    create_time: datetime


class ReservationState(StrEnum):
    """Where an order's reservation is; each transition is claimed before it is applied."""

    PENDING = "pending"  # claimed by a call that is reserving the items
    RESERVED = "reserved"
    COMMITTING = "committing"
    COMMITTED = "committed"
    RELEASING = "releasing"
    RELEASED = "released"


# The reservations whose stock goes back once they pass their expiry: reserved and never
# committed, or a release that died half-way and is finished by the sweeper.
LAPSING_STATES: tuple[ReservationState, ...] = (
    ReservationState.RESERVED,
    ReservationState.RELEASING,
)


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
