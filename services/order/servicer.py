"""The gRPC face of the order service: requests to commands, results to responses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, override

import grpc
from google.type import date_pb2
from marketplace.order.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc

from services.common.identity import current_caller
from services.common.metadata import request_metadata
from services.common.money import Money
from services.common.proto_money import money_to_proto
from services.order import mappers
from services.order.adapters.changes import ChangeFeed
from services.order.adapters.reports import SalesReports
from services.order.service_layer import handlers
from services.order.service_layer.lifecycle import Lifecycle
from services.order.service_layer.unit_of_work import UnitOfWorkFactory

type Context = grpc.aio.ServicerContext[Any, Any]


class OrderServicer(order_service_pb2_grpc.OrderServiceServicer):
    """marketplace.order.v1.OrderService."""

    def __init__(
        self,
        checkout: handlers.Checkout,
        uow: UnitOfWorkFactory,
        *,
        wait_seconds: float,
        lifecycle: Lifecycle,
        feed: ChangeFeed,
        reports: SalesReports,
        watch_recheck_seconds: float = 5.0,
    ) -> None:
        self._checkout = checkout
        self._uow = uow
        self._wait_seconds = wait_seconds
        self._lifecycle = lifecycle
        self._feed = feed
        self._reports = reports
        self._recheck = watch_recheck_seconds

    @override
    async def CreateOrder(
        self, request: order_service_pb2.CreateOrderRequest, context: Context
    ) -> order_pb2.Order:
        """Place an order exactly once per idempotency key."""
        command = mappers.place_order_command(
            request, current_caller(), request_metadata(context).idempotency_key
        )
        order = await self._checkout.place_order(command, wait_seconds=self._wait(context))
        return mappers.order_to_proto(order)

    @override
    async def GetOrder(
        self, request: order_service_pb2.GetOrderRequest, context: Context
    ) -> order_pb2.Order:
        """Return one order as the caller may see it."""
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

    @override
    async def WatchOrder(
        self, request: order_service_pb2.WatchOrderRequest, context: Context
    ) -> AsyncIterator[order_pb2.Order]:
        """Stream the order now and at every change until it is final."""
        command = mappers.watch_order_command(request, current_caller())
        async for order in handlers.watch_order(
            command, self._uow, self._feed, recheck_seconds=self._recheck
        ):
            yield mappers.order_to_proto(order)

    @override
    async def CancelOrder(
        self, request: order_service_pb2.CancelOrderRequest, context: Context
    ) -> order_pb2.Order:
        """Cancel a paid order before shipment."""
        command = mappers.cancel_order_command(request, current_caller())
        return mappers.order_to_proto(await self._lifecycle.cancel(command))

    @override
    async def ShipOrderItems(
        self, request: order_service_pb2.ShipOrderItemsRequest, context: Context
    ) -> order_pb2.Order:
        """Mark the calling seller's items shipped."""
        command = mappers.ship_order_items_command(request, current_caller())
        return mappers.order_to_proto(await self._lifecycle.ship(command))

    @override
    async def MarkOrderDelivered(
        self, request: order_service_pb2.MarkOrderDeliveredRequest, context: Context
    ) -> order_pb2.Order:
        """Mark a shipped order delivered."""
        command = mappers.mark_order_delivered_command(request, current_caller())
        return mappers.order_to_proto(await self._lifecycle.deliver(command))

    @override
    async def RefundOrder(
        self, request: order_service_pb2.RefundOrderRequest, context: Context
    ) -> order_pb2.Order:
        """Refund all or part of a captured order, once per idempotency key."""
        command = mappers.refund_order_command(
            request, current_caller(), request_metadata(context).idempotency_key
        )
        return mappers.order_to_proto(await self._lifecycle.refund(command))

    @override
    async def GetSalesReport(
        self, request: order_service_pb2.GetSalesReportRequest, context: Context
    ) -> order_service_pb2.SalesReport:
        """Sum sales by day or by seller over a date range."""
        command = mappers.sales_report_command(request, current_caller())
        rows = await self._reports.rows(
            command.start, command.end, by_seller=command.by_seller, seller_id=command.seller_id
        )
        report = order_service_pb2.SalesReport(
            rows=[
                order_service_pb2.SalesReportRow(
                    date=(
                        date_pb2.Date(year=r.day.year, month=r.day.month, day=r.day.day)
                        if r.day
                        else None
                    ),
                    seller_id=r.seller_id,
                    order_count=r.order_count,
                    total=money_to_proto(r.total),
                )
                for r in rows
            ]
        )
        currencies = {r.total.currency for r in rows}
        if len(currencies) == 1:
            # Amounts in different currencies do not add up; the total is left unset then.
            total = Money(sum(r.total.minor for r in rows), currencies.pop())
            report.total.CopyFrom(money_to_proto(total))
        return report

    def _wait(self, context: Context) -> float:
        # A retry waits for the first request no longer than its own deadline allows.
        remaining = context.time_remaining()
        if remaining is None:
            return self._wait_seconds
        return max(0.0, min(self._wait_seconds, remaining - 0.5))
