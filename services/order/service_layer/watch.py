"""Watching an order: its state now, then at every change until it is final."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from services.order.domain.commands import WatchOrder
from services.order.domain.model import Order
from services.order.domain.status import FINAL_STATUSES
from services.order.service_layer.access import view_for, visible
from services.order.service_layer.ports import Subscriptions, UnitOfWorkFactory


async def watch_order(
    command: WatchOrder,
    *,
    uow: UnitOfWorkFactory,
    feed: Subscriptions,
    recheck_seconds: float,
) -> AsyncIterator[Order]:
    """The order now, then again at every change, until it reaches a final status.

    `recheck_seconds` bounds how long a lost notification can delay an update.
    """
    async with feed.subscribe(command.order_id) as changed:
        # Subscribed before the first read, so no change between the two is missed.
        async with uow() as work:
            order = visible(await work.orders.get(command.order_id), command.caller)
        yield view_for(order, command.caller)
        last = (order.status, order.updated_at)
        while order.status not in FINAL_STATUSES:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(recheck_seconds):
                    await changed.get()
            async with uow() as work:
                fresh = await work.orders.get(command.order_id)
            if fresh is None:
                return
            order = fresh
            if (order.status, order.updated_at) != last:
                last = (order.status, order.updated_at)
                yield view_for(order, command.caller)
