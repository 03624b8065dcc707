"""Who may see what of an order, and how the order's rules are answered to callers."""

from __future__ import annotations

from dataclasses import replace

from services.common.errors import DomainError, FailedPrecondition, NotFound, PermissionDenied
from services.order.domain.commands import Caller
from services.order.domain.model import Order
from services.order.domain.reasons import ErrorReason
from services.order.domain.status import IllegalTransition, OrderRuleViolated


def view_for(order: Order, caller: Caller) -> Order:
    """The order as the caller may see it: sellers see only their lines and no payment."""
    if caller.is_admin or str(order.buyer_id) == caller.user_id:
        return order
    return replace(
        order,
        items=[item for item in order.items if item.seller_id == caller.user_id],
        payments=[],
        refunds=[r for r in order.refunds if r.seller_id == caller.user_id],
        # Their own part only, so the totals they see are those of their own lines.
        parts=[p for p in order.seller_parts if p.seller_id == caller.user_id],
    )


def visible(order: Order | None, caller: Caller) -> Order:
    """The order, if the caller may see it; NOT_FOUND hides other buyers' orders."""
    if order is None or not order.can_be_seen_by(caller.user_id, is_admin=caller.is_admin):
        raise NotFound("no such order", reason=ErrorReason.ORDER_NOT_FOUND)
    return order


def rule_error(error: OrderRuleViolated | IllegalTransition) -> DomainError:
    """The caller's error for a refused state move or a broken order rule."""
    if isinstance(error, IllegalTransition):
        return FailedPrecondition(
            f"the order is {error.current.value} and cannot become {error.target.value}",
            reason=ErrorReason.ILLEGAL_STATUS_TRANSITION,
            metadata={"status": error.current.value, "target": error.target.value},
        )
    if error.reason in (ErrorReason.NOT_ORDER_SELLER, ErrorReason.ITEM_NOT_YOURS):
        return PermissionDenied(error.message, reason=error.reason)
    return FailedPrecondition(error.message, reason=error.reason)
