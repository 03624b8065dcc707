"""In-memory fakes of every product port, for unit tests of the use cases without I/O.

They keep the promises the MongoDB adapters keep (conditional writes, one hold per order
and product, versions that move on every edit) so the use cases meet the same answers.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from services.product.domain.commands import SearchFilter, SearchPage
from services.product.domain.model import (
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
)
from services.product.service_layer.ports import HoldOutcome, HoldResult, LedgerNote

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class FakeProducts:
    """ProductRepository over a dict; `stored` is shared with the stock and search fakes."""

    def __init__(self, stored: dict[str, Product]) -> None:
        self.stored = stored

    async def add(self, product: Product) -> None:
        self.stored[product.product_id] = product

    async def get(self, product_id: str) -> Product | None:
        return self.stored.get(product_id)

    async def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]:
        return {i: self.stored[i] for i in product_ids if i in self.stored}

    async def update_fields(
        self, product_id: str, *, expected_version: int, fields: Mapping[str, Any], now: datetime
    ) -> Product | None:
        current = self.stored.get(product_id)
        if current is None or current.version != expected_version:
            return None
        updated = replace(current, **fields, update_time=now, version=current.version + 1)
        self.stored[product_id] = updated
        return updated

    async def set_state(
        self,
        product_id: str,
        *,
        from_states: Sequence[ProductState],
        to_state: ProductState,
        now: datetime,
    ) -> Product | None:
        current = self.stored.get(product_id)
        if current is None or current.state not in from_states:
            return None
        updated = replace(current, state=to_state, update_time=now, version=current.version + 1)
        self.stored[product_id] = updated
        return updated

    async def archive_seller_products(self, seller_id: str, *, now: datetime) -> int:
        live = [
            p
            for p in self.stored.values()
            if p.seller_id == seller_id and p.state is not ProductState.ARCHIVED
        ]
        for product in live:
            self.stored[product.product_id] = replace(
                product, state=ProductState.ARCHIVED, update_time=now, version=product.version + 1
            )
        return len(live)

    async def add_discount(
        self, product_id: str, discount: Discount, *, now: datetime, max_discounts: int
    ) -> Product | None:
        current = self.stored.get(product_id)
        if current is None or len(current.discounts) >= max_discounts:
            return current
        updated = replace(
            current, discounts=(*current.discounts, discount), version=current.version + 1
        )
        self.stored[product_id] = updated
        return updated

    async def remove_discount(self, product_id: str, discount_id: str, *, now: datetime) -> bool:
        current = self.stored.get(product_id)
        if current is None or all(d.discount_id != discount_id for d in current.discounts):
            return False
        kept = tuple(d for d in current.discounts if d.discount_id != discount_id)
        self.stored[product_id] = replace(current, discounts=kept, version=current.version + 1)
        return True

    async def reprice_due(self, now: datetime, *, limit: int = 200) -> int:
        return 0  # prices are computed on read here; nothing is stored to restate

    async def change_rating(
        self, product_id: str, *, add: int | None = None, remove: int | None = None
    ) -> None:
        current = self.stored.get(product_id)
        if current is None:
            return
        histogram = list(current.rating.histogram)
        count, total = current.rating.count, current.rating.total
        for stars, sign in ((add, 1), (remove, -1)):
            if stars is not None:
                count, total = count + sign, total + sign * stars
                histogram[stars - 1] += sign
        rating = Rating(
            count, total, (histogram[0], histogram[1], histogram[2], histogram[3], histogram[4])
        )
        self.stored[product_id] = replace(current, rating=rating)

    async def in_category(
        self,
        category: str,
        *,
        states: Sequence[ProductState],
        exclude: Sequence[str],
        limit: int,
        by_rating: bool,
    ) -> list[Product]:
        found = [
            p
            for p in self.stored.values()
            if p.category == category and p.state in states and p.product_id not in exclude
        ]
        if by_rating:
            found.sort(key=lambda p: (-p.rating.average, -p.rating.count, p.product_id))
        else:
            found.sort(key=lambda p: p.create_time, reverse=True)
        return found[:limit]

    async def count_in_category(self, category_id: str) -> int:
        return sum(category_id in (p.category, p.subcategory) for p in self.stored.values())

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
        def key(p: Product) -> tuple[int, str]:
            return (p.create_time - _EPOCH) // timedelta(milliseconds=1), p.product_id

        found = sorted(
            (
                p
                for p in self.stored.values()
                if p.seller_id == seller_id
                and p.state in states
                and (not category or category in (p.category, p.subcategory))
                and (max_available is None or p.inventory.available <= max_available)
                and (after is None or key(p) < after)
            ),
            key=key,
            reverse=True,
        )
        return found[:limit]


class FakeCatalogSearch:
    """CatalogSearch in insertion order; the cursor key is a product's position."""

    def __init__(self, stored: dict[str, Product]) -> None:
        self.stored = stored
        self.searched: list[tuple[SearchFilter, tuple[ProductState, ...], int, Any]] = []

    async def search(
        self,
        search: SearchFilter,
        *,
        states: Sequence[ProductState],
        offset: int,
        limit: int,
        after: tuple[int | float | str, ...] | None = None,
    ) -> SearchPage:
        self.searched.append((search, tuple(states), offset, after))
        matching = [
            p
            for p in self.stored.values()
            if p.state in states and (not search.category or p.category == search.category)
        ]
        start = offset if after is None else int(after[0]) + 1
        page = matching[start : start + limit]
        return SearchPage(
            products=tuple(page),
            total_size=len(matching),
            keys=tuple((start + n,) for n in range(len(page))),
        )


class FakeStock:
    """StockStore on the shared products: one hold per (product, order), a ledger list."""

    def __init__(self, stored: dict[str, Product]) -> None:
        self.stored = stored
        self.holds: dict[tuple[str, str], int] = {}
        self.restocked: set[tuple[str, str]] = set()
        self.ledger: list[LedgerEntry] = []

    def _move(self, product_id: str, on_hand: int, reserved: int, note: LedgerNote) -> Product:
        current = self.stored[product_id]
        stock = current.inventory
        moved = replace(
            current, inventory=Inventory(stock.on_hand + on_hand, stock.reserved + reserved)
        )
        self.stored[product_id] = moved
        self.ledger.append(
            LedgerEntry(
                uuid.uuid4().hex, product_id, on_hand, reserved, note.reason, note.actor, note.time
            )
        )
        return moved

    async def hold(
        self,
        product_id: str,
        order_id: str,
        quantity: int,
        note: LedgerNote,
        *,
        states: Sequence[ProductState],
    ) -> HoldResult:
        current = self.stored.get(product_id)
        if current is None:
            return HoldResult(HoldOutcome.NOT_FOUND)
        if (product_id, order_id) in self.holds:
            return HoldResult(HoldOutcome.HELD, current)
        if current.state not in states:
            return HoldResult(HoldOutcome.NOT_FOUND)
        if current.inventory.available < quantity:
            return HoldResult(HoldOutcome.OUT_OF_STOCK, current)
        self.holds[(product_id, order_id)] = quantity
        return HoldResult(HoldOutcome.HELD, self._move(product_id, 0, quantity, note))

    async def unhold(
        self, product_id: str, order_id: str, note: LedgerNote, *, quantity: int | None = None
    ) -> None:
        quantity = self.holds.pop((product_id, order_id), None)
        if quantity is not None:
            self._move(product_id, 0, -quantity, note)

    async def sell_hold(
        self, product_id: str, order_id: str, note: LedgerNote, *, quantity: int | None = None
    ) -> None:
        quantity = self.holds.pop((product_id, order_id), None)
        if quantity is not None:
            self._move(product_id, -quantity, -quantity, note)

    async def restock(
        self, product_id: str, order_id: str, quantity: int, note: LedgerNote
    ) -> bool:
        if (product_id, order_id) in self.restocked or product_id not in self.stored:
            return False
        self.restocked.add((product_id, order_id))
        self._move(product_id, quantity, 0, note)
        return True

    async def adjust(self, product_id: str, delta: int, note: LedgerNote) -> Product | None:
        current = self.stored.get(product_id)
        if current is None or current.inventory.available + delta < 0:
            return None
        return self._move(product_id, delta, 0, note)

    async def ledger_page(self, product_id: str, *, offset: int, limit: int) -> list[LedgerEntry]:
        entries = [e for e in reversed(self.ledger) if e.product_id == product_id]
        return entries[offset : offset + limit]

    async def flush_all_ledgers(self, *, limit: int = 200) -> int:
        return 0  # entries go straight to the ledger here


@dataclass
class _Stored:
    reservation: Reservation
    lease_until: datetime
    expires_at: datetime | None = None


class FakeReservations:
    """ReservationStore over a dict keyed by order id, with leases and expiries by the clock."""

    def __init__(self) -> None:
        self.stored: dict[str, _Stored] = {}
        self.checkouts: dict[str, str] = {}

    async def claim(
        self,
        order_id: str,
        lines: Sequence[ReservationLine],
        *,
        lease_seconds: float,
        now: datetime,
    ) -> Reservation | None:
        if order_id in self.stored:
            return self.stored[order_id].reservation
        pending = Reservation(order_id, ReservationState.PENDING, tuple(lines))
        self.stored[order_id] = _Stored(pending, now + _seconds(lease_seconds))
        return None

    async def take_over(self, order_id: str, *, lease_seconds: float, now: datetime) -> bool:
        entry = self.stored.get(order_id)
        if entry is None or entry.reservation.state is not ReservationState.PENDING:
            return False
        if entry.lease_until >= now:
            return False
        entry.lease_until = now + _seconds(lease_seconds)
        return True

    async def link_checkout(self, checkout_id: str, order_id: str, *, now: datetime) -> str | None:
        before = self.checkouts.get(checkout_id)
        self.checkouts[checkout_id] = order_id
        return before if before not in (None, order_id) else None

    async def get(self, order_id: str) -> Reservation | None:
        entry = self.stored.get(order_id)
        return entry.reservation if entry else None

    async def mark_reserved(
        self,
        order_id: str,
        items: Sequence[PricedItem],
        *,
        expires_in_seconds: float,
        now: datetime,
    ) -> None:
        entry = self.stored.get(order_id)
        if entry is None or entry.reservation.state is not ReservationState.PENDING:
            return
        entry.reservation = replace(
            entry.reservation, state=ReservationState.RESERVED, items=tuple(items)
        )
        entry.expires_at = now + _seconds(expires_in_seconds)

    async def expired(
        self, *, states: Sequence[ReservationState], now: datetime, limit: int = 100
    ) -> list[str]:
        return [
            order_id
            for order_id, entry in self.stored.items()
            if entry.reservation.state in states
            and entry.expires_at is not None
            and entry.expires_at < now
        ][:limit]

    async def stale_pending(self, *, now: datetime, limit: int = 100) -> list[str]:
        return [
            order_id
            for order_id, entry in self.stored.items()
            if entry.reservation.state is ReservationState.PENDING and entry.lease_until < now
        ][:limit]

    async def abandon(self, order_id: str) -> None:
        entry = self.stored.get(order_id)
        if entry is not None and entry.reservation.state is ReservationState.PENDING:
            del self.stored[order_id]

    async def transition(
        self,
        order_id: str,
        *,
        from_states: Sequence[ReservationState],
        to_state: ReservationState,
    ) -> Reservation | None:
        entry = self.stored.get(order_id)
        if entry is None or entry.reservation.state not in from_states:
            return None
        entry.reservation = replace(entry.reservation, state=to_state)
        return entry.reservation


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


class FakeCategories:
    """CategoryRepository over a dict keyed by category id."""

    def __init__(self, *categories: Category) -> None:
        self.stored = {c.category_id: c for c in categories}

    async def add(self, category: Category) -> bool:
        return self.stored.setdefault(category.category_id, category) is category

    async def get(self, category_id: str) -> Category | None:
        return self.stored.get(category_id)

    async def list(self, parent_id: str | None) -> list[Category]:
        return [c for c in self.stored.values() if parent_id is None or c.parent_id == parent_id]

    async def replace(self, category: Category) -> bool:
        if category.category_id not in self.stored:
            return False
        self.stored[category.category_id] = category
        return True

    async def delete(self, category_id: str) -> bool:
        return self.stored.pop(category_id, None) is not None

    async def count_children(self, category_id: str) -> int:
        return len(await self.list(category_id))


class FakeReviews:
    """ReviewRepository over a dict; one review per (product, author), like the unique index."""

    def __init__(self) -> None:
        self.stored: dict[str, Review] = {}
        self.moderated: set[tuple[str, str]] = set()

    async def add(self, review: Review) -> bool:
        if any(
            (r.product_id, r.author_id) == (review.product_id, review.author_id)
            for r in self.stored.values()
        ):
            return False
        self.stored[review.review_id] = review
        return True

    async def get(self, product_id: str, review_id: str) -> Review | None:
        review = self.stored.get(review_id)
        return review if review is not None and review.product_id == product_id else None

    async def replace(self, review: Review, *, expected_version: int) -> bool:
        current = self.stored.get(review.review_id)
        if current is None or current.version != expected_version:
            return False
        # verified_purchase is set by order events only, never overwritten by edits.
        self.stored[review.review_id] = replace(review, verified_purchase=current.verified_purchase)
        return True

    async def delete(self, review: Review) -> bool:
        current = self.stored.get(review.review_id)
        if current is None or current.version != review.version:
            return False
        del self.stored[review.review_id]
        return True

    async def list_page(
        self, product_id: str, *, states: Sequence[ReviewState], offset: int, limit: int
    ) -> list[Review]:
        found = [
            r for r in self.stored.values() if r.product_id == product_id and r.state in states
        ]
        found.sort(key=lambda r: r.create_time, reverse=True)
        return found[offset : offset + limit]

    async def mark_verified(self, buyer_id: str, product_ids: Sequence[str]) -> int:
        marked = 0
        for review in list(self.stored.values()):
            if review.author_id == buyer_id and review.product_id in product_ids:
                self.stored[review.review_id] = replace(review, verified_purchase=True)
                marked += 1
        return marked

    async def by_author(self, author_id: str) -> list[Review]:
        found = [r for r in self.stored.values() if r.author_id == author_id]
        return sorted(found, key=lambda r: r.create_time)

    async def anonymise_author(self, author_id: str, *, now: datetime) -> int:
        mine = [r for r in self.stored.values() if r.author_id == author_id]
        for review in mine:
            self.stored[review.review_id] = replace(
                review,
                author_id=f"deleted:{review.review_id}",
                title="",
                body="",
                update_time=now,
                version=review.version + 1,
            )
        self.moderated = {(p, a) for p, a in self.moderated if a != author_id}
        return len(mine)

    async def record_moderation(
        self, product_id: str, author_id: str, *, review_id: str, admin_id: str, now: datetime
    ) -> None:
        self.moderated.add((product_id, author_id))

    async def is_moderated(self, product_id: str, author_id: str) -> bool:
        return (product_id, author_id) in self.moderated


class FakePurchases:
    """PurchaseStore: delivered (buyer, product) pairs and co-purchase counts per order."""

    def __init__(self) -> None:
        self.delivered: set[tuple[str, str]] = set()
        self.baskets: dict[str, tuple[str, tuple[str, ...]]] = {}
        self.pairs: dict[tuple[str, str], int] = {}

    async def record_delivered(
        self, buyer_id: str, product_ids: Sequence[str], *, now: datetime
    ) -> None:
        self.delivered.update((buyer_id, product_id) for product_id in product_ids)

    async def has_received(self, buyer_id: str, product_id: str) -> bool:
        return (buyer_id, product_id) in self.delivered

    async def forget_buyer(self, buyer_id: str) -> None:
        self.delivered = {(b, p) for b, p in self.delivered if b != buyer_id}

    async def count_basket(self, order_id: str, product_ids: Sequence[str]) -> bool:
        if order_id in self.baskets:
            return False
        products = tuple(sorted(set(product_ids)))
        self.baskets[order_id] = ("counted", products)
        self._move(products, 1)
        return True

    async def uncount_basket(self, order_id: str) -> bool:
        state, products = self.baskets.get(order_id, ("", ()))
        self.baskets[order_id] = ("cancelled", ())
        if state != "counted":
            return False
        self._move(products, -1)
        return True

    def _move(self, products: Sequence[str], step: int) -> None:
        for first in products:
            for second in products:
                if first != second:
                    self.pairs[(first, second)] = self.pairs.get((first, second), 0) + step

    async def also_bought(self, product_id: str, *, limit: int) -> list[tuple[str, int]]:
        found = [(b, n) for (a, b), n in self.pairs.items() if a == product_id and n > 0]
        return sorted(found, key=lambda pair: (-pair[1], pair[0]))[:limit]


class FakeProcessedEvents:
    """ProcessedEvents as a set of event ids."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    async def seen(self, event_id: str) -> bool:
        return event_id in self.ids

    async def remember(self, event_id: str, event_type: str, *, now: datetime) -> bool:
        if event_id in self.ids:
            return False
        self.ids[event_id] = event_type
        return True


@dataclass
class ProductFakes:
    """One set of fakes sharing one product store, as the MongoDB adapters share a database."""

    stored: dict[str, Product] = field(default_factory=dict)
    categories: FakeCategories = field(
        default_factory=lambda: FakeCategories(
            Category("apparel", "", "Apparel"), Category("shirts", "apparel", "Shirts")
        )
    )
    reservations: FakeReservations = field(default_factory=FakeReservations)
    reviews: FakeReviews = field(default_factory=FakeReviews)
    purchases: FakePurchases = field(default_factory=FakePurchases)
    processed: FakeProcessedEvents = field(default_factory=FakeProcessedEvents)

    def __post_init__(self) -> None:
        self.products = FakeProducts(self.stored)
        self.catalog = FakeCatalogSearch(self.stored)
        self.stock = FakeStock(self.stored)
