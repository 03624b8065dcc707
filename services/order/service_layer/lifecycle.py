"""Fulfilment: sellers ship their items, admins mark orders delivered."""

from __future__ import annotations

from services.common.clock import Clock
from services.common.errors import PermissionDenied
from services.common.reasons import ErrorReason as CommonReason
from services.order.domain.changes import ChangeKind
from services.order.domain.commands import MarkOrderDelivered, ShipOrderItems
from services.order.domain.model import Order
from services.order.domain.status import IllegalTransition, OrderRuleViolated
from services.order.service_layer.access import rule_error, view_for, visible
from services.order.service_layer.ports import UnitOfWorkFactory
from services.order.service_layer.refunds import change_in_progress


async def ship_order_items(
    command: ShipOrderItems, *, uow: UnitOfWorkFactory, clock: Clock
) -> Order:
    """Mark a seller's items shipped with a carrier and tracking number."""
    if not command.caller.is_seller:
        raise PermissionDenied("only sellers ship items", reason=CommonReason.ROLE_REQUIRED)
    async with uow() as work:
        order = visible(await work.orders.get(command.order_id, for_update=True), command.caller)
        pending = await work.changes.pending_for(order.order_id)
        if pending is not None and pending.kind is ChangeKind.CANCEL:
            raise change_in_progress()
        try:
            order.ship(
                seller_id=command.caller.user_id,
                product_ids=command.product_ids,
                carrier=command.carrier,
                tracking_number=command.tracking_number,
                at=clock.now(),
            )
        except (OrderRuleViolated, IllegalTransition) as error:
            raise rule_error(error) from None
        await work.orders.save(order)
        await work.commit()
    return view_for(order, command.caller)


async def mark_order_delivered(
    command: MarkOrderDelivered, *, uow: UnitOfWorkFactory, clock: Clock
) -> Order:
    """Record that every item arrived; admins only."""
    if not command.caller.is_admin:
        raise PermissionDenied(
            "only admins mark orders delivered", reason=CommonReason.ROLE_REQUIRED
        )
    async with uow() as work:
        order = visible(await work.orders.get(command.order_id, for_update=True), command.caller)
        try:
            order.mark_delivered(actor=command.caller.user_id, at=clock.now())
        except IllegalTransition as error:
            raise rule_error(error) from None
        await work.orders.save(order)
        await work.commit()
    return order
