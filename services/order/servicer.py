"""The gRPC face of the order service: requests to commands, results to responses."""

from __future__ import annotations

from typing import Any, override

import grpc
from marketplace.order.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc

from services.common.auth import current_caller
from services.order import mappers
from services.order.service_layer import handlers
from services.order.service_layer.unit_of_work import UnitOfWorkFactory

type Context = grpc.aio.ServicerContext[Any, Any]


class OrderServicer(order_service_pb2_grpc.OrderServiceServicer):
    """marketplace.order.v1.OrderService; RPCs not overridden answer UNIMPLEMENTED."""

    def __init__(
        self, checkout: handlers.Checkout, uow: UnitOfWorkFactory, *, wait_seconds: float
    ) -> None:
        self._checkout = checkout
        self._uow = uow
        self._wait_seconds = wait_seconds

    @override
    async def CreateOrder(
        self, request: order_service_pb2.CreateOrderRequest, context: Context
    ) -> order_pb2.Order:
        """Place an order exactly once per idempotency key."""
        command = mappers.place_order_command(
            request, current_caller(), _metadata(context, mappers.IDEMPOTENCY_KEY_HEADER)
        )
        order = await self._checkout.place_order(command, wait_seconds=self._wait(context))
        return mappers.order_to_proto(order)

    @override
    async def GetOrder(
        self, request: order_service_pb2.GetOrderRequest, context: Context
    ) -> order_pb2.Order:
        """Return one order its buyer or an admin may see."""
        command = mappers.get_order_command(request, current_caller())
        order = await handlers.get_order(command, self._uow)
        return mappers.order_to_proto(order)

    @override
    async def ListOrders(
        self, request: order_service_pb2.ListOrdersRequest, context: Context
    ) -> order_service_pb2.ListOrdersResponse:
        """Return one page of the caller's orders, newest first."""
        command = mappers.list_orders_command(request, current_caller())
        orders, cursor = await handlers.list_orders(command, self._uow)
        return order_service_pb2.ListOrdersResponse(
            orders=[mappers.order_to_proto(o) for o in orders],
            next_page_token=mappers.page_token(cursor, command.status),
        )

    def _wait(self, context: Context) -> float:
        # A retry waits for the first request no longer than its own deadline allows.
        remaining = context.time_remaining()
        if remaining is None:
            return self._wait_seconds
        return max(0.0, min(self._wait_seconds, remaining - 0.5))


def _metadata(context: Context, key: str) -> str | None:
    for name, value in context.invocation_metadata() or ():
        if name == key and isinstance(value, str):
            return value
    return None
