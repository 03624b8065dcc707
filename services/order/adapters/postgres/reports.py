"""Sales reports: read-only queries straight to PostgreSQL (a view, not the repository).

Both groupings start from the orders in the date range through the composite index on
(created_at, total_minor); by day they sum orders.total_minor - refunded_minor, by seller
they sum the seller's lines net of the refunds attributed to that seller.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import asyncpg

from services.common.money import Money
from services.order.domain.status import OrderStatus
from services.order.service_layer.ports import ReportRow

type Pool = asyncpg.Pool[asyncpg.Record]

BY_DAY_SQL = """
SELECT (o.created_at AT TIME ZONE 'UTC')::date AS day, o.currency,
       count(*) AS order_count, sum(o.total_minor - o.refunded_minor) AS net_minor
FROM orders o
WHERE o.created_at >= $1 AND o.created_at < $2
  AND o.status = ANY($3::text[])
  AND ($4::text IS NULL OR EXISTS (
        SELECT 1 FROM order_items i WHERE i.order_id = o.id AND i.seller_id = $4))
GROUP BY day, o.currency
ORDER BY day, o.currency
"""

BY_SELLER_SQL = """
SELECT i.seller_id, o.currency, count(DISTINCT o.id) AS order_count,
       sum(i.line_total_minor) - coalesce((
           SELECT sum(r.amount_minor) FROM refunds r
           JOIN orders ro ON ro.id = r.order_id
           WHERE r.seller_id = i.seller_id AND ro.created_at >= $1 AND ro.created_at < $2
             AND ro.currency = o.currency), 0) AS net_minor
FROM orders o
JOIN order_items i ON i.order_id = o.id
WHERE o.created_at >= $1 AND o.created_at < $2
  AND o.status = ANY($3::text[])
  AND ($4::text IS NULL OR i.seller_id = $4)
GROUP BY i.seller_id, o.currency
ORDER BY i.seller_id, o.currency
"""


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
            )
            for r in records
        ]
