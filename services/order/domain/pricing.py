"""What an order costs beyond its items: each seller's shipping and the destination's tax.

`price_parts` is the one place the money of a seller part is computed. Checkout fixes its
result on the order when it is placed; the payouts ledger reads the same parts: a seller is
credited the part's total and pays commission on `SellerPart.seller_earnings` (items and
shipping). The seller is the merchant of record: the platform collects the tax with the
payment and passes it on with the sale, and the seller remits it.

Rules, all in integer minor units of the order's currency:
- shipping of a part = the seller's rate for the destination country (else the seller's
  default rate, else nothing): flat fee + per-item fee x units; zero when the part's item
  subtotal is at least the rate's free-over threshold. A seller with no profile ships free.
- tax of a part = (subtotal + shipping) x basis points / 10000, rounded half up, per part.
  A country without a tax rate is taxed at zero.
- the order's subtotal, shipping, tax and total are the sums of its parts, so they
  reconcile to the cent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from services.common.money import Money

MAX_BASIS_POINTS = 10_000


class PricedItem(Protocol):
    """What pricing needs of an order line."""

    @property
    def seller_id(self) -> str:
        """Who sells the line."""
        ...

    @property
    def quantity(self) -> int:
        """The units ordered."""
        ...

    @property
    def line_total(self) -> Money:
        """Unit price times quantity."""
        ...


@dataclass(frozen=True)
class ShippingRate:
    """A seller's charge to ship to one destination (or to every other, as the default)."""

    country_code: str  # "" for the default rate
    flat_fee_minor: int = 0
    per_item_fee_minor: int = 0
    # Shipping is free when the seller's item subtotal is at least this; None: never free.
    free_over_minor: int | None = None

    def charge(self, subtotal_minor: int, units: int) -> int:
        """The shipping of a part with this item subtotal and number of units."""
        if self.free_over_minor is not None and subtotal_minor >= self.free_over_minor:
            return 0
        return self.flat_fee_minor + self.per_item_fee_minor * units


@dataclass(frozen=True)
class ShippingProfile:
    """A seller's shipping rates, all in one currency."""

    seller_id: str
    currency: str
    default_rate: ShippingRate | None = None
    country_rates: tuple[ShippingRate, ...] = ()
    updated_at: datetime | None = None

    def rate_for(self, country_code: str) -> ShippingRate | None:
        """The rate of the destination, else the default, else None (free shipping)."""
        for rate in self.country_rates:
            if rate.country_code == country_code:
                return rate
        return self.default_rate


@dataclass(frozen=True)
class TaxRate:
    """The platform's tax rate for one destination country."""

    country_code: str
    basis_points: int
    updated_at: datetime | None = None


@dataclass(frozen=True)
class SellerPart:
    """One seller's share of an order, fixed when the order is placed."""

    seller_id: str
    subtotal: Money
    shipping: Money
    tax: Money

    @property
    def total(self) -> Money:
        """What the buyer pays for this part."""
        return self.subtotal + self.shipping + self.tax

    def tax_on(self, amount_minor: int) -> int:
        """The tax the part charged on `amount_minor` of it, rounded half up (for returns)."""
        taxed = self.subtotal.minor + self.shipping.minor
        if taxed <= 0:
            return 0
        return (amount_minor * self.tax.minor * 2 + taxed) // (2 * taxed)

    @property
    def seller_earnings(self) -> Money:
        """What the platform's commission is charged on: items and shipping, not the tax."""
        return self.subtotal + self.shipping


class ShippingCurrencyMismatch(Exception):
    """A seller's shipping profile is in another currency than the order."""

    def __init__(self, seller_id: str, currency: str) -> None:
        super().__init__(f"seller {seller_id} ships in {currency}")
        self.seller_id = seller_id
        self.currency = currency


def tax_of(amount_minor: int, basis_points: int) -> int:
    """The amount x basis points / 10000, rounded half up (amounts are never negative)."""
    return (amount_minor * basis_points + MAX_BASIS_POINTS // 2) // MAX_BASIS_POINTS


def price_parts(
    items: Sequence[PricedItem],
    *,
    currency: str,
    country_code: str,
    profiles: Mapping[str, ShippingProfile],
    tax_basis_points: int,
) -> list[SellerPart]:
    """The parts of an order, one per seller in order of first appearance.

    Raises ShippingCurrencyMismatch when a seller's profile is not in `currency`.
    """
    subtotals: dict[str, int] = {}
    units: dict[str, int] = {}
    for item in items:
        subtotals[item.seller_id] = subtotals.get(item.seller_id, 0) + item.line_total.minor
        units[item.seller_id] = units.get(item.seller_id, 0) + item.quantity
    parts = []
    for seller_id, subtotal in subtotals.items():
        shipping = 0
        profile = profiles.get(seller_id)
        rate = profile.rate_for(country_code) if profile is not None else None
        if profile is not None and rate is not None:
            if profile.currency != currency:
                raise ShippingCurrencyMismatch(seller_id, profile.currency)
            shipping = rate.charge(subtotal, units[seller_id])
        tax = tax_of(subtotal + shipping, tax_basis_points)
        parts.append(
            SellerPart(
                seller_id,
                Money(subtotal, currency),
                Money(shipping, currency),
                Money(tax, currency),
            )
        )
    return parts


def sum_parts(parts: Sequence[SellerPart], currency: str) -> PartSums:
    """The order's amounts: the sums of its parts."""
    sums = PartSums(Money(0, currency), Money(0, currency), Money(0, currency))
    for part in parts:
        sums = PartSums(
            sums.subtotal + part.subtotal, sums.shipping + part.shipping, sums.tax + part.tax
        )
    return sums


@dataclass(frozen=True)
class PartSums:
    """The subtotal, shipping and tax of several parts together."""

    subtotal: Money
    shipping: Money
    tax: Money

    @property
    def total(self) -> Money:
        """Subtotal plus shipping plus tax."""
        return self.subtotal + self.shipping + self.tax
