"""The gRPC face of the order service: requests to commands, results to responses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, override

import grpc
from marketplace.order.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc

from services.common.clock import Clock
from services.common.identity import current_caller
from services.common.metadata import request_metadata
from services.order.mappers import requests
from services.order.mappers.orders import order_to_proto, sales_report_to_proto
from services.order.service_layer import checkout, lifecycle, queries, refunds, reports, watch
from services.order.service_layer.ports import SalesReports, Subscriptions, UnitOfWorkFactory

type Context = grpc.aio.ServicerContext[Any, Any]


class OrderServicer(order_service_pb2_grpc.OrderServiceServicer):
    """marketplace.order.v1.OrderService."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        sagas: checkout.Checkout,
        changes: refunds.ChangeRunner,
        feed: Subscriptions,
        sales: SalesReports,
        clock: Clock,
        wait_seconds: float,
        watch_recheck_seconds: float = 5.0,
    ) -> None:
        self._uow = uow
        self._sagas = sagas
        self._changes = changes
        self._feed = feed
        self._reports = sales
        self._clock = clock
        self._wait_seconds = wait_seconds
        self._recheck = watch_recheck_seconds

    @override
    async def CreateOrder(
        self, request: order_service_pb2.CreateOrderRequest, context: Context
    ) -> order_pb2.Order:
        """Place an order exactly once per idempotency key."""
        command = requests.place_order_command(
            request, current_caller(), request_metadata(context).idempotency_key
        )
        order = await checkout.place_order(
            command,
            uow=self._uow,
            checkout=self._sagas,
            clock=self._clock,
            wait_seconds=self._wait(context),
        )
        return order_to_proto(order)

    @override
    async def GetOrder(
        self, request: order_service_pb2.GetOrderRequest, context: Context
    ) -> order_pb2.Order:
        """Return one order as the caller may see it."""
        command = requests.get_order_command(request, current_caller())
        return order_to_proto(await queries.get_order(command, uow=self._uow))

    @override
    async def ListOrders(
        self, request: order_service_pb2.ListOrdersRequest, context: Context
    ) -> order_service_pb2.ListOrdersResponse:
        """Return one page of the caller's orders, newest first."""
        command = requests.list_orders_command(request, current_caller())
        orders, cursor = await queries.list_orders(command, uow=self._uow)
        return order_service_pb2.ListOrdersResponse(
            orders=[order_to_proto(o) for o in orders],
            next_page_token=requests.page_token(cursor, command.status),
        )

    @override
    async def WatchOrder(
        self, request: order_service_pb2.WatchOrderRequest, context: Context
    ) -> AsyncIterator[order_pb2.Order]:
        """Stream the order now and at every change until it is final."""
        command = requests.watch_order_command(request, current_caller())
        async for order in watch.watch_order(
            command, uow=self._uow, feed=self._feed, recheck_seconds=self._recheck
        ):
            yield order_to_proto(order)

    @override
    async def CancelOrder(
        self, request: order_service_pb2.CancelOrderRequest, context: Context
    ) -> order_pb2.Order:
        """Cancel a paid order before shipment."""
        command = requests.cancel_order_command(request, current_caller())
        order = await refunds.cancel_order(
            command, uow=self._uow, changes=self._changes, clock=self._clock
        )
        return order_to_proto(order)

    @override
    async def ShipOrderItems(
        self, request: order_service_pb2.ShipOrderItemsRequest, context: Context
    ) -> order_pb2.Order:
        """Mark the calling seller's items shipped."""
        command = requests.ship_order_items_command(request, current_caller())
        order = await lifecycle.ship_order_items(command, uow=self._uow, clock=self._clock)
        return order_to_proto(order)

    @override
    async def MarkOrderDelivered(
        self, request: order_service_pb2.MarkOrderDeliveredRequest, context: Context
    ) -> order_pb2.Order:
        """Mark a shipped order delivered."""
        command = requests.mark_order_delivered_command(request, current_caller())
        order = await lifecycle.mark_order_delivered(command, uow=self._uow, clock=self._clock)
        return order_to_proto(order)

    @override
    async def RefundOrder(
        self, request: order_service_pb2.RefundOrderRequest, context: Context
    ) -> order_pb2.Order:
        """Refund all or part of a captured order, once per idempotency key."""
        command = requests.refund_order_command(
            request, current_caller(), request_metadata(context).idempotency_key
        )
        order = await refunds.refund_order(
            command, uow=self._uow, changes=self._changes, clock=self._clock
        )
        return order_to_proto(order)

    @override
    async def GetSalesReport(
        self, request: order_service_pb2.GetSalesReportRequest, context: Context
    ) -> order_service_pb2.SalesReport:
        """Sum sales by day or by seller over a date range."""
        command = requests.sales_report_command(request, current_caller())
        return sales_report_to_proto(await reports.sales_report(command, reports=self._reports))

    def _wait(self, context: Context) -> float:
        # A retry waits for the first request no longer than its own deadline allows.
        remaining = context.time_remaining()
        if remaining is None:
            return self._wait_seconds
        return max(0.0, min(self._wait_seconds, remaining - 0.5))
