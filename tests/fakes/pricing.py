"""In-memory shipping profiles and tax rates (the PricingRules port)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from services.order.domain.pricing import ShippingProfile, TaxRate


@dataclass
class FakePricing:
    """Profiles by seller and rates by country, in dicts."""

    shipping: dict[str, ShippingProfile] = field(default_factory=dict)
    taxes: dict[str, TaxRate] = field(default_factory=dict)

    async def profiles(self, seller_ids: Collection[str]) -> dict[str, ShippingProfile]:
        return {s: self.shipping[s] for s in seller_ids if s in self.shipping}

    async def lock_profile(self, seller_id: str) -> None:
        return None

    async def save_profile(self, profile: ShippingProfile) -> None:
        self.shipping[profile.seller_id] = profile

    async def tax_rate(self, country_code: str, *, for_update: bool = False) -> TaxRate | None:
        return self.taxes.get(country_code)

    async def tax_rates(self, *, after: str, limit: int) -> list[TaxRate]:
        return [self.taxes[c] for c in sorted(self.taxes) if c > after][:limit]

    async def save_tax_rate(self, rate: TaxRate) -> None:
        self.taxes[rate.country_code] = rate

    async def delete_tax_rate(self, country_code: str) -> bool:
        return self.taxes.pop(country_code, None) is not None
