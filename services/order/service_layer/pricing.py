"""Shipping and tax: sellers set their shipping profile, admins the tax rates, checkout prices.

Sellers (role seller) read and set only their own profile; admins alone read and change
the tax rates. `price_order` is what checkout calls to fix an order's seller parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from services.common.clock import Clock
from services.common.errors import FailedPrecondition, NotFound
from services.common.identity import Caller, Role
from services.common.reasons import ErrorReason as CommonReason
from services.order.domain.model import OrderItem
from services.order.domain.pricing import (
    SellerPart,
    ShippingCurrencyMismatch,
    ShippingProfile,
    ShippingRate,
    TaxRate,
    price_parts,
)
from services.order.domain.reasons import ErrorReason
from services.order.service_layer.ports import PricingUnitOfWorkFactory


@dataclass(frozen=True)
class UpdateShippingProfile:
    """Replace the named fields of the caller's shipping profile (all when `fields` is empty).

    The currency is always given: the profile's amounts are in it.
    """

    caller: Caller
    currency: str
    default_rate: ShippingRate | None
    country_rates: tuple[ShippingRate, ...]
    fields: frozenset[str]


@dataclass(frozen=True)
class SetTaxRate:
    """Set a country's tax rate; create it only when `allow_missing`."""

    caller: Caller
    country_code: str
    basis_points: int
    allow_missing: bool


async def get_shipping_profile(caller: Caller, *, uow: PricingUnitOfWorkFactory) -> ShippingProfile:
    """The seller's own profile; an empty one (free shipping) when never set."""
    caller.require_any_role(Role.SELLER)
    async with uow() as work:
        found = await work.pricing.profiles([caller.user_id])
    return found.get(caller.user_id) or ShippingProfile(seller_id=caller.user_id, currency="")


async def update_shipping_profile(
    command: UpdateShippingProfile, *, uow: PricingUnitOfWorkFactory, clock: Clock
) -> ShippingProfile:
    """Set the named fields of the seller's own profile, creating it on first use."""
    caller = command.caller
    caller.require_any_role(Role.SELLER)
    every = not command.fields
    async with uow() as work:
        # A masked update keeps the fields it does not name: two at once must not both
        # start from the same stored profile and lose one of their changes.
        await work.pricing.lock_profile(caller.user_id)
        found = await work.pricing.profiles([caller.user_id])
        current = found.get(caller.user_id)
        if not every and current is not None and current.currency != command.currency:
            # The kept rates are amounts in the old currency: they cannot silently change.
            raise FailedPrecondition(
                f"the profile is in {current.currency}; replace the whole profile (no"
                " update_mask) to change its currency",
                reason=CommonReason.FAILED_PRECONDITION,
            )
        current = current or ShippingProfile(caller.user_id, command.currency)
        profile = replace(
            current,
            currency=command.currency,
            default_rate=(
                command.default_rate
                if every or "default_rate" in command.fields
                else current.default_rate
            ),
            country_rates=(
                command.country_rates
                if every or "country_rates" in command.fields
                else current.country_rates
            ),
            updated_at=clock.now(),
        )
        await work.pricing.save_profile(profile)
        await work.commit()
    return profile


def _require_admin(caller: Caller) -> None:
    caller.require_any_role(Role.ADMIN)


async def list_tax_rates(
    caller: Caller, *, after: str, limit: int, uow: PricingUnitOfWorkFactory
) -> list[TaxRate]:
    """A page of tax rates by country code (admins)."""
    _require_admin(caller)
    async with uow() as work:
        return await work.pricing.tax_rates(after=after, limit=limit)


async def set_tax_rate(
    command: SetTaxRate, *, uow: PricingUnitOfWorkFactory, clock: Clock
) -> TaxRate:
    """Replace a country's rate, or create it when allowed (admins)."""
    _require_admin(command.caller)
    async with uow() as work:
        existing = await work.pricing.tax_rate(command.country_code, for_update=True)
        if existing is None and not command.allow_missing:
            raise _no_tax_rate(command.country_code)
        rate = TaxRate(command.country_code, command.basis_points, clock.now())
        await work.pricing.save_tax_rate(rate)
        await work.commit()
    return rate


async def delete_tax_rate(
    caller: Caller, country_code: str, *, uow: PricingUnitOfWorkFactory
) -> None:
    """Delete a country's rate, which is then taxed at zero (admins)."""
    _require_admin(caller)
    async with uow() as work:
        if not await work.pricing.delete_tax_rate(country_code):
            raise _no_tax_rate(country_code)
        await work.commit()


def _no_tax_rate(country_code: str) -> NotFound:
    return NotFound(f"{country_code} has no tax rate", reason=ErrorReason.TAX_RATE_NOT_FOUND)


async def price_order(
    items: Sequence[OrderItem], country_code: str, *, uow: PricingUnitOfWorkFactory
) -> list[SellerPart]:
    """The seller parts of an order to `country_code` at today's rates.

    The rules are read in a short transaction of their own (no lock held while checkout
    calls the gateway). A seller whose profile is in another currency than the items
    cannot be bought from: FAILED_PRECONDITION (SHIPPING_CURRENCY_MISMATCH).
    """
    country = country_code.upper()
    async with uow() as work:
        profiles = await work.pricing.profiles({item.seller_id for item in items})
        tax = await work.pricing.tax_rate(country)
    try:
        return price_parts(
            items,
            currency=items[0].unit_price.currency,
            country_code=country,
            profiles=profiles,
            tax_basis_points=tax.basis_points if tax is not None else 0,
        )
    except ShippingCurrencyMismatch as error:
        raise FailedPrecondition(
            f"seller {error.seller_id} ships only in {error.currency}; order their items"
            " separately or ask them to add a rate in the items' currency",
            reason=ErrorReason.SHIPPING_CURRENCY_MISMATCH,
            metadata={"seller_id": error.seller_id, "currency": error.currency},
        ) from None
