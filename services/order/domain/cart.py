"""A buyer's cart: its lines, the checkout that may hold it, and how it prices against the catalog."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum

from services.common.errors import Aborted, FailedPrecondition, NotFound
from services.common.money import Money
from services.order.domain.model import OrderLine, ShippingAddress
from services.order.domain.reasons import ErrorReason

# A cart checks out into one order, so it holds what one order may: 50 lines of at most
# 100 units (the limits of CreateOrder).
MAX_LINES = 50
MAX_QUANTITY = 100


@dataclass(frozen=True)
class GetCart:
    """Read the buyer's cart, priced against the catalog now."""

    buyer_id: uuid.UUID


@dataclass(frozen=True)
class AddCartItem:
    """Put units of a product on sale into the buyer's cart."""

    buyer_id: uuid.UUID
    product_id: str
    quantity: int


@dataclass(frozen=True)
class UpdateCartItem:
    """Set the quantity of a line of the buyer's cart."""

    buyer_id: uuid.UUID
    product_id: str
    quantity: int


@dataclass(frozen=True)
class RemoveCartItem:
    """Take a line out of the buyer's cart."""

    buyer_id: uuid.UUID
    product_id: str


@dataclass(frozen=True)
class CheckoutCart:
    """Buy the cart's lines (or the named ones) as one order, once per idempotency key."""

    buyer_id: uuid.UUID
    idempotency_key: str
    # sha256 of the request as sent, so a reused key with another body is caught.
    request_fingerprint: bytes
    product_ids: tuple[str, ...]
    # The destination given in full, or None when address_id names an address book entry.
    shipping_address: ShippingAddress | None
    payment_method_token: str
    address_id: uuid.UUID | None = None


@dataclass(frozen=True)
class ProductQuote:
    """What the catalog sells a product for now, and how many units it has."""

    product_id: str
    seller_id: str
    title: str
    list_price: Money
    unit_price: Money
    stock_available: int


@dataclass(frozen=True)
class CartLine:
    """A product in the cart, with what the catalog said when the buyer last added it."""

    product_id: str
    quantity: int
    seller_id: str
    title: str
    added_unit_price: Money
    added_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CheckoutHold:
    """A checkout of the cart under way: its key, the lines it buys and who runs it.

    `owner` is the request running the checkout now; it may run until `lease_until`, after
    which a retry with the same key takes the checkout over.
    """

    key: str
    owner: uuid.UUID
    lines: tuple[OrderLine, ...]
    lease_until: datetime


class CheckoutOutcome(StrEnum):
    """Where the checkout of a key stands, read from the key's durable record."""

    ABSENT = "absent"  # never claimed, or given back after a failure that left no trace
    RUNNING = "running"  # claimed and not finished: running, or its payment outcome unknown
    PLACED = "placed"  # the order is paid
    FAILED = "failed"  # finished without an order to keep


@dataclass
class Cart:
    """One buyer's cart. Lines keep the order they were first added in."""

    buyer_id: uuid.UUID
    lines: list[CartLine] = field(default_factory=list)
    hold: CheckoutHold | None = None
    updated_at: datetime | None = None

    @property
    def name(self) -> str:
        """The resource name of the cart."""
        return f"users/{self.buyer_id}/cart"

    def line(self, product_id: str) -> CartLine | None:
        """The line of `product_id`, if the cart holds one."""
        return next((line for line in self.lines if line.product_id == product_id), None)

    def add(self, quote: ProductQuote, quantity: int, *, at: datetime) -> None:
        """Add units of a product on sale; an existing line gets them added."""
        self._refuse_while_held()
        existing = self.line(quote.product_id)
        if existing is None:
            if len(self.lines) >= MAX_LINES:
                raise FailedPrecondition(
                    f"a cart holds at most {MAX_LINES} products; check out or remove some first",
                    reason=ErrorReason.CART_FULL,
                )
            self.lines.append(
                CartLine(
                    product_id=quote.product_id,
                    quantity=quantity,
                    seller_id=quote.seller_id,
                    title=quote.title,
                    added_unit_price=quote.unit_price,
                    added_at=at,
                    updated_at=at,
                )
            )
        else:
            total = existing.quantity + quantity
            if total > MAX_QUANTITY:
                raise FailedPrecondition(
                    f"a cart line holds at most {MAX_QUANTITY} units; it holds "
                    f"{existing.quantity} already",
                    reason=ErrorReason.CART_ITEM_QUANTITY_EXCEEDED,
                    metadata={"product_id": quote.product_id, "quantity": str(existing.quantity)},
                )
            # Adding again is the buyer accepting today's price: it becomes the one a later
            # read compares against.
            self._replace(
                replace(
                    existing,
                    quantity=total,
                    seller_id=quote.seller_id,
                    title=quote.title,
                    added_unit_price=quote.unit_price,
                    updated_at=at,
                )
            )
        self.updated_at = at

    def set_quantity(self, product_id: str, quantity: int, *, at: datetime) -> None:
        """Change the quantity of a line the cart holds."""
        self._refuse_while_held()
        existing = self._require(product_id)
        self._replace(replace(existing, quantity=quantity, updated_at=at))
        self.updated_at = at

    def remove(self, product_id: str, *, at: datetime) -> None:
        """Take a line out of the cart."""
        self._refuse_while_held()
        self._require(product_id)
        self.lines = [line for line in self.lines if line.product_id != product_id]
        self.updated_at = at

    def hold_for_checkout(
        self,
        key: str,
        owner: uuid.UUID,
        product_ids: Sequence[str],
        *,
        lease_until: datetime,
    ) -> tuple[OrderLine, ...]:
        """Hold the cart for a checkout of the named lines (every line when none are named).

        The hold is what keeps two checkouts from buying the same lines: while it stands,
        no other checkout starts and no line changes.
        """
        self._refuse_while_held()
        if product_ids:
            chosen = [self._require(product_id) for product_id in dict.fromkeys(product_ids)]
        else:
            chosen = list(self.lines)
        if not chosen:
            raise FailedPrecondition(
                "the cart is empty; add products before checking out",
                reason=ErrorReason.CART_EMPTY,
            )
        lines = tuple(OrderLine(line.product_id, line.quantity) for line in chosen)
        self.hold = CheckoutHold(key=key, owner=owner, lines=lines, lease_until=lease_until)
        return lines

    def take_over(self, owner: uuid.UUID, *, lease_until: datetime) -> tuple[OrderLine, ...]:
        """Make `owner` the runner of the held checkout (its first runner stopped)."""
        assert self.hold is not None
        self.hold = replace(self.hold, owner=owner, lease_until=lease_until)
        return self.hold.lines

    def lapse(self, owner: uuid.UUID, *, now: datetime) -> bool:
        """Let a retry take over at once the checkout `owner` stopped running."""
        if self.hold is None or self.hold.owner != owner or self.hold.lease_until <= now:
            return False
        self.hold = replace(self.hold, lease_until=now)
        return True

    def settle(
        self, outcome: CheckoutOutcome, *, now: datetime, owner: uuid.UUID | None = None
    ) -> bool:
        """Apply the outcome of the held checkout; whether the cart changed.

        A paid order takes its units out of the cart; a failure lifts the hold and leaves the
        lines as they were. A key with no record (given back, or not claimed yet) lifts the
        hold only when its `owner` says its call ended, or when the owner's lease ran out.
        """
        hold = self.hold
        if hold is None:
            return False
        if outcome is CheckoutOutcome.PLACED:
            bought = {line.product_id: line.quantity for line in hold.lines}
            kept: list[CartLine] = []
            for line in self.lines:
                left = line.quantity - bought.get(line.product_id, 0)
                if left > 0:
                    kept.append(line if left == line.quantity else replace(line, quantity=left))
            self.lines = kept
            self.updated_at = now
        elif outcome is CheckoutOutcome.RUNNING or (
            outcome is CheckoutOutcome.ABSENT and owner != hold.owner and now < hold.lease_until
        ):
            return False
        self.hold = None
        return True

    def held_by_another(self, key: str) -> bool:
        """Whether a checkout with another key holds the cart."""
        return self.hold is not None and self.hold.key != key

    def _refuse_while_held(self) -> None:
        if self.hold is not None:
            raise Aborted(
                "a checkout of this cart is in progress; retry when it has finished",
                reason=ErrorReason.CART_CHECKOUT_IN_PROGRESS,
            )

    def _require(self, product_id: str) -> CartLine:
        existing = self.line(product_id)
        if existing is None:
            raise NotFound(
                "the cart holds no such product",
                reason=ErrorReason.CART_ITEM_NOT_FOUND,
                metadata={"product_id": product_id},
            )
        return existing

    def _replace(self, changed: CartLine) -> None:
        self.lines = [changed if x.product_id == changed.product_id else x for x in self.lines]


class Availability(StrEnum):
    """Whether a line can be bought as it stands."""

    AVAILABLE = "available"
    INSUFFICIENT_STOCK = "insufficient_stock"
    UNAVAILABLE = "unavailable"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class PricedLine:
    """A cart line as the catalog prices it now."""

    line: CartLine
    availability: Availability
    # Today's prices; None when the catalog could not be asked or no longer sells the product.
    list_price: Money | None
    unit_price: Money | None
    stock_available: int

    @property
    def price_changed(self) -> bool:
        """Whether the product costs something else than when the buyer added it."""
        return self.unit_price is not None and self.unit_price != self.line.added_unit_price

    @property
    def unit_discount(self) -> Money | None:
        """How much less than the list price a unit costs now."""
        if self.list_price is None or self.unit_price is None:
            return None
        return self.list_price - self.unit_price

    @property
    def line_total(self) -> Money:
        """The line at today's price (the added price while today's is unknown)."""
        price = self.unit_price if self.unit_price is not None else self.line.added_unit_price
        return price.times(self.line.quantity)


@dataclass(frozen=True)
class CartView:
    """A cart priced against the catalog, as its buyer reads it."""

    cart: Cart
    lines: tuple[PricedLine, ...]

    @property
    def total_quantity(self) -> int:
        """Units over all lines."""
        return sum(priced.line.quantity for priced in self.lines)

    @property
    def _on_sale(self) -> list[PricedLine]:
        return [p for p in self.lines if p.availability is not Availability.UNAVAILABLE]

    @property
    def subtotal(self) -> Money | None:
        """The lines on sale at today's prices; None when empty or in mixed currencies."""
        return _sum([p.line_total for p in self._on_sale])

    @property
    def discount_total(self) -> Money | None:
        """What sale prices and discounts take off the lines on sale."""
        subtotal = self.subtotal
        if subtotal is None:
            return None
        discounts = [
            d.times(p.line.quantity) for p in self._on_sale if (d := p.unit_discount) is not None
        ]
        return _sum(discounts) or Money(0, subtotal.currency)

    @property
    def ready_for_checkout(self) -> bool:
        """Whether a checkout can go ahead as the cart stands."""
        return (
            bool(self.lines)
            and self.cart.hold is None
            and all(p.availability is Availability.AVAILABLE for p in self.lines)
            and self.subtotal is not None
        )


def price(cart: Cart, quotes: Mapping[str, ProductQuote] | None) -> CartView:
    """Price every line of `cart`; `quotes` None means the catalog could not be asked."""
    priced: list[PricedLine] = []
    for line in cart.lines:
        if quotes is None:
            priced.append(PricedLine(line, Availability.UNKNOWN, None, None, 0))
            continue
        quote = quotes.get(line.product_id)
        if quote is None:
            priced.append(PricedLine(line, Availability.UNAVAILABLE, None, None, 0))
            continue
        availability = (
            Availability.AVAILABLE
            if quote.stock_available >= line.quantity
            else Availability.INSUFFICIENT_STOCK
        )
        priced.append(
            PricedLine(
                line, availability, quote.list_price, quote.unit_price, quote.stock_available
            )
        )
    return CartView(cart, tuple(priced))


def _sum(amounts: Sequence[Money]) -> Money | None:
    if not amounts or len({a.currency for a in amounts}) != 1:
        return None
    return Money(sum(a.minor for a in amounts), amounts[0].currency)
