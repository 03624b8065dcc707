"""The gRPC adapter of the product service: requests to commands, results to responses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import empty_pb2
from marketplace.product.v1 import product_pb2, product_service_pb2, product_service_pb2_grpc

from services.common.clock import Clock
from services.common.identity import current_caller, optional_caller
from services.product import mappers
from services.product.domain.model import LifecycleAction
from services.product.service_layer import (
    catalog,
    handlers,
    inventory,
    recommendations,
    reviews,
)
from services.product.service_layer.ports import (
    CategoryRepository,
    ProductRepository,
    PurchaseStore,
    ReservationStore,
    ReviewRepository,
    StockStore,
)

type Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True)
class Ports:
    """The storage the handlers use, built once by the composition root."""

    products: ProductRepository
    stock: StockStore
    reservations: ReservationStore
    categories: CategoryRepository
    reviews: ReviewRepository
    purchases: PurchaseStore
    clock: Clock


class ProductServicer(product_service_pb2_grpc.ProductServiceServicer):
    """The public catalog API."""

    def __init__(self, ports: Ports) -> None:
        self._ports = ports
        self._products = ports.products

    async def CreateProduct(  # noqa: D102 - documented in the proto
        self, request: product_service_pb2.CreateProductRequest, context: Context
    ) -> product_pb2.Product:
        command = mappers.create_product_command(request)
        product = await handlers.create_product(
            command,
            current_caller(),
            self._products,
            self._ports.categories,
            clock=self._ports.clock,
        )
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

    async def UpdateProduct(  # noqa: D102
        self, request: product_service_pb2.UpdateProductRequest, context: Context
    ) -> product_pb2.Product:
        command = mappers.update_product_command(request)
        product = await catalog.update_product(
            command,
            current_caller(),
            self._products,
            self._ports.categories,
            clock=self._ports.clock,
        )
        return mappers.product_to_proto(product)

    async def _lifecycle(self, product_id: str, action: LifecycleAction) -> product_pb2.Product:
        command = mappers.lifecycle_command(product_id, action)
        product = await catalog.change_lifecycle(
            command, current_caller(), self._products, clock=self._ports.clock
        )
        return mappers.product_to_proto(product)

    async def PublishProduct(  # noqa: D102
        self, request: product_service_pb2.PublishProductRequest, context: Context
    ) -> product_pb2.Product:
        return await self._lifecycle(request.product_id, LifecycleAction.PUBLISH)

    async def UnpublishProduct(  # noqa: D102
        self, request: product_service_pb2.UnpublishProductRequest, context: Context
    ) -> product_pb2.Product:
        return await self._lifecycle(request.product_id, LifecycleAction.UNPUBLISH)

    async def ArchiveProduct(  # noqa: D102
        self, request: product_service_pb2.ArchiveProductRequest, context: Context
    ) -> product_pb2.Product:
        return await self._lifecycle(request.product_id, LifecycleAction.ARCHIVE)

    async def ListCategories(  # noqa: D102
        self, request: product_service_pb2.ListCategoriesRequest, context: Context
    ) -> product_service_pb2.ListCategoriesResponse:
        command = mappers.list_categories_command(request)
        found = await catalog.list_categories(command, self._ports.categories)
        return product_service_pb2.ListCategoriesResponse(
            categories=[mappers.category_to_proto(c) for c in found]
        )

    async def CreateCategory(  # noqa: D102
        self, request: product_service_pb2.CreateCategoryRequest, context: Context
    ) -> product_pb2.Category:
        command = mappers.create_category_command(request)
        category = await catalog.create_category(command, current_caller(), self._ports.categories)
        return mappers.category_to_proto(category)

    async def UpdateCategory(  # noqa: D102
        self, request: product_service_pb2.UpdateCategoryRequest, context: Context
    ) -> product_pb2.Category:
        command = mappers.update_category_command(request)
        category = await catalog.update_category(command, current_caller(), self._ports.categories)
        return mappers.category_to_proto(category)

    async def DeleteCategory(  # noqa: D102
        self, request: product_service_pb2.DeleteCategoryRequest, context: Context
    ) -> empty_pb2.Empty:
        command = mappers.delete_category_command(request)
        await catalog.delete_category(
            command, current_caller(), self._ports.categories, self._products
        )
        return empty_pb2.Empty()

    async def GetInventory(  # noqa: D102
        self, request: product_service_pb2.GetInventoryRequest, context: Context
    ) -> product_pb2.InventoryLevel:
        command = mappers.get_inventory_command(request)
        product_id, level = await inventory.get_inventory(command, current_caller(), self._products)
        return mappers.inventory_to_proto(product_id, level)

    async def AdjustInventory(  # noqa: D102
        self, request: product_service_pb2.AdjustInventoryRequest, context: Context
    ) -> product_pb2.InventoryLevel:
        command = mappers.adjust_inventory_command(request)
        product_id, level = await inventory.adjust_inventory(
            command, current_caller(), self._products, self._ports.stock, clock=self._ports.clock
        )
        return mappers.inventory_to_proto(product_id, level)

    async def ListInventoryLedgerEntries(  # noqa: D102
        self, request: product_service_pb2.ListInventoryLedgerEntriesRequest, context: Context
    ) -> product_service_pb2.ListInventoryLedgerEntriesResponse:
        command = mappers.ledger_command(request)
        page = await inventory.list_ledger_entries(
            command, current_caller(), self._products, self._ports.stock
        )
        return mappers.ledger_response(page)

    async def CreateDiscount(  # noqa: D102
        self, request: product_service_pb2.CreateDiscountRequest, context: Context
    ) -> product_pb2.Discount:
        command = mappers.create_discount_command(request)
        discount = await catalog.create_discount(
            command, current_caller(), self._products, clock=self._ports.clock
        )
        return mappers.discount_to_proto(discount)

    async def DeleteDiscount(  # noqa: D102
        self, request: product_service_pb2.DeleteDiscountRequest, context: Context
    ) -> empty_pb2.Empty:
        command = mappers.delete_discount_command(request)
        await catalog.delete_discount(
            command, current_caller(), self._products, clock=self._ports.clock
        )
        return empty_pb2.Empty()

    async def ListReviews(  # noqa: D102
        self, request: product_service_pb2.ListReviewsRequest, context: Context
    ) -> product_service_pb2.ListReviewsResponse:
        command = mappers.list_reviews_command(request)
        page = await reviews.list_reviews(command, self._products, self._ports.reviews)
        return mappers.reviews_response(page)

    async def CreateReview(  # noqa: D102
        self, request: product_service_pb2.CreateReviewRequest, context: Context
    ) -> product_pb2.Review:
        command = mappers.create_review_command(request)
        review = await reviews.create_review(
            command,
            current_caller(),
            self._products,
            self._ports.reviews,
            self._ports.purchases,
            clock=self._ports.clock,
        )
        return mappers.review_to_proto(review)

    async def UpdateReview(  # noqa: D102
        self, request: product_service_pb2.UpdateReviewRequest, context: Context
    ) -> product_pb2.Review:
        command = mappers.update_review_command(request)
        review = await reviews.update_review(
            command, current_caller(), self._products, self._ports.reviews, clock=self._ports.clock
        )
        return mappers.review_to_proto(review)

    async def DeleteReview(  # noqa: D102
        self, request: product_service_pb2.DeleteReviewRequest, context: Context
    ) -> empty_pb2.Empty:
        command = mappers.review_action_command(request.product_id, request.review_id)
        await reviews.delete_review(command, current_caller(), self._products, self._ports.reviews)
        return empty_pb2.Empty()

    async def ReplyToReview(  # noqa: D102
        self, request: product_service_pb2.ReplyToReviewRequest, context: Context
    ) -> product_pb2.Review:
        command = mappers.review_action_command(
            request.product_id, request.review_id, request.reply
        )
        review = await reviews.reply_to_review(
            command, current_caller(), self._products, self._ports.reviews, clock=self._ports.clock
        )
        return mappers.review_to_proto(review)

    async def HideReview(  # noqa: D102
        self, request: product_service_pb2.HideReviewRequest, context: Context
    ) -> product_pb2.Review:
        command = mappers.review_action_command(
            request.product_id, request.review_id, request.reason
        )
        review = await reviews.hide_review(
            command, current_caller(), self._products, self._ports.reviews, clock=self._ports.clock
        )
        return mappers.review_to_proto(review)

    async def ListRecommendations(  # noqa: D102
        self, request: product_service_pb2.ListRecommendationsRequest, context: Context
    ) -> product_service_pb2.ListRecommendationsResponse:
        command = mappers.recommendations_command(request)
        found = await recommendations.list_recommendations(
            command, self._products, self._ports.purchases
        )
        return mappers.recommendations_response(found)


class ProductInternalServicer(product_service_pb2_grpc.ProductInternalServiceServicer):
    """Inventory reservations for the order service; the mesh's secret admits its calls."""

    def __init__(
        self,
        ports: Ports,
        *,
        wait_seconds: float,
        lease_seconds: float,
        expires_in_seconds: float,
    ) -> None:
        self._ports = ports
        self._wait_seconds = wait_seconds
        self._lease_seconds = lease_seconds
        self._expires_in_seconds = expires_in_seconds

    async def ReserveInventory(  # noqa: D102
        self, request: product_service_pb2.ReserveInventoryRequest, context: Context
    ) -> product_service_pb2.ReserveInventoryResponse:
        command = mappers.reserve_command(request)
        reservation = await handlers.reserve_inventory(
            command,
            self._ports.reservations,
            self._ports.stock,
            self._ports.products,
            wait_seconds=self._wait_seconds,
            lease_seconds=self._lease_seconds,
            expires_in_seconds=self._expires_in_seconds,
            clock=self._ports.clock,
        )
        return mappers.reserve_response(reservation)

    async def CommitReservation(  # noqa: D102
        self, request: product_service_pb2.CommitReservationRequest, context: Context
    ) -> product_service_pb2.CommitReservationResponse:
        command = mappers.commit_command(request)
        await handlers.commit_reservation(command, self._ports.reservations, self._ports.stock)
        return product_service_pb2.CommitReservationResponse()

    async def ReleaseReservation(  # noqa: D102
        self, request: product_service_pb2.ReleaseReservationRequest, context: Context
    ) -> product_service_pb2.ReleaseReservationResponse:
        command = mappers.release_command(request)
        await handlers.release_reservation(command, self._ports.reservations, self._ports.stock)
        return product_service_pb2.ReleaseReservationResponse()
