"""The product and order services as the data export asks them, over their internal APIs."""

from __future__ import annotations

import uuid

import grpc
from marketplace.order.v1 import order_internal_service_pb2 as order_internal_pb2
from marketplace.product.v1 import product_service_pb2
from marketplace_client import MarketplaceError, OrderInternalClient, ProductInternalClient

from services.common.errors import Unavailable
from services.user.domain.reasons import ErrorReason


class GrpcProductRecords:
    """ProductInternalService.ExportUserData through the typed client, with a deadline."""

    def __init__(self, channel: grpc.aio.Channel, *, timeout_seconds: float) -> None:
        self._client = ProductInternalClient(channel, timeout=timeout_seconds)

    async def __call__(self, user_id: uuid.UUID) -> product_service_pb2.ExportUserDataResponse:
        """The user's reviews and listings; UNAVAILABLE when the product service cannot say."""
        try:
            return await self._client.export_user_data(str(user_id))
        except MarketplaceError as error:
            raise Unavailable(
                "the product service cannot be reached to export your data; try again shortly",
                reason=ErrorReason.PRODUCT_SERVICE_UNAVAILABLE,
            ) from error


class GrpcOrderRecords:
    """OrderInternalService.ExportUserData through the typed client, with a deadline."""

    def __init__(self, channel: grpc.aio.Channel, *, timeout_seconds: float) -> None:
        self._client = OrderInternalClient(channel, timeout=timeout_seconds)

    async def __call__(self, user_id: uuid.UUID) -> order_internal_pb2.ExportUserDataResponse:
        """The user's orders, returns and cart; UNAVAILABLE when the order service cannot say."""
        try:
            return await self._client.export_user_data(str(user_id))
        except MarketplaceError as error:
            raise Unavailable(
                "the order service cannot be reached to export your data; try again shortly",
                reason=ErrorReason.ORDER_SERVICE_UNAVAILABLE,
            ) from error
