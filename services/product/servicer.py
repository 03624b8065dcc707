"""The gRPC adapter of the product service: requests to commands, results to responses."""

from __future__ import annotations

from typing import Any

import grpc
from marketplace.product.v1 import product_pb2, product_service_pb2, product_service_pb2_grpc

from services.common.auth import current_caller, optional_caller
from services.product import mappers
from services.product.service_layer import handlers
from services.product.service_layer.ports import (
    ProductRepository,
    ReservationStore,
    StockStore,
)

type Context = grpc.aio.ServicerContext[Any, Any]


class ProductServicer(product_service_pb2_grpc.ProductServiceServicer):
    """The public catalog API; RPCs not overridden here answer UNIMPLEMENTED."""

    def __init__(self, products: ProductRepository) -> None:
        self._products = products

    async def CreateProduct(  # noqa: D102 - documented in the proto
        self, request: product_service_pb2.CreateProductRequest, context: Context
    ) -> product_pb2.Product:
        command = mappers.create_product_command(request)
        product = await handlers.create_product(command, current_caller(), self._products)
        return mappers.product_to_proto(product)

    async def GetProduct(  # noqa: D102
        self, request: product_service_pb2.GetProductRequest, context: Context
    ) -> product_pb2.Product:
        command = mappers.get_product_command(request, optional_caller())
        product = await handlers.get_product(command, self._products)
        return mappers.product_to_proto(product)

    async def BatchGetProducts(  # noqa: D102
        self, request: product_service_pb2.BatchGetProductsRequest, context: Context
    ) -> product_service_pb2.BatchGetProductsResponse:
        command = mappers.batch_get_command(request, optional_caller())
        products = await handlers.batch_get_products(command, self._products)
        return mappers.batch_get_response(products)

    async def SearchProducts(  # noqa: D102
        self, request: product_service_pb2.SearchProductsRequest, context: Context
    ) -> product_service_pb2.SearchProductsResponse:
        command = mappers.search_command(request)
        result = await handlers.search_products(command, self._products)
        return mappers.search_response(result)


class ProductInternalServicer(product_service_pb2_grpc.ProductInternalServiceServicer):
    """Inventory reservations for the order service; the mesh's secret admits its calls."""

    def __init__(
        self,
        products: ProductRepository,
        stock: StockStore,
        reservations: ReservationStore,
        *,
        wait_seconds: float,
        lease_seconds: float,
    ) -> None:
        self._products = products
        self._stock = stock
        self._reservations = reservations
        self._wait_seconds = wait_seconds
        self._lease_seconds = lease_seconds

    async def ReserveInventory(  # noqa: D102
        self, request: product_service_pb2.ReserveInventoryRequest, context: Context
    ) -> product_service_pb2.ReserveInventoryResponse:
        command = mappers.reserve_command(request)
        reservation = await handlers.reserve_inventory(
            command,
            self._reservations,
            self._stock,
            self._products,
            wait_seconds=self._wait_seconds,
            lease_seconds=self._lease_seconds,
        )
        return mappers.reserve_response(reservation)

    async def CommitReservation(  # noqa: D102
        self, request: product_service_pb2.CommitReservationRequest, context: Context
    ) -> product_service_pb2.CommitReservationResponse:
        command = mappers.commit_command(request)
        await handlers.commit_reservation(command, self._reservations, self._stock)
        return product_service_pb2.CommitReservationResponse()

    async def ReleaseReservation(  # noqa: D102
        self, request: product_service_pb2.ReleaseReservationRequest, context: Context
    ) -> product_service_pb2.ReleaseReservationResponse:
        command = mappers.release_command(request)
        await handlers.release_reservation(command, self._reservations, self._stock)
        return product_service_pb2.ReleaseReservationResponse()
