"""The product service as the wishlist asks it: does this product exist?"""

from __future__ import annotations

import grpc
from marketplace_client import MarketplaceClient, MarketplaceError

from services.common.errors import Unavailable
from services.user.domain.reasons import ErrorReason


class GrpcProductCatalog:
    """Calls the product service's public GetProduct with a deadline, through the typed client."""

    def __init__(self, channel: grpc.aio.Channel, *, timeout_seconds: float) -> None:
        self._client = MarketplaceClient.over(channel)
        self._timeout = timeout_seconds

    async def exists(self, product_id: str) -> bool:
        """Whether buyers can see the product; UNAVAILABLE when the catalog cannot say."""
        try:
            await self._client.get_product(product_id, deadline_seconds=self._timeout)
        except MarketplaceError as error:
            if error.code in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                return False
            raise Unavailable(
                "the product catalog cannot be reached; try again shortly",
                reason=ErrorReason.PRODUCT_SERVICE_UNAVAILABLE,
            ) from error
        return True
