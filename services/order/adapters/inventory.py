"""The product service's inventory, reached over its internal gRPC API."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import google.rpc.error_details_pb2 as error_details_pb2
import google.rpc.status_pb2 as status_pb2
import grpc
import structlog
from google.protobuf.message import DecodeError
from marketplace.product.v1 import product_service_pb2 as pb
from marketplace.product.v1 import product_service_pb2_grpc as pb_grpc

from services.common.channels import internal_metadata
from services.common.errors import (
    DomainError,
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    Unavailable,
)
from services.common.money import Money
from services.order.domain.model import OrderLine

log = structlog.get_logger("inventory")

INVENTORY_UNAVAILABLE = "INVENTORY_UNAVAILABLE"


@dataclass(frozen=True)
class PricedLine:
    """A reserved line with the catalog's price snapshot."""

    product_id: str
    seller_id: str
    title: str
    quantity: int
    unit_price: Money


class Inventory(Protocol):
    """Stock reservations for orders; every call is idempotent by order id.

    Business refusals raise FailedPrecondition, NotFound or InvalidArgument; a product
    service that is down or slow raises Unavailable (reason INVENTORY_UNAVAILABLE).
    """

    async def reserve(
        self, order_id: uuid.UUID, lines: Sequence[OrderLine], *, checkout_id: str = ""
    ) -> list[PricedLine]:
        """Reserve every line or none, and return them priced.

        `checkout_id` ties the reservation to the checkout attempt: the product service
        releases the attempt's earlier reservation that never became an order.
        """
        ...

    async def commit(self, order_id: uuid.UUID) -> None:
        """Turn the order's reservation into a sale."""
        ...

    async def release(self, order_id: uuid.UUID) -> None:
        """Return the order's reserved units to available stock."""
        ...


class GrpcInventory:
    """Inventory backed by marketplace.product.v1.ProductInternalService."""

    def __init__(self, channel: grpc.aio.Channel, internal_secret: str, timeout: float) -> None:
        self._stub = pb_grpc.ProductInternalServiceStub(channel)
        self._metadata = internal_metadata(internal_secret)
        self._timeout = timeout

    async def reserve(
        self, order_id: uuid.UUID, lines: Sequence[OrderLine], *, checkout_id: str = ""
    ) -> list[PricedLine]:
        """Reserve every line or none, and return them priced."""
        request = pb.ReserveInventoryRequest(
            order_id=str(order_id),
            checkout_id=checkout_id,
            items=[
                pb.ReservationItem(product_id=line.product_id, quantity=line.quantity)
                for line in lines
            ],
        )
        try:
            response = await self._stub.ReserveInventory(
                request, metadata=self._metadata, timeout=self._timeout
            )
        except grpc.aio.AioRpcError as error:
            raise _domain_error(error, "ReserveInventory") from None
        priced = [
            PricedLine(
                product_id=item.product_id,
                seller_id=item.seller_id,
                title=item.title,
                quantity=item.quantity,
                unit_price=Money.from_proto(item.unit_price, "unit_price"),
            )
            for item in response.items
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
            await self._stub.CommitReservation(
                pb.CommitReservationRequest(order_id=str(order_id)),
                metadata=self._metadata,
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as error:
            raise _domain_error(error, "CommitReservation") from None

    async def release(self, order_id: uuid.UUID) -> None:
        """Return the order's reserved units to available stock."""
        try:
            await self._stub.ReleaseReservation(
                pb.ReleaseReservationRequest(order_id=str(order_id)),
                metadata=self._metadata,
                timeout=self._timeout,
            )
        except grpc.aio.AioRpcError as error:
            raise _domain_error(error, "ReleaseReservation") from None


def _details(error: grpc.aio.AioRpcError) -> status_pb2.Status | None:
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin" and isinstance(value, bytes):
            try:
                return status_pb2.Status.FromString(value)
            except DecodeError:
                return None
    return None


def _domain_error(error: grpc.aio.AioRpcError, method: str) -> DomainError:
    """Translate the product service's answer into an error for our own caller."""
    code = error.code()
    message = error.details() or "the product service refused the reservation"
    reason = ""
    metadata: dict[str, str] = {}
    violations: list[FieldViolation] = []
    status = _details(error)
    if status is not None:
        for detail in status.details:
            info = error_details_pb2.ErrorInfo()
            bad = error_details_pb2.BadRequest()
            if detail.Unpack(info):
                reason, metadata = info.reason, dict(info.metadata)
            elif detail.Unpack(bad):
                violations = [FieldViolation(v.field, v.description) for v in bad.field_violations]
    if code == grpc.StatusCode.FAILED_PRECONDITION:
        return FailedPrecondition(message, reason=reason or None, metadata=metadata)
    if code == grpc.StatusCode.NOT_FOUND:
        return NotFound(message, reason=reason or "PRODUCT_NOT_FOUND", metadata=metadata)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument(violations or [FieldViolation("items", message)])
    # Anything else is the product service being down, slow or misconfigured: the caller
    # may retry later, and our logs say which.
    log.warning("inventory_call_failed", method=method, code=code.name, details=error.details())
    return Unavailable(
        "the inventory is unavailable, try again later", reason=INVENTORY_UNAVAILABLE
    )
