"""The product service as the wishlist asks it: does this product exist?"""

from __future__ import annotations

import grpc
from marketplace.product.v1 import product_service_pb2, product_service_pb2_grpc

from services.common.errors import Unavailable
from services.common.rpc_status import remote_error
from services.user.domain.reasons import ErrorReason


class GrpcProductCatalog:
    """Calls the product service's public GetProduct with a deadline."""

    def __init__(self, channel: grpc.aio.Channel, *, timeout_seconds: float) -> None:
        self._stub = product_service_pb2_grpc.ProductServiceStub(channel)
        self._timeout = timeout_seconds

    async def exists(self, product_id: str) -> bool:
        """Whether buyers can see the product; UNAVAILABLE when the catalog cannot say."""
        try:
            await self._stub.GetProduct(
                product_service_pb2.GetProductRequest(product_id=product_id),
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as error:
            if remote_error(error).code in (
                grpc.StatusCode.NOT_FOUND,
                grpc.StatusCode.INVALID_ARGUMENT,
            ):
                return False
            raise Unavailable(
                "the product catalog cannot be reached; try again shortly",
                reason=ErrorReason.PRODUCT_SERVICE_UNAVAILABLE,
            ) from error
        return True
