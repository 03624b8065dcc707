"""Reading orders: one order, or a page of the caller's orders."""

from __future__ import annotations

import uuid

from services.order.domain.commands import GetOrder, ListOrders, OrderCursor
from services.order.domain.model import Order
from services.order.service_layer.access import view_for, visible
from services.order.service_layer.ports import UnitOfWorkFactory


async def get_order(command: GetOrder, *, uow: UnitOfWorkFactory) -> Order:
    """The order, if the caller may see it; NOT_FOUND hides other buyers' orders."""
    async with uow() as work:
        order = await work.orders.get(command.order_id)
    return view_for(visible(order, command.caller), command.caller)


async def list_orders(
    command: ListOrders, *, uow: UnitOfWorkFactory
) -> tuple[list[Order], OrderCursor | None]:
    """One page of the caller's orders: admins all, sellers those with their items, buyers theirs."""
    caller = command.caller
    async with uow() as work:
        if caller.is_admin or caller.is_seller:
            orders = await work.orders.list_for_seller(
                None if caller.is_admin else caller.user_id,
                limit=command.page_size + 1,
                after=command.after,
                status=command.status,
            )
        else:
            orders = await work.orders.list_for_buyer(
                uuid.UUID(caller.user_id),
                limit=command.page_size + 1,
                after=command.after,
                status=command.status,
            )
    shown = [view_for(order, caller) for order in orders]
    if len(shown) <= command.page_size:
        return shown, None
    page = shown[: command.page_size]
    return page, OrderCursor(page[-1].created_at, page[-1].order_id)
