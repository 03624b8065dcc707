"""The port of sales reports: read-only queries over the orders (a view, not the repository)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol

from services.common.money import Money
from services.order.domain.status import OrderStatus


@dataclass(frozen=True)
class ReportRow:
    """One group of a sales report: a UTC day, or a seller, in one currency."""

    day: date | None
    seller_id: str
    order_count: int
    total: Money  # items, shipping and tax, net of refunds
    shipping: Money | None = None  # as charged at placement, before refunds
    tax: Money | None = None  # as charged at placement, before refunds


class SalesReports(Protocol):
    """The read-only report queries (a view, not the repository)."""

    async def rows(
        self,
        start: date,
        end: date,
        *,
        by_seller: bool,
        seller_id: str | None,
        statuses: frozenset[OrderStatus],
    ) -> list[ReportRow]:
        """The rows for [start, end] (UTC days, inclusive) over orders in `statuses`."""
