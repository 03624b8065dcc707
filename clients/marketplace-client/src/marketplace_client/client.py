"""MarketplaceClient: the three services behind one typed, signed-in asyncio client."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from types import TracebackType

import grpc
from marketplace.order.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc
from marketplace.product.v1 import product_pb2, product_service_pb2, product_service_pb2_grpc
from marketplace.user.v1 import user_pb2, user_service_pb2, user_service_pb2_grpc

from marketplace_client.auth import TokenProvider
from marketplace_client.channel import create_channel
from marketplace_client.errors import checked
from marketplace_client.paging import iterate_pages

IDEMPOTENCY_KEY_HEADER = "idempotency-key"


def new_idempotency_key() -> str:
    """A fresh idempotency key (a UUID, as AIP-155 asks)."""
    return str(uuid.uuid4())


class MarketplaceClient:
    """A signed-in client of the user, product and order services.

    Use it as `async with MarketplaceClient.connect(...) as client:`. The raw async stubs
    are `client.users`, `client.products` and `client.orders`; pass
    `metadata=await client.auth_metadata()` to call them as the signed-in account.
    """

    def __init__(
        self,
        user_channel: grpc.aio.Channel,
        product_channel: grpc.aio.Channel,
        order_channel: grpc.aio.Channel,
        tokens: TokenProvider | None,
        *,
        owns_channels: bool = True,
    ) -> None:
        # Channels someone else made (see `over`) are theirs to close.
        self._channels = {user_channel, product_channel, order_channel} if owns_channels else set()
        self.users = user_service_pb2_grpc.UserServiceStub(user_channel)
        self.products = product_service_pb2_grpc.ProductServiceStub(product_channel)
        self.orders = order_service_pb2_grpc.OrderServiceStub(order_channel)
        self.tokens = tokens

    @classmethod
    def connect(
        cls,
        target: str,
        *,
        product_target: str | None = None,
        order_target: str | None = None,
        email: str | None = None,
        password: str | None = None,
        ca_file: Path | str | None = None,
        cert_file: Path | str | None = None,
        key_file: Path | str | None = None,
        plaintext: bool = False,
    ) -> MarketplaceClient:
        """Open channels and, given credentials, a token provider.

        Args:
            target: host:port of the edge's native gRPC, or of the user service when the
                others are given too.
            product_target: host:port of the product service; `target` when None.
            order_target: host:port of the order service; `target` when None.
            email: The account to sign in as; None for public calls only.
            password: Its password.
            ca_file: The CA of the servers' certificates (TLS); see create_channel.
            cert_file: A client certificate, needed on the services' own ports (mTLS).
            key_file: Its private key.
            plaintext: No TLS (the dev mesh on 127.0.0.1).

        Returns:
            The client; close it with `await client.close()` or `async with`.
        """
        opened: dict[str, grpc.aio.Channel] = {}

        def channel(address: str) -> grpc.aio.Channel:
            if address not in opened:
                opened[address] = create_channel(
                    address,
                    ca_file=ca_file,
                    cert_file=cert_file,
                    key_file=key_file,
                    plaintext=plaintext,
                )
            return opened[address]

        user_channel = channel(target)
        tokens = None
        if email is not None and password is not None:
            tokens = TokenProvider(user_channel, email, password)
        return cls(
            user_channel,
            channel(product_target or target),
            channel(order_target or target),
            tokens,
        )

    @classmethod
    def over(
        cls,
        channel: grpc.aio.Channel,
        *,
        product_channel: grpc.aio.Channel | None = None,
        order_channel: grpc.aio.Channel | None = None,
        tokens: TokenProvider | None = None,
    ) -> MarketplaceClient:
        """Build the client on channels the caller made and closes (a service's own factory).

        Such channels carry their maker's options, not `service_config()`: give calls a
        deadline with their `deadline_seconds` argument.

        Args:
            channel: The channel to the edge, or to the user service when the others
                are given too.
            product_channel: The channel to the product service; `channel` when None.
            order_channel: The channel to the order service; `channel` when None.
            tokens: The signed-in account, if any.

        Returns:
            The client; `close()` leaves the channels open.
        """
        return cls(
            channel,
            product_channel or channel,
            order_channel or channel,
            tokens,
            owns_channels=False,
        )

    async def __aenter__(self) -> MarketplaceClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close every channel."""
        for channel in self._channels:
            await channel.close()

    async def auth_metadata(self) -> tuple[tuple[str, str], ...]:
        """The bearer token metadata of the signed-in account (none without credentials)."""
        return await self.tokens.metadata() if self.tokens is not None else ()

    async def me(self) -> user_pb2.User:
        """The signed-in account."""
        request = user_service_pb2.GetUserRequest(user_id="me")
        return await checked(self.users.GetUser(request, metadata=await self.auth_metadata()))

    def search_products(
        self, query: str = "", *, page_size: int = 0, in_stock_only: bool = False
    ) -> AsyncIterator[product_pb2.Product]:
        """Every product matching `query`, page by page (public).

        Args:
            query: Words to match in title and description.
            page_size: Products per page; 0 is the server's default.
            in_stock_only: Only products with available stock.

        Returns:
            An async iterator over the products.
        """

        async def fetch(token: str) -> product_service_pb2.SearchProductsResponse:
            request = product_service_pb2.SearchProductsRequest(
                query=query, page_size=page_size, page_token=token, in_stock_only=in_stock_only
            )
            return await checked(self.products.SearchProducts(request))

        return iterate_pages(fetch, lambda page: page.products)

    async def get_product(
        self, product_id: str, *, deadline_seconds: float | None = None
    ) -> product_pb2.Product:
        """One product (public); `deadline_seconds` overrides the channel's deadline."""
        request = product_service_pb2.GetProductRequest(product_id=product_id)
        return await checked(self.products.GetProduct(request, timeout=deadline_seconds))

    async def create_order(
        self,
        items: Sequence[tuple[str, int]],
        *,
        shipping_address: order_pb2.ShippingAddress | None = None,
        address_id: str = "",
        payment_method_token: str,
        idempotency_key: str | None = None,
    ) -> order_pb2.Order:
        """Place an order; safe to call again with the same key (it never charges twice).

        Args:
            items: (product id, quantity) pairs.
            shipping_address: The destination in full, or
            address_id: an entry of the buyer's address book.
            payment_method_token: The payment gateway's token, for example "tok_visa".
            idempotency_key: The key of this checkout; a new one is made when None. Keep
                it to retry after an unknown outcome (DeadlineExceededError, UnavailableError).

        Returns:
            The order.
        """
        key = idempotency_key or new_idempotency_key()
        request = order_service_pb2.CreateOrderRequest(
            items=[order_pb2.OrderItem(product_id=p, quantity=q) for p, q in items],
            shipping_address=shipping_address,
            address_id=address_id,
            payment_method_token=payment_method_token,
            request_id=key,
        )
        metadata = (*await self.auth_metadata(), (IDEMPOTENCY_KEY_HEADER, key))
        return await checked(self.orders.CreateOrder(request, metadata=metadata))

    async def refund_order(
        self, request: order_service_pb2.RefundOrderRequest, *, idempotency_key: str | None = None
    ) -> order_pb2.Order:
        """Refund an order (or some of its items); idempotent on the key like create_order.

        Args:
            request: The refund; its request_id is set to the key.
            idempotency_key: The key of this refund; a new one is made when None (or the
                request's request_id when it has one).

        Returns:
            The refunded order.
        """
        key = idempotency_key or request.request_id or new_idempotency_key()
        keyed = order_service_pb2.RefundOrderRequest()
        keyed.CopyFrom(request)
        keyed.request_id = key
        metadata = (*await self.auth_metadata(), (IDEMPOTENCY_KEY_HEADER, key))
        return await checked(self.orders.RefundOrder(keyed, metadata=metadata))

    async def get_order(self, order_id: str) -> order_pb2.Order:
        """One order of the signed-in account."""
        request = order_service_pb2.GetOrderRequest(order_id=order_id)
        return await checked(self.orders.GetOrder(request, metadata=await self.auth_metadata()))

    def list_orders(
        self,
        *,
        status: order_pb2.OrderStatus.ValueType = order_pb2.ORDER_STATUS_UNSPECIFIED,
        page_size: int = 0,
    ) -> AsyncIterator[order_pb2.Order]:
        """The signed-in account's orders, newest first, page by page.

        Args:
            status: Only orders in this status; 0 for all.
            page_size: Orders per page; 0 is the server's default.

        Returns:
            An async iterator over the orders.
        """

        async def fetch(token: str) -> order_service_pb2.ListOrdersResponse:
            request = order_service_pb2.ListOrdersRequest(
                page_size=page_size, page_token=token, status=status
            )
            return await checked(
                self.orders.ListOrders(request, metadata=await self.auth_metadata())
            )

        return iterate_pages(fetch, lambda page: page.orders)
