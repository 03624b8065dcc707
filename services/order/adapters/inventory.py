"""The product service's inventory, reached over its internal gRPC API."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import grpc
import structlog
from marketplace_client import MarketplaceError, ProductInternalClient

from services.common.errors import (
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from services.common.proto_money import money_from_proto
from services.order.domain.model import OrderLine
from services.order.domain.reasons import ErrorReason
from services.order.service_layer.ports import Inventory, PricedLine

__all__ = ["INVENTORY_UNAVAILABLE", "GrpcInventory", "Inventory", "PricedLine"]

log = structlog.get_logger("inventory")

INVENTORY_UNAVAILABLE = ErrorReason.INVENTORY_UNAVAILABLE


class GrpcInventory:
    """Inventory backed by marketplace.product.v1.ProductInternalService.

    Called through the typed client on the chassis channel `channel`.
    """

    def __init__(self, channel: grpc.aio.Channel, timeout: float) -> None:
        self._products = ProductInternalClient(channel, timeout=timeout)

    async def reserve(
        self, order_id: uuid.UUID, lines: Sequence[OrderLine], *, checkout_id: str = ""
    ) -> list[PricedLine]:
        """Reserve every line or none, and return them priced."""
        try:
            items = await self._products.reserve_inventory(
                str(order_id),
                [(line.product_id, line.quantity) for line in lines],
                checkout_id=checkout_id,
            )
        except MarketplaceError as error:
            raise _domain_error(error, "ReserveInventory") from None
        priced = [
            PricedLine(
                product_id=item.product_id,
                seller_id=item.seller_id,
                title=item.title,
                quantity=item.quantity,
                unit_price=money_from_proto(item.unit_price, "unit_price"),
            )
            for item in items
        ]
        wanted = {(line.product_id, line.quantity) for line in lines}
        if {(p.product_id, p.quantity) for p in priced} != wanted:
            # Never charge for something other than what the buyer asked for.
            log.error("reservation_mismatch", order_id=str(order_id))
            await self.release(order_id)
            raise Unavailable(
                "the product service answered with other items", reason=INVENTORY_UNAVAILABLE
            )
        return priced

    async def commit(self, order_id: uuid.UUID) -> None:
        """Turn the order's reservation into a sale."""
        try:
            await self._products.commit_reservation(str(order_id))
        except MarketplaceError as error:
            raise _domain_error(error, "CommitReservation") from None

    async def release(self, order_id: uuid.UUID) -> None:
        """Return the order's reserved units to available stock."""
        try:
            await self._products.release_reservation(str(order_id))
        except MarketplaceError as error:
            raise _domain_error(error, "ReleaseReservation") from None


def _domain_error(remote: MarketplaceError, method: str) -> DomainError:
    """Translate the product service's answer into an error for our own caller."""
    code, reason, metadata = remote.code, remote.reason, dict(remote.metadata)
    message = remote.message or "the product service refused the reservation"
    violations = [FieldViolation(v.field, v.description) for v in remote.field_violations]
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return FailedPrecondition(message, reason=_passed_on(reason), metadata=metadata)
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(
            message,
            reason=_passed_on(reason) or ErrorReason.PRODUCT_NOT_FOUND,
            metadata=metadata,
        )
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(violations or [FieldViolation("items", message)])
    # Anything else is the product service being down, slow or misconfigured: the caller
    # may retry later, and our logs say which.
    log.warning("inventory_call_failed", method=method, code=code.name, details=remote.message)
    return Unavailable(
        "the inventory is unavailable, try again later", reason=INVENTORY_UNAVAILABLE
    )


def _passed_on(reason: str) -> ErrorReason | None:
    """The product service's reason as one of ours, when our contract lists it.

    Stock refusals (OUT_OF_STOCK, RESERVATION_*) reach the buyer as they are, so the order
    service's ErrorReason repeats them; any other reason falls back to the canonical one
    rather than leak a value our contract does not document.
    """
    try:
        return ErrorReason(reason)
    except ValueError:
        return None
