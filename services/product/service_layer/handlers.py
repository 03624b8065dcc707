"""The product service's core use cases: creating and reading listings, and reservations."""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import uuid
from dataclasses import asdict, dataclass, replace
from datetime import datetime

import structlog

from services.common.clock import Clock
from services.common.errors import (
    Aborted,
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Violations,
)
from services.common.identity import Caller
from services.common.pagination import clamp_page_size, decode_page_token, encode_page_token
from services.product.domain.commands import (
    BatchGetProducts,
    CommitReservation,
    CreateProduct,
    GetProduct,
    ReleaseReservation,
    ReserveInventory,
    SearchPage,
    SearchProducts,
    SortOrder,
)
from services.product.domain.model import (
    AttributeValue,
    Inventory,
    PricedItem,
    Product,
    ProductState,
    Reservation,
    ReservationLine,
    ReservationState,
)
from services.product.domain.reasons import ErrorReason
from services.product.service_layer import validation
from services.product.service_layer.ports import (
    CategoryRepository,
    HoldOutcome,
    LedgerNote,
    ProductRepository,
    ReservationStore,
    StockStore,
)
from services.product.service_layer.sellers import require_verified_seller

log = structlog.get_logger("product")

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def now_ms(clock: Clock) -> datetime:
    """The clock's time in milliseconds, as MongoDB stores it (a read-back compares equal)."""
    now = clock.now()
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def product_not_found(product_id: str) -> NotFound:
    """The error of a product that does not exist or that the caller may not see."""
    return NotFound(
        "no such product", reason=ErrorReason.PRODUCT_NOT_FOUND, metadata={"product_id": product_id}
    )


async def check_category_path(
    categories: CategoryRepository, category: str, subcategory: str
) -> None:
    """Raise InvalidArgument unless the category tree holds this category and subcategory.

    `category` must be a top-level category and `subcategory`, when set, one of its
    children: listings then always sit in the tree admins manage, so its facets and
    filters mean something. The answer names only the fields, not the tree.
    """
    violations = Violations()
    top = await categories.get(category)
    if top is None or top.parent_id:
        violations.add("product.category", "no such category: it must be a top-level category")
    elif subcategory:
        child = await categories.get(subcategory)
        violations.check(
            child is not None and child.parent_id == category,
            "product.subcategory",
            "no such subcategory of this category",
        )
    violations.raise_if_any()


async def create_product(
    command: CreateProduct,
    caller: Caller,
    products: ProductRepository,
    categories: CategoryRepository,
    *,
    clock: Clock,
) -> Product:
    """Create a listing owned by the caller, a seller or an admin with a verified email."""
    require_verified_seller(caller)
    validation.validate_create_product(command)
    await check_category_path(categories, command.category, command.subcategory)
    assert command.list_price is not None  # the validation refuses a missing list price
    attributes: dict[str, AttributeValue] = {
        name: value for name, value in command.attributes.items() if value is not None
    }
    now = now_ms(clock)
    product = Product(
        product_id=str(uuid.uuid4()),
        seller_id=caller.user_id,
        title=command.title.strip(),
        description=command.description,
        category=command.category,
        subcategory=command.subcategory,
        attributes=attributes,
        list_price=command.list_price,
        sale_price=command.sale_price,
        inventory=Inventory(on_hand=command.initial_stock),
        state=ProductState.PUBLISHED if command.publish else ProductState.DRAFT,
        image_urls=command.image_urls,
        create_time=now,
        update_time=now,
    )
    await products.add(product)
    log.info("product_created", product_id=product.product_id, state=product.state.value)
    return product


async def get_product(command: GetProduct, products: ProductRepository) -> Product:
    """The product, if the viewer may see it; others get NOT_FOUND, not a hint it exists."""
    validation.validate_product_id(command.product_id)
    product = await products.get(command.product_id)
    viewer = command.viewer
    if product is None or not product.visible_to(viewer.user_id, is_admin=viewer.is_admin):
        raise product_not_found(command.product_id)
    return product


async def batch_get_products(
    command: BatchGetProducts, products: ProductRepository
) -> list[Product]:
    """The products the viewer may see, in the order asked; the others are left out."""
    validation.validate_batch_get(command)
    found = await products.get_many(list(dict.fromkeys(command.product_ids)))
    viewer = command.viewer
    return [
        product
        for product_id in command.product_ids
        if (product := found.get(product_id)) is not None
        and product.visible_to(viewer.user_id, is_admin=viewer.is_admin)
    ]


@dataclass(frozen=True)
class SearchResult:
    """A page of search results and the token of the next page ("" on the last)."""

    page: SearchPage
    next_page_token: str


def _bad_page_token() -> InvalidArgument:
    return InvalidArgument(
        [FieldViolation("page_token", "does not belong to a search with these filters")]
    )


async def search_products(command: SearchProducts, products: ProductRepository) -> SearchResult:
    """Search published products; tokens carry an offset and a fingerprint of the filters."""
    limit = clamp_page_size(command.page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
    search = validation.validate_search(command)
    fingerprint = hashlib.sha256(json.dumps(asdict(search), sort_keys=True).encode()).hexdigest()[
        :16
    ]
    offset = 0
    after: tuple[int | float | str, ...] | None = None
    position = decode_page_token(command.page_token)
    if position is not None:
        if position.get("f") != fingerprint:
            raise _bad_page_token()
        raw_offset, raw_key = position.get("o"), position.get("k")
        if (
            isinstance(raw_offset, int)
            and raw_offset >= 0
            and search.sort_order is SortOrder.RELEVANCE
        ):
            offset = raw_offset
        elif isinstance(raw_key, list) and all(isinstance(v, int | float | str) for v in raw_key):
            after = tuple(raw_key)
        else:
            raise _bad_page_token()
    # One more than asked tells whether another page follows.
    page = await products.search(search, offset=offset, limit=limit + 1, after=after)
    more = len(page.products) > limit
    page = replace(page, products=page.products[:limit], keys=page.keys[:limit])
    token = ""
    if more and search.sort_order is SortOrder.RELEVANCE:
        # Text scores cannot be compared across calls, so relevance pages by offset.
        token = encode_page_token({"o": offset + limit, "f": fingerprint})
    elif more:
        # Other orders page by the last key seen: inserts and deletes never shift a page.
        token = encode_page_token({"k": list(page.keys[-1]), "f": fingerprint})
    return SearchResult(page, token)


async def reserve_inventory(
    command: ReserveInventory,
    reservations: ReservationStore,
    stock: StockStore,
    products: ProductRepository,
    *,
    clock: Clock,
    wait_seconds: float = 5.0,
    lease_seconds: float = 30.0,
    expires_in_seconds: float = 900.0,
) -> Reservation:
    """Hold every line for the order or none; a repeated order id gets the first result.

    The reservation document keyed by order id is claimed first, so of two concurrent calls
    for one order only one reserves; the other waits for its outcome. Each product holds at
    most one hold per order, so a retry after a crash never reserves twice.
    """
    validation.validate_reserve(command)
    if command.checkout_id:
        await _release_earlier_attempt(command, reservations, stock)
    deadline = time.monotonic() + wait_seconds
    while True:
        existing = await reservations.claim(
            command.order_id, command.lines, lease_seconds=lease_seconds
        )
        if existing is None:
            return await _reserve_claimed(
                command, reservations, stock, products, expires_in_seconds, clock
            )
        _check_same_request(existing, command)
        if existing.state is ReservationState.PENDING:
            if await reservations.take_over(command.order_id, lease_seconds=lease_seconds):
                log.warning("reservation_taken_over", order_id=command.order_id)
                return await _reserve_claimed(
                    command, reservations, stock, products, expires_in_seconds, clock
                )
            if time.monotonic() >= deadline:
                raise Aborted(
                    "another call is reserving stock for this order; retry",
                    reason=ErrorReason.RESERVATION_IN_PROGRESS,
                    metadata={"order_id": command.order_id},
                )
            await asyncio.sleep(0.02)
            continue  # the claim is retried: the other call may have given up on the order
        if existing.state in (ReservationState.RELEASING, ReservationState.RELEASED):
            raise FailedPrecondition(
                "this order's reservation was released",
                reason=ErrorReason.RESERVATION_RELEASED,
                metadata={"order_id": command.order_id},
            )
        return existing


async def _release_earlier_attempt(
    command: ReserveInventory, reservations: ReservationStore, stock: StockStore
) -> None:
    """A retried checkout came back with a new order id: its earlier reservation goes back.

    The order service asks for a new order id only once the earlier attempt ended without
    an order, so that reservation holds stock nobody will buy; a committed one is a sale
    and stays. A release that cannot finish now is left to the order reconciler's retry
    and the expiry sweeper.
    """
    earlier = await reservations.link_checkout(command.checkout_id, command.order_id)
    if earlier is None:
        return
    try:
        await release_reservation(ReleaseReservation(earlier), reservations, stock)
    except DomainError as error:
        log.info("earlier_reservation_kept", order_id=earlier, reason=error.reason)
        return
    log.info("earlier_reservation_released", order_id=earlier, replaced_by=command.order_id)


def _check_same_request(existing: Reservation, command: ReserveInventory) -> None:
    if not existing.same_request(command.lines):
        raise FailedPrecondition(
            "this order id already reserved different items",
            reason=ErrorReason.RESERVATION_MISMATCH,
            metadata={"order_id": command.order_id},
        )


async def _reserve_claimed(
    command: ReserveInventory,
    reservations: ReservationStore,
    stock: StockStore,
    products: ProductRepository,
    expires_in_seconds: float,
    clock: Clock,
) -> Reservation:
    order_id = command.order_id
    now = clock.now()  # one price instant for every line of the order
    held: list[str] = []
    items: list[PricedItem] = []
    try:
        # Refuse unknown products before moving any stock, so the common error touches nothing.
        known = await products.get_many([line.product_id for line in command.lines])
        for line in command.lines:
            product = known.get(line.product_id)
            if product is None or not product.is_published:
                raise product_not_found(line.product_id)
        for line in command.lines:
            note = LedgerNote(f"reserve order {order_id}", "order-service")
            result = await stock.hold(line.product_id, order_id, line.quantity, note)
            if result.outcome is HoldOutcome.NOT_FOUND or result.product is None:
                raise product_not_found(line.product_id)
            if result.outcome is HoldOutcome.OUT_OF_STOCK:
                raise FailedPrecondition(
                    "not enough stock for this product",
                    reason=ErrorReason.OUT_OF_STOCK,
                    metadata={"product_id": line.product_id},
                )
            held.append(line.product_id)
            items.append(_priced(result.product, line, now))
        await reservations.mark_reserved(order_id, items, expires_in_seconds=expires_in_seconds)
    except BaseException:
        # Undo on every failure, cancellation included: an order holds all its items or none.
        undo = LedgerNote(f"undo partial reservation of order {order_id}", "order-service")
        for product_id in reversed(held):
            await stock.unhold(product_id, order_id, undo)
        await reservations.abandon(order_id)
        raise
    log.info("inventory_reserved", order_id=order_id, items=len(items))
    return Reservation(order_id, ReservationState.RESERVED, command.lines, tuple(items))


def _priced(product: Product, line: ReservationLine, now: datetime) -> PricedItem:
    return PricedItem(
        product_id=product.product_id,
        seller_id=product.seller_id,
        title=product.title,
        quantity=line.quantity,
        unit_price=product.effective_price_at(now),
    )


async def commit_reservation(
    command: CommitReservation, reservations: ReservationStore, stock: StockStore
) -> None:
    """Sell the order's held units; repeating a commit is harmless, a released order refused."""
    validation.validate_order_id(command.order_id)
    order_id = command.order_id
    reservation = await reservations.transition(
        order_id,
        from_states=(ReservationState.RESERVED, ReservationState.COMMITTING),
        to_state=ReservationState.COMMITTING,
    )
    if reservation is None:
        current = await reservations.get(order_id)
        if current is None:
            raise NotFound(
                "no reservation for this order",
                reason=ErrorReason.RESERVATION_NOT_FOUND,
                metadata={"order_id": order_id},
            )
        if current.state is ReservationState.COMMITTED:
            return
        if current.state in (ReservationState.RELEASING, ReservationState.RELEASED):
            raise FailedPrecondition(
                "this order's reservation was released",
                reason=ErrorReason.RESERVATION_RELEASED,
                metadata={"order_id": order_id},
            )
        raise _in_progress(order_id)
    note = LedgerNote(f"commit order {order_id}", "order-service")
    for line in reservation.lines:
        await stock.sell_hold(line.product_id, order_id, note)
    await reservations.transition(
        order_id, from_states=(ReservationState.COMMITTING,), to_state=ReservationState.COMMITTED
    )
    log.info("reservation_committed", order_id=order_id)


async def release_reservation(
    command: ReleaseReservation,
    reservations: ReservationStore,
    stock: StockStore,
    *,
    expired: bool = False,
) -> None:
    """Return the order's held units; unknown orders and repeats are no-ops, sold ones refused.

    The expiry sweeper releases lapsed reservations through here too (`expired`), so a
    commit racing with the expiry settles one way: the reservation's state is claimed first.
    """
    validation.validate_order_id(command.order_id)
    order_id = command.order_id
    reservation = await reservations.transition(
        order_id,
        from_states=(ReservationState.RESERVED, ReservationState.RELEASING),
        to_state=ReservationState.RELEASING,
    )
    if reservation is None:
        current = await reservations.get(order_id)
        if current is None or current.state is ReservationState.RELEASED:
            return
        if current.state in (ReservationState.COMMITTING, ReservationState.COMMITTED):
            raise FailedPrecondition(
                "this order's reservation was already committed",
                reason=ErrorReason.RESERVATION_COMMITTED,
                metadata={"order_id": order_id},
            )
        raise _in_progress(order_id)
    if expired:
        note = LedgerNote(f"expire reservation of order {order_id}", "reservation-sweeper")
    else:
        note = LedgerNote(f"release order {order_id}", "order-service")
    for line in reservation.lines:
        await stock.unhold(line.product_id, order_id, note)
    await reservations.transition(
        order_id, from_states=(ReservationState.RELEASING,), to_state=ReservationState.RELEASED
    )
    log.info("reservation_released", order_id=order_id)


def _in_progress(order_id: str) -> Aborted:
    return Aborted(
        "the order's reservation is still being made; retry",
        reason=ErrorReason.RESERVATION_IN_PROGRESS,
        metadata={"order_id": order_id},
    )
