"""Sales reports: read-only queries straight to PostgreSQL (a view, not the repository).

Both groupings read one allocation, so they always agree to the cent. Each sold order in
the date range (found through the composite index on created_at) splits into its seller
parts (order_parts, fixed at placement): the part's total (items, shipping and tax: what
the buyer paid for it), minus the refunds recorded for that seller, minus the seller's
share of the refunds recorded for no seller (an admin's refund of the order). Totals are
thus gross of shipping and tax and net of refunds; shipping and tax are also reported on
their own, as charged at placement (refunds are not split into items, shipping and tax).

The share is the refund split in proportion to what each seller's part still held after
its own refunds, rounded down to the cent; the cents left over go one each to the parts
with the largest rounded-off fraction (then the larger part, then the lower seller id).
Every cent of an admin refund is allocated exactly once, and no part goes below zero.
By day sums the parts (a seller's own parts only, when the report is for one seller);
by seller sums each seller's parts. Refunds count against the day the order was placed.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import asyncpg

from services.common.money import Money
from services.order.domain.status import OrderStatus
from services.order.service_layer.ports import ReportRow

type Pool = asyncpg.Pool[asyncpg.Record]

# $1, $2: the [since, until) range of created_at; $3: the sold statuses.
ALLOCATED_PARTS_SQL = """
WITH parts AS (
    SELECT o.id AS order_id, (o.created_at AT TIME ZONE 'UTC')::date AS day, o.currency,
           p.seller_id, p.shipping_minor, p.tax_minor,
           p.total_minor - coalesce((
               SELECT sum(r.amount_minor) FROM refunds r
               WHERE r.order_id = o.id AND r.seller_id = p.seller_id), 0) AS remaining_minor,
           coalesce((
               SELECT sum(r.amount_minor) FROM refunds r
               WHERE r.order_id = o.id AND r.seller_id IS NULL), 0) AS unattributed_minor
    FROM orders o
    JOIN order_parts p ON p.order_id = o.id
    WHERE o.created_at >= $1 AND o.created_at < $2
      AND o.status = ANY($3::text[])
),
weighed AS (
    SELECT p.*, sum(p.remaining_minor) OVER (PARTITION BY p.order_id) AS order_remaining_minor
    FROM parts p
),
floored AS (
    SELECT w.*,
           CASE WHEN w.order_remaining_minor > 0
                THEN div(w.unattributed_minor::numeric * w.remaining_minor,
                         w.order_remaining_minor)
                ELSE 0 END AS share_minor,
           CASE WHEN w.order_remaining_minor > 0
                THEN mod(w.unattributed_minor::numeric * w.remaining_minor,
                         w.order_remaining_minor)
                ELSE 0 END AS fraction
    FROM weighed w
),
allocated AS (
    SELECT f.order_id, f.day, f.currency, f.seller_id, f.shipping_minor, f.tax_minor,
           f.remaining_minor - f.share_minor - CASE
               WHEN row_number() OVER (PARTITION BY f.order_id
                                       ORDER BY f.fraction DESC, f.remaining_minor DESC,
                                                f.seller_id)
                    <= f.unattributed_minor - sum(f.share_minor) OVER (PARTITION BY f.order_id)
               THEN 1 ELSE 0 END AS net_minor
    FROM floored f
)
"""

# $4: only this seller's parts, or NULL for all.
BY_DAY_SQL = (
    ALLOCATED_PARTS_SQL
    + """
SELECT a.day, a.currency, count(DISTINCT a.order_id) AS order_count, sum(a.net_minor) AS net_minor,
       sum(a.shipping_minor) AS shipping_minor, sum(a.tax_minor) AS tax_minor
FROM allocated a
WHERE $4::text IS NULL OR a.seller_id = $4
GROUP BY a.day, a.currency
ORDER BY a.day, a.currency
"""
)

BY_SELLER_SQL = (
    ALLOCATED_PARTS_SQL
    + """
SELECT a.seller_id, a.currency, count(*) AS order_count, sum(a.net_minor) AS net_minor,
       sum(a.shipping_minor) AS shipping_minor, sum(a.tax_minor) AS tax_minor
FROM allocated a
WHERE $4::text IS NULL OR a.seller_id = $4
GROUP BY a.seller_id, a.currency
ORDER BY a.seller_id, a.currency
"""
)


class PostgresSalesReports:
    """Runs the report queries."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def rows(
        self,
        start: date,
        end: date,
        *,
        by_seller: bool,
        seller_id: str | None,
        statuses: frozenset[OrderStatus],
    ) -> list[ReportRow]:
        """The report's rows for [start, end] (UTC days, inclusive) over orders in `statuses`."""
        since = datetime.combine(start, time.min, UTC)
        until = datetime.combine(end + timedelta(days=1), time.min, UTC)
        sql = BY_SELLER_SQL if by_seller else BY_DAY_SQL
        async with self._pool.acquire() as connection:
            records = await connection.fetch(
                sql, since, until, sorted(s.value for s in statuses), seller_id
            )
        return [
            ReportRow(
                day=None if by_seller else r["day"],
                seller_id=r["seller_id"] if by_seller else (seller_id or ""),
                order_count=int(r["order_count"]),
                total=Money(int(r["net_minor"]), r["currency"]),
                shipping=Money(int(r["shipping_minor"]), r["currency"]),
                tax=Money(int(r["tax_minor"]), r["currency"]),
            )
            for r in records
        ]
