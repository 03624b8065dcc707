"""The product service's business metrics: stock-outs and lapsed reservations."""

from __future__ import annotations

from typing import Any, override

from services.common.business_metrics import ProductMetrics, RpcObserver
from services.product.domain.reasons import ErrorReason
from services.product.service_layer.inventory import ReservationSweeper

RESERVE_INVENTORY = "/marketplace.product.v1.ProductInternalService/ReserveInventory"


def inventory_observers(metrics: ProductMetrics) -> dict[str, RpcObserver]:
    """Count each reservation refused because an item ran out."""

    def succeeded(_: Any, __: Any) -> None:
        return None

    def failed(_: Any, reason: str) -> None:
        if reason == ErrorReason.OUT_OF_STOCK:
            metrics.stock_outs.inc()

    return {RESERVE_INVENTORY: RpcObserver(succeeded=succeeded, failed=failed)}


class MeteredSweeper(ReservationSweeper):
    """The reservation sweeper, counting the reservations each pass releases."""

    def __init__(self, *args: Any, metrics: ProductMetrics, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._metrics = metrics

    @override
    async def run_once(self) -> int:
        released = await super().run_once()
        self._metrics.reservation_expiries.inc(released)
        return released
