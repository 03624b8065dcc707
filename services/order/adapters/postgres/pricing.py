"""PostgreSQL storage of sellers' shipping profiles and the platform's tax rates."""

from __future__ import annotations

from collections.abc import Collection

import asyncpg

from services.common import postgres
from services.order.domain.pricing import ShippingProfile, ShippingRate, TaxRate

type Connection = postgres.AnyConnection


class PricingRepository:
    """Shipping profiles and tax rates, on one connection."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection

    async def profiles(self, seller_ids: Collection[str]) -> dict[str, ShippingProfile]:
        """The profiles of those sellers who have one, with their rates, in two queries."""
        ids = sorted(set(seller_ids))
        heads = await self._db.fetch(
            "SELECT * FROM shipping_profiles WHERE seller_id = ANY($1::text[])", ids
        )
        rates: dict[str, list[ShippingRate]] = {h["seller_id"]: [] for h in heads}
        for r in await self._db.fetch(
            """
            SELECT * FROM shipping_rates WHERE seller_id = ANY($1::text[])
            ORDER BY seller_id, country_code
            """,
            ids,
        ):
            rates[r["seller_id"]].append(_rate(r))
        return {
            h["seller_id"]: ShippingProfile(
                seller_id=h["seller_id"],
                currency=h["currency"],
                default_rate=next((r for r in rates[h["seller_id"]] if not r.country_code), None),
                country_rates=tuple(r for r in rates[h["seller_id"]] if r.country_code),
                updated_at=h["updated_at"],
            )
            for h in heads
        }

    async def lock_profile(self, seller_id: str) -> None:
        """Serialise writers of one seller's profile until the transaction ends."""
        await self._db.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended('shipping_profile:' || $1, 0))",
            seller_id,
        )

    async def save_profile(self, profile: ShippingProfile) -> None:
        """Replace the profile and all its rates; the caller's transaction makes it atomic."""
        await self._db.execute(
            """
            INSERT INTO shipping_profiles (seller_id, currency, updated_at)
            VALUES ($1, $2, $3)
            ON CONFLICT (seller_id) DO UPDATE
            SET currency = EXCLUDED.currency, updated_at = EXCLUDED.updated_at
            """,
            profile.seller_id,
            profile.currency,
            profile.updated_at,
        )
        await self._db.execute("DELETE FROM shipping_rates WHERE seller_id = $1", profile.seller_id)
        rates = [*([profile.default_rate] if profile.default_rate else []), *profile.country_rates]
        await self._db.executemany(
            """
            INSERT INTO shipping_rates (seller_id, country_code, flat_fee_minor,
                                        per_item_fee_minor, free_over_minor)
            VALUES ($1, $2, $3, $4, $5)
            """,
            [
                (
                    profile.seller_id,
                    r.country_code,
                    r.flat_fee_minor,
                    r.per_item_fee_minor,
                    r.free_over_minor,
                )
                for r in rates
            ],
        )

    async def tax_rate(self, country_code: str, *, for_update: bool = False) -> TaxRate | None:
        """The country's tax rate, locked for the transaction when `for_update`."""
        lock = " FOR UPDATE" if for_update else ""
        row = await self._db.fetchrow(
            f"SELECT * FROM tax_rates WHERE country_code = $1{lock}", country_code
        )
        return _tax(row) if row is not None else None

    async def tax_rates(self, *, after: str, limit: int) -> list[TaxRate]:
        """Tax rates by country code, strictly after `after`."""
        rows = await self._db.fetch(
            "SELECT * FROM tax_rates WHERE country_code > $1 ORDER BY country_code LIMIT $2",
            after,
            limit,
        )
        return [_tax(r) for r in rows]

    async def save_tax_rate(self, rate: TaxRate) -> None:
        """Create or replace a country's tax rate."""
        await self._db.execute(
            """
            INSERT INTO tax_rates (country_code, basis_points, updated_at) VALUES ($1, $2, $3)
            ON CONFLICT (country_code) DO UPDATE
            SET basis_points = EXCLUDED.basis_points, updated_at = EXCLUDED.updated_at
            """,
            rate.country_code,
            rate.basis_points,
            rate.updated_at,
        )

    async def delete_tax_rate(self, country_code: str) -> bool:
        """Delete a country's tax rate; False when it had none."""
        deleted = await self._db.fetchval(
            "DELETE FROM tax_rates WHERE country_code = $1 RETURNING true", country_code
        )
        return bool(deleted)


def _rate(row: asyncpg.Record) -> ShippingRate:
    return ShippingRate(
        country_code=row["country_code"],
        flat_fee_minor=row["flat_fee_minor"],
        per_item_fee_minor=row["per_item_fee_minor"],
        free_over_minor=row["free_over_minor"],
    )


def _tax(row: asyncpg.Record) -> TaxRate:
    return TaxRate(row["country_code"], row["basis_points"], row["updated_at"])
