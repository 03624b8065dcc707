"""Sales reports for sellers (their own sales) and admins (anyone's)."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.errors import PermissionDenied
from services.common.money import Money
from services.common.reasons import ErrorReason as CommonReason
from services.order.domain.commands import GetSalesReport
from services.order.domain.reasons import ErrorReason
from services.order.domain.status import SOLD_STATUSES
from services.order.service_layer.ports import ReportRow, SalesReports


@dataclass(frozen=True)
class SalesReport:
    """A report's rows, and their sum when they are all in one currency."""

    rows: list[ReportRow]
    total: Money | None


async def sales_report(command: GetSalesReport, *, reports: SalesReports) -> SalesReport:
    """Sum the sold orders by day or by seller; sellers only ever get their own sales."""
    caller = command.caller
    if not (caller.is_admin or caller.is_seller):
        raise PermissionDenied(
            "sales reports are for sellers and admins", reason=CommonReason.ROLE_REQUIRED
        )
    seller_id = command.seller_id
    if not caller.is_admin:
        if seller_id not in (None, caller.user_id):
            raise PermissionDenied(
                "sellers see only their own sales", reason=ErrorReason.NOT_YOUR_SALES
            )
        seller_id = caller.user_id
    rows = await reports.rows(
        command.start,
        command.end,
        by_seller=command.by_seller,
        seller_id=seller_id,
        statuses=SOLD_STATUSES,
    )
    currencies = {row.total.currency for row in rows}
    total = None
    if len(currencies) == 1:
        # Amounts in different currencies do not add up; the total is left unset then.
        total = Money(sum(row.total.minor for row in rows), currencies.pop())
    return SalesReport(rows, total)
