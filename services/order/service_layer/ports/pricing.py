"""The ports of shipping and tax: where sellers' shipping profiles and tax rates are kept."""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Protocol

from services.common.transaction import Transaction
from services.order.domain.pricing import ShippingProfile, TaxRate


class PricingRules(Protocol):
    """Sellers' shipping profiles and the platform's tax rates."""

    async def profiles(self, seller_ids: Collection[str]) -> dict[str, ShippingProfile]:
        """The profiles of those sellers who have one."""
        ...

    async def lock_profile(self, seller_id: str) -> None:
        """Serialise writers of one seller's profile until the transaction ends.

        A lock on the seller id, not on a row: the first write creates the profile.
        """
        ...

    async def save_profile(self, profile: ShippingProfile) -> None:
        """Create or replace a seller's profile with all its rates."""
        ...

    async def tax_rate(self, country_code: str, *, for_update: bool = False) -> TaxRate | None:
        """The country's tax rate, if it has one."""
        ...

    async def tax_rates(self, *, after: str, limit: int) -> list[TaxRate]:
        """Tax rates by country code, strictly after `after`."""
        ...

    async def save_tax_rate(self, rate: TaxRate) -> None:
        """Create or replace a country's tax rate."""
        ...

    async def delete_tax_rate(self, country_code: str) -> bool:
        """Delete a country's tax rate; False when it had none."""
        ...


class PricingUnitOfWork(Transaction, Protocol):
    """One transaction over the pricing rules."""

    @property
    def pricing(self) -> PricingRules:
        """The shipping profiles and tax rates, inside the transaction."""
        ...


type PricingUnitOfWorkFactory = Callable[[], PricingUnitOfWork]
