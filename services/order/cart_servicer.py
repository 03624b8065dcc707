"""The gRPC face of the cart: requests to commands, results to responses."""

from __future__ import annotations

from typing import Any, override

import grpc
from marketplace.order.v1 import cart_pb2, cart_service_pb2, cart_service_pb2_grpc, order_pb2

from services.common.clock import Clock
from services.common.identity import current_caller
from services.common.metadata import request_metadata
from services.order.mappers import cart as cart_mappers
from services.order.mappers.orders import order_to_proto
from services.order.service_layer import cart
from services.order.service_layer.ports import CartUnitOfWorkFactory, Catalog, OrderPlacer

type Context = grpc.aio.ServicerContext[Any, Any]


class CartServicer(cart_service_pb2_grpc.CartServiceServicer):
    """marketplace.order.v1.CartService."""

    def __init__(
        self,
        *,
        uow: CartUnitOfWorkFactory,
        catalog: Catalog,
        orders: OrderPlacer,
        clock: Clock,
        wait_seconds: float,
        times: cart.CheckoutTimes,
    ) -> None:
        self._uow = uow
        self._catalog = catalog
        self._orders = orders
        self._clock = clock
        self._wait_seconds = wait_seconds
        self._times = times

    @override
    async def GetCart(
        self, request: cart_service_pb2.GetCartRequest, context: Context
    ) -> cart_pb2.Cart:
        """Return the caller's cart, priced now."""
        command = cart_mappers.get_cart_command(request, current_caller())
        view = await cart.get_cart(command, uow=self._uow, catalog=self._catalog, clock=self._clock)
        return cart_mappers.cart_to_proto(view)

    @override
    async def AddCartItem(
        self, request: cart_service_pb2.AddCartItemRequest, context: Context
    ) -> cart_pb2.Cart:
        """Add units of a product to the caller's cart."""
        command = cart_mappers.add_cart_item_command(request, current_caller())
        view = await cart.add_cart_item(
            command, uow=self._uow, catalog=self._catalog, clock=self._clock
        )
        return cart_mappers.cart_to_proto(view)

    @override
    async def UpdateCartItem(
        self, request: cart_service_pb2.UpdateCartItemRequest, context: Context
    ) -> cart_pb2.Cart:
        """Set the quantity of a line of the caller's cart."""
        command = cart_mappers.update_cart_item_command(request, current_caller())
        view = await cart.update_cart_item(
            command, uow=self._uow, catalog=self._catalog, clock=self._clock
        )
        return cart_mappers.cart_to_proto(view)

    @override
    async def RemoveCartItem(
        self, request: cart_service_pb2.RemoveCartItemRequest, context: Context
    ) -> cart_pb2.Cart:
        """Remove a line from the caller's cart."""
        command = cart_mappers.remove_cart_item_command(request, current_caller())
        view = await cart.remove_cart_item(
            command, uow=self._uow, catalog=self._catalog, clock=self._clock
        )
        return cart_mappers.cart_to_proto(view)

    @override
    async def CheckoutCart(
        self, request: cart_service_pb2.CheckoutCartRequest, context: Context
    ) -> order_pb2.Order:
        """Place one order of the cart's lines, once per idempotency key."""
        command = cart_mappers.checkout_cart_command(
            request, current_caller(), request_metadata(context).idempotency_key
        )
        order = await cart.checkout_cart(
            command,
            uow=self._uow,
            orders=self._orders,
            clock=self._clock,
            wait_seconds=self._wait(context),
            times=self._times,
        )
        return order_to_proto(order)

    def _wait(self, context: Context) -> float:
        # A retry waits for the first request no longer than its own deadline allows.
        remaining = context.time_remaining()
        if remaining is None:
            return self._wait_seconds
        return max(0.0, min(self._wait_seconds, remaining - 0.5))
