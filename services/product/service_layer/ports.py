"""Every port the product use cases need, as protocols the MongoDB adapters implement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

from services.product.domain.commands import SearchFilter, SearchPage
from services.product.domain.model import (
    Category,
    Discount,
    LedgerEntry,
    PricedItem,
    Product,
    ProductState,
    Reservation,
    ReservationLine,
    ReservationState,
    Review,
    ReviewState,
)


@dataclass(frozen=True)
class LedgerNote:
    """Why and by whom stock moves, recorded in the inventory ledger with the move."""

    reason: str
    actor: str
    time: datetime


class ProductViews(Protocol):
    """Rendered product views kept beside the stored products, for reads that map nothing."""

    async def view(self, product_id: str) -> bytes | None:
        """The stored view of a product (see `mappers.products.cached_view`), or None."""
        ...


class ProductRepository(Protocol):
    """Stores products and answers catalog reads."""

    async def archive_seller_products(self, seller_id: str, *, now: datetime) -> int:
        """Archive every product of the seller not archived yet; how many were archived."""
        ...

    async def add(self, product: Product) -> None:
        """Store a new product."""
        ...

    async def get(self, product_id: str) -> Product | None:
        """The product with this id, or None."""
        ...

    async def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]:
        """The products among `product_ids` that exist, by id."""
        ...

    async def update_fields(
        self,
        product_id: str,
        *,
        expected_version: int,
        fields: Mapping[str, Any],
        now: datetime,
    ) -> Product | None:
        """Apply stored-field changes if still at `expected_version`; None if it moved on."""
        ...

    async def set_state(
        self,
        product_id: str,
        *,
        from_states: Sequence[ProductState],
        to_state: ProductState,
        now: datetime,
    ) -> Product | None:
        """Move the product to `to_state` if it is in one of `from_states`; None if not."""
        ...

    async def add_discount(
        self, product_id: str, discount: Discount, *, now: datetime, max_discounts: int
    ) -> Product | None:
        """Append a discount unless there are max_discounts already; None when gone."""
        ...

    async def remove_discount(self, product_id: str, discount_id: str, *, now: datetime) -> bool:
        """Remove a discount; False when it was not there."""
        ...

    async def reprice_due(self, now: datetime, *, limit: int = 200) -> int:
        """Restate stored prices whose discounts started or ended by `now`; how many."""
        ...

    async def change_rating(
        self, product_id: str, *, add: int | None = None, remove: int | None = None
    ) -> None:
        """Count a review's stars in and/or out of the product's rating, atomically."""
        ...

    async def in_category(
        self,
        category: str,
        *,
        states: Sequence[ProductState],
        exclude: Sequence[str],
        limit: int,
        by_rating: bool,
    ) -> list[Product]:
        """Products of a category in `states`, best rated or newest first."""
        ...

    async def count_in_category(self, category_id: str) -> int:
        """How many products name the category as category or subcategory."""
        ...

    async def list_by_seller(
        self,
        seller_id: str,
        *,
        states: Sequence[ProductState],
        category: str,
        max_available: int | None,
        after: tuple[int, str] | None,
        limit: int,
    ) -> list[Product]:
        """A seller's products in `states`, newest first (create time, then id, descending).

        `category` ("" for any) matches the category or the subcategory; `max_available`
        (None for any) keeps products with at most that many available units; `after`
        is the (create time in ms, id) of the last product of the previous page.
        """
        ...


class CatalogSearch(Protocol):
    """Full-text and filtered search of the catalog, with totals and facets."""

    async def search(
        self,
        search: SearchFilter,
        *,
        states: Sequence[ProductState],
        offset: int,
        limit: int,
        after: tuple[int | float | str, ...] | None = None,
    ) -> SearchPage:
        """One page of the products in `states` matching `search`, after a cursor if given."""
        ...


class HoldOutcome(StrEnum):
    """What happened when an order tried to hold units of one product."""

    HELD = "held"
    OUT_OF_STOCK = "out_of_stock"
    NOT_FOUND = "not_found"


@dataclass(frozen=True)
class HoldResult:
    """The outcome of a hold and, when held, the product as it was then (for its price)."""

    outcome: HoldOutcome
    product: Product | None = None


class StockStore(Protocol):
    """Moves units of one product between available, reserved and sold, once per order."""

    async def hold(
        self,
        product_id: str,
        order_id: str,
        quantity: int,
        note: LedgerNote,
        *,
        states: Sequence[ProductState],
    ) -> HoldResult:
        """Hold `quantity` units of a product in `states` for the order, unless already done."""
        ...

    async def unhold(
        self, product_id: str, order_id: str, note: LedgerNote, *, quantity: int | None = None
    ) -> None:
        """Give the order's held units back; `quantity`, if known, saves a read."""
        ...

    async def sell_hold(
        self, product_id: str, order_id: str, note: LedgerNote, *, quantity: int | None = None
    ) -> None:
        """Take the order's held units out of stock; `quantity`, if known, saves a read."""
        ...

    async def restock(
        self, product_id: str, order_id: str, quantity: int, note: LedgerNote
    ) -> bool:
        """Put a cancelled order's sold units back, once per order; False if done before."""
        ...

    async def adjust(self, product_id: str, delta: int, note: LedgerNote) -> Product | None:
        """Change on-hand units unless that takes them below the reserved; None if refused."""
        ...

    async def ledger_page(self, product_id: str, *, offset: int, limit: int) -> list[LedgerEntry]:
        """One page of a product's ledger, newest first."""
        ...

    async def flush_all_ledgers(self, *, limit: int = 200) -> int:
        """Copy ledger entries still queued on products to the ledger; how many products."""
        ...


class ReservationStore(Protocol):
    """Keeps one reservation document per order and its state transitions."""

    async def claim(
        self,
        order_id: str,
        lines: Sequence[ReservationLine],
        *,
        lease_seconds: float,
        now: datetime,
    ) -> Reservation | None:
        """Create the order's pending reservation; None when created, else the existing one."""
        ...

    async def take_over(self, order_id: str, *, lease_seconds: float, now: datetime) -> bool:
        """Claim a pending reservation whose lease expired (its caller died); True when won."""
        ...

    async def link_checkout(self, checkout_id: str, order_id: str, *, now: datetime) -> str | None:
        """Make `order_id` the checkout's current order; the order it replaced, if any."""
        ...

    async def get(self, order_id: str) -> Reservation | None:
        """The order's reservation, or None."""
        ...

    async def mark_reserved(
        self,
        order_id: str,
        items: Sequence[PricedItem],
        *,
        expires_in_seconds: float,
        now: datetime,
    ) -> None:
        """Record that every line is held, with the prices promised and when they lapse."""
        ...

    async def expired(
        self, *, states: Sequence[ReservationState], now: datetime, limit: int = 100
    ) -> list[str]:
        """Orders whose reservation is in one of `states` past its expiry at `now`."""
        ...

    async def stale_pending(self, *, now: datetime, limit: int = 100) -> list[str]:
        """Orders whose pending claim outlived its lease (the reserving call died)."""
        ...

    async def abandon(self, order_id: str) -> None:
        """Forget a pending reservation whose lines could not all be held."""
        ...

    async def transition(
        self,
        order_id: str,
        *,
        from_states: Sequence[ReservationState],
        to_state: ReservationState,
    ) -> Reservation | None:
        """Move the reservation to `to_state` if it is in one of `from_states`; None if not."""
        ...


class CategoryRepository(Protocol):
    """Stores the category tree."""

    async def add(self, category: Category) -> bool:
        """Store a new category; False when its id is taken."""
        ...

    async def get(self, category_id: str) -> Category | None:
        """The category, or None."""
        ...

    async def list(self, parent_id: str | None) -> list[Category]:
        """Every category, or the children of `parent_id`."""
        ...

    async def replace(self, category: Category) -> bool:
        """Store new values of an existing category; False when it is gone."""
        ...

    async def delete(self, category_id: str) -> bool:
        """Delete a category; False when it was not there."""
        ...

    async def count_children(self, category_id: str) -> int:
        """How many categories have this one as parent."""
        ...


class ReviewRepository(Protocol):
    """Stores reviews; the database refuses a second review by one user of one product."""

    async def anonymise_author(self, author_id: str, *, now: datetime) -> int:
        """Detach the author's reviews from them and drop their text; how many changed."""
        ...

    async def by_author(self, author_id: str) -> list[Review]:
        """Every review of the author, in every state, oldest first."""
        ...

    async def add(self, review: Review) -> bool:
        """Store a new review; False when the author already reviewed the product."""
        ...

    async def get(self, product_id: str, review_id: str) -> Review | None:
        """The review of this product with this id, or None."""
        ...

    async def replace(self, review: Review, *, expected_version: int) -> bool:
        """Store new values of a review still at `expected_version`; False if it moved on."""
        ...

    async def delete(self, review: Review) -> bool:
        """Delete a review still at its version; False if it moved on or is gone."""
        ...

    async def list_page(
        self, product_id: str, *, states: Sequence[ReviewState], offset: int, limit: int
    ) -> list[Review]:
        """One page of the product's reviews in `states`, newest first."""
        ...

    async def mark_verified(self, buyer_id: str, product_ids: Sequence[str]) -> int:
        """Flag the buyer's reviews of these products as verified purchases; how many."""
        ...

    async def record_moderation(
        self, product_id: str, author_id: str, *, review_id: str, admin_id: str, now: datetime
    ) -> None:
        """Remember that an admin hid this author's review of this product (idempotent)."""
        ...

    async def is_moderated(self, product_id: str, author_id: str) -> bool:
        """Whether an admin hid a review of this author on this product, ever."""
        ...


class PurchaseStore(Protocol):
    """What buyers received and what was bought together, fed by order events."""

    async def forget_buyer(self, buyer_id: str) -> None:
        """Drop what the buyer received (the co-purchase counts name nobody and stay)."""
        ...

    async def record_delivered(
        self, buyer_id: str, product_ids: Sequence[str], *, now: datetime
    ) -> None:
        """Remember that the buyer received these products."""
        ...

    async def has_received(self, buyer_id: str, product_id: str) -> bool:
        """Whether the buyer received the product."""
        ...

    async def count_basket(self, order_id: str, product_ids: Sequence[str]) -> bool:
        """Count each pair of the order's products as bought together, once per order."""
        ...

    async def uncount_basket(self, order_id: str) -> bool:
        """Take a counted order's pairs back out (it was cancelled), once per order."""
        ...

    async def also_bought(self, product_id: str, *, limit: int) -> list[tuple[str, int]]:
        """Products bought with this one, most often first, with their counts."""
        ...


class ProcessedEvents(Protocol):
    """Remembers which events were applied, so a redelivered event is skipped."""

    async def seen(self, event_id: str) -> bool:
        """Whether the event was processed already."""
        ...

    async def remember(self, event_id: str, event_type: str, *, now: datetime) -> bool:
        """Record the event as processed; False when it already was."""
        ...
