"""Typed clients of the internal services, for the services' own calls to each other.

They are built on a channel the caller made (a service's own channel factory, which adds
its tracing, TLS and balancing), carry the caller's internal credentials as metadata, and
give every call the deadline its service-config entry names unless told otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import grpc
from marketplace.order.v1 import order_internal_service_pb2 as order_internal_pb2
from marketplace.order.v1 import order_internal_service_pb2_grpc as order_internal_grpc
from marketplace.product.v1 import product_pb2, product_service_pb2, product_service_pb2_grpc
from marketplace.user.v1 import user_pb2, user_service_pb2, user_service_pb2_grpc

from marketplace_client.channel import INTERNAL_TIMEOUT_SECONDS
from marketplace_client.errors import checked

type Metadata = Sequence[tuple[str, str]]


class _InternalClient:
    """What every internal client sends with its calls.

    Args:
        metadata: Sent with every call (the caller's internal credentials).
        timeout: Seconds each call may take.
    """

    def __init__(self, metadata: Metadata, timeout: float) -> None:
        self._metadata = tuple(metadata)
        self._timeout = timeout


class UserInternalClient(_InternalClient):
    """marketplace.user.v1.UserInternalService: may this buyer buy, and where to.

    Failures raise the MarketplaceError of their code, with the user service's reason.
    """

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        metadata: Metadata = (),
        timeout: float = INTERNAL_TIMEOUT_SECONDS,
    ) -> None:
        """Build the client on `channel` (to the user service); its maker closes it."""
        super().__init__(metadata, timeout)
        self.stub = user_service_pb2_grpc.UserInternalServiceStub(channel)

    async def get_shipping_address(self, user_id: str, address_id: str = "") -> user_pb2.Address:
        """The user's address `address_id`, or their default one when it is empty.

        The user service checks the account first: NOT_FOUND USER_NOT_FOUND and
        FAILED_PRECONDITION USER_SUSPENDED come before any address answer.
        """
        request = user_service_pb2.GetShippingAddressRequest(user_id=user_id, address_id=address_id)
        response = await checked(
            self.stub.GetShippingAddress(request, metadata=self._metadata, timeout=self._timeout)
        )
        return response.address


class ProductInternalClient(_InternalClient):
    """marketplace.product.v1.ProductInternalService: stock reservations for orders.

    Every call is idempotent by order id. Failures raise the MarketplaceError of their
    code, with the product service's reason.
    """

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        metadata: Metadata = (),
        timeout: float = INTERNAL_TIMEOUT_SECONDS,
    ) -> None:
        """Build the client on `channel` (to the product service); its maker closes it."""
        super().__init__(metadata, timeout)
        self.stub = product_service_pb2_grpc.ProductInternalServiceStub(channel)

    async def reserve_inventory(
        self, order_id: str, items: Sequence[tuple[str, int]], *, checkout_id: str = ""
    ) -> list[product_service_pb2.PricedItem]:
        """Reserve every (product id, quantity) or none, and return them priced.

        Args:
            order_id: The order the reservation is for (its idempotency key).
            items: (product id, quantity) pairs.
            checkout_id: The checkout attempt; the product service releases the
                attempt's earlier reservation that never became an order.

        Returns:
            The reserved items with the catalog's price snapshot.
        """
        request = product_service_pb2.ReserveInventoryRequest(
            order_id=order_id,
            checkout_id=checkout_id,
            items=[
                product_service_pb2.ReservationItem(product_id=product_id, quantity=quantity)
                for product_id, quantity in items
            ],
        )
        response = await checked(
            self.stub.ReserveInventory(request, metadata=self._metadata, timeout=self._timeout)
        )
        return list(response.items)

    async def commit_reservation(self, order_id: str) -> None:
        """Turn the order's reservation into a sale."""
        request = product_service_pb2.CommitReservationRequest(order_id=order_id)
        await checked(
            self.stub.CommitReservation(request, metadata=self._metadata, timeout=self._timeout)
        )

    async def release_reservation(self, order_id: str) -> None:
        """Return the order's reserved units to available stock."""
        request = product_service_pb2.ReleaseReservationRequest(order_id=order_id)
        await checked(
            self.stub.ReleaseReservation(request, metadata=self._metadata, timeout=self._timeout)
        )

    async def export_user_data(self, user_id: str) -> product_service_pb2.ExportUserDataResponse:
        """The reviews the user wrote and, when they sell, their listings in every state."""
        request = product_service_pb2.ExportUserDataRequest(user_id=user_id)
        return await checked(
            self.stub.ExportUserData(request, metadata=self._metadata, timeout=self._timeout)
        )


class ProductCatalogClient(_InternalClient):
    """marketplace.product.v1.ProductService read by another service: today's catalog.

    Called without a user's token, so the product service shows published products only.
    Failures raise the MarketplaceError of their code, with the product service's reason.
    """

    # BatchGetProducts answers at most this many ids per call.
    BATCH = 100

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        metadata: Metadata = (),
        timeout: float = INTERNAL_TIMEOUT_SECONDS,
    ) -> None:
        """Build the client on `channel` (to the product service); its maker closes it."""
        super().__init__(metadata, timeout)
        self.stub = product_service_pb2_grpc.ProductServiceStub(channel)

    async def batch_get_products(self, product_ids: Sequence[str]) -> list[product_pb2.Product]:
        """The products among `product_ids` that exist for an anonymous reader.

        Ids are asked for in batches of BATCH; an id the catalog does not show is missing
        from the answer rather than an error.
        """
        wanted = list(dict.fromkeys(product_ids))
        found: list[product_pb2.Product] = []
        for start in range(0, len(wanted), self.BATCH):
            request = product_service_pb2.BatchGetProductsRequest(
                product_ids=wanted[start : start + self.BATCH]
            )
            response = await checked(
                self.stub.BatchGetProducts(request, metadata=self._metadata, timeout=self._timeout)
            )
            found.extend(response.products)
        return found


class OrderInternalClient(_InternalClient):
    """marketplace.order.v1.OrderInternalService: a user's orders, returns and cart.

    Failures raise the MarketplaceError of their code, with the order service's reason.
    """

    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        metadata: Metadata = (),
        timeout: float = INTERNAL_TIMEOUT_SECONDS,
    ) -> None:
        """Build the client on `channel` (to the order service); its maker closes it."""
        super().__init__(metadata, timeout)
        self.stub = order_internal_grpc.OrderInternalServiceStub(channel)

    async def export_user_data(self, user_id: str) -> order_internal_pb2.ExportUserDataResponse:
        """The orders the user placed as a buyer, their returns and their cart."""
        request = order_internal_pb2.ExportUserDataRequest(user_id=user_id)
        return await checked(
            self.stub.ExportUserData(request, metadata=self._metadata, timeout=self._timeout)
        )
