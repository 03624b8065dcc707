"""The gRPC face of the order service to the mesh: a user's data for their export."""

from __future__ import annotations

from typing import Any, override

import grpc
from marketplace.order.v1 import order_internal_service_pb2 as internal_pb2
from marketplace.order.v1 import order_internal_service_pb2_grpc as internal_grpc

from services.order.domain.cart import Availability, CartView, PricedLine
from services.order.mappers.cart import cart_to_proto
from services.order.mappers.orders import order_to_proto
from services.order.mappers.returns import return_to_proto
from services.order.service_layer import privacy
from services.order.service_layer.ports.privacy import PrivacyUnitOfWorkFactory

type Context = grpc.aio.ServicerContext[Any, Any]


class OrderInternalServicer(internal_grpc.OrderInternalServiceServicer):
    """marketplace.order.v1.OrderInternalService; the chassis admits the user service only."""

    def __init__(self, *, uow: PrivacyUnitOfWorkFactory) -> None:
        self._uow = uow

    @override
    async def ExportUserData(
        self, request: internal_pb2.ExportUserDataRequest, context: Context
    ) -> internal_pb2.ExportUserDataResponse:
        """The user's orders as a buyer, their returns and their cart."""
        records = await privacy.export_buyer(request.user_id, uow=self._uow())
        # The cart as stored, unpriced: the export tells what the user put in it, and
        # asking the catalog for today's prices would make it depend on a third service.
        view = CartView(
            records.cart,
            tuple(
                PricedLine(line, Availability.UNKNOWN, None, None, 0) for line in records.cart.lines
            ),
        )
        return internal_pb2.ExportUserDataResponse(
            orders=[order_to_proto(order) for order in records.orders],
            returns=[return_to_proto(item) for item in records.returns],
            cart=cart_to_proto(view),
        )
