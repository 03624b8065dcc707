"""The product service's catalog, read over its public BatchGetProducts for cart prices."""

from __future__ import annotations

from collections.abc import Sequence

import grpc
import structlog
from marketplace.product.v1 import product_pb2
from marketplace_client import MarketplaceError, ProductCatalogClient

from services.common.errors import Unavailable
from services.common.proto_money import money_from_proto
from services.order.domain.cart import ProductQuote
from services.order.domain.reasons import ErrorReason
from services.order.service_layer.ports import Catalog

__all__ = ["Catalog", "GrpcCatalog"]

log = structlog.get_logger("catalog")


class GrpcCatalog:
    """Catalog backed by marketplace.product.v1.ProductService.BatchGetProducts.

    Asked without a buyer's token, the product service shows only published products, so a
    draft, unpublished or archived product is simply missing from the answer: not on sale.
    """

    def __init__(self, channel: grpc.aio.Channel, timeout: float) -> None:
        self._products = ProductCatalogClient(channel, timeout=timeout)

    async def quote(self, product_ids: Sequence[str]) -> dict[str, ProductQuote]:
        """Today's price and stock of each product on sale among `product_ids`."""
        try:
            products = await self._products.batch_get_products(product_ids)
        except MarketplaceError as error:
            log.warning("catalog_call_failed", code=error.code.name, details=error.message)
            raise Unavailable(
                "the catalog is unavailable, try again later",
                reason=ErrorReason.INVENTORY_UNAVAILABLE,
            ) from None
        return {
            product.product_id: ProductQuote(
                product_id=product.product_id,
                seller_id=product.seller_id,
                title=product.title,
                list_price=money_from_proto(product.list_price, "list_price"),
                unit_price=money_from_proto(product.effective_price, "effective_price"),
                stock_available=product.stock_available,
            )
            for product in products
            if product.state == product_pb2.PRODUCT_STATE_PUBLISHED
        }
