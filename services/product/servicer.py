"""The gRPC adapter of the product service: requests to commands, results to responses."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import empty_pb2
from marketplace.product.v1 import product_pb2, product_service_pb2, product_service_pb2_grpc

from services.common.clock import Clock
from services.common.identity import current_caller, optional_caller
from services.product.domain.model import LifecycleAction
from services.product.mappers import categories as category_mappers
from services.product.mappers import inventory as inventory_mappers
from services.product.mappers import products as product_mappers
from services.product.mappers import reviews as review_mappers
from services.product.mappers import search as search_mappers
from services.product.service_layer import (
    categories,
    inventory,
    listings,
    pricing,
    privacy,
    recommendations,
    reservations,
    reviews,
    search,
)
from services.product.service_layer.ports import (
    CatalogSearch,
    CategoryRepository,
    ProductRepository,
    ProductViews,
    PurchaseStore,
    ReservationStore,
    ReviewRepository,
    StockStore,
)

type Context = grpc.aio.ServicerContext[Any, Any]


@dataclass(frozen=True)
class Ports:
    """The ports the use cases use, built once by the composition root."""

    products: ProductRepository
    catalog: CatalogSearch
    stock: StockStore
    reservations: ReservationStore
    categories: CategoryRepository
    reviews: ReviewRepository
    purchases: PurchaseStore
    clock: Clock
    views: ProductViews | None = None


class ProductServicer(product_service_pb2_grpc.ProductServiceServicer):
    """The public catalog API: map the request, await the use case, map the result back."""

    def __init__(self, ports: Ports) -> None:
        self._ports = ports
        self._products = ports.products
        self._clock = ports.clock
        self._views = ports.views

    async def CreateProduct(  # noqa: D102 - documented in the proto
        self, request: product_service_pb2.CreateProductRequest, context: Context
    ) -> product_pb2.Product:
        command = product_mappers.create_product_command(request, caller=current_caller())
        product = await listings.create_product(
            command, products=self._products, categories=self._ports.categories, clock=self._clock
        )
        return product_mappers.product_to_proto(product, self._clock.now())

    async def GetProduct(  # noqa: D102
        self, request: product_service_pb2.GetProductRequest, context: Context
    ) -> product_pb2.Product:
        command = product_mappers.get_product_command(request, optional_caller())
        now = self._clock.now()
        if self._views is not None and (view := await self._views.view(request.product_id)):
            # The hot path: one Redis command and one parse, nothing mapped.
            served = product_mappers.served_view(view, now, command.viewer)
            if served is not None:
                return served
        product = await listings.get_product(command, products=self._products)
        return product_mappers.product_to_proto(product, now)

    async def BatchGetProducts(  # noqa: D102
        self, request: product_service_pb2.BatchGetProductsRequest, context: Context
    ) -> product_service_pb2.BatchGetProductsResponse:
        command = product_mappers.batch_get_command(request, optional_caller())
        products = await listings.batch_get_products(command, products=self._products)
        return product_mappers.batch_get_response(products, self._clock.now())

    async def SearchProducts(  # noqa: D102
        self, request: product_service_pb2.SearchProductsRequest, context: Context
    ) -> product_service_pb2.SearchProductsResponse:
        command = search_mappers.search_command(request)
        result = await search.search_products(command, catalog=self._ports.catalog)
        return search_mappers.search_response(result, self._clock.now())

    async def ListSellerProducts(  # noqa: D102
        self, request: product_service_pb2.ListSellerProductsRequest, context: Context
    ) -> product_service_pb2.ListSellerProductsResponse:
        command = product_mappers.list_seller_products_command(request, current_caller())
        page = await listings.list_seller_products(command, products=self._products)
        return product_mappers.seller_products_response(page, self._clock.now())

    async def UpdateProduct(  # noqa: D102
        self, request: product_service_pb2.UpdateProductRequest, context: Context
    ) -> product_pb2.Product:
        command = product_mappers.update_product_command(request, caller=current_caller())
        product = await listings.update_product(
            command, products=self._products, categories=self._ports.categories, clock=self._clock
        )
        return product_mappers.product_to_proto(product, self._clock.now())

    async def _lifecycle(self, product_id: str, action: LifecycleAction) -> product_pb2.Product:
        command = product_mappers.lifecycle_command(product_id, action, caller=current_caller())
        product = await listings.change_lifecycle(
            command, products=self._products, clock=self._clock
        )
        return product_mappers.product_to_proto(product, self._clock.now())

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
        command = category_mappers.list_categories_command(request)
        found = await categories.list_categories(command, categories=self._ports.categories)
        return product_service_pb2.ListCategoriesResponse(
            categories=[category_mappers.category_to_proto(c) for c in found]
        )

    async def CreateCategory(  # noqa: D102
        self, request: product_service_pb2.CreateCategoryRequest, context: Context
    ) -> product_pb2.Category:
        command = category_mappers.create_category_command(request, caller=current_caller())
        category = await categories.create_category(command, categories=self._ports.categories)
        return category_mappers.category_to_proto(category)

    async def UpdateCategory(  # noqa: D102
        self, request: product_service_pb2.UpdateCategoryRequest, context: Context
    ) -> product_pb2.Category:
        command = category_mappers.update_category_command(request, caller=current_caller())
        category = await categories.update_category(command, categories=self._ports.categories)
        return category_mappers.category_to_proto(category)

    async def DeleteCategory(  # noqa: D102
        self, request: product_service_pb2.DeleteCategoryRequest, context: Context
    ) -> empty_pb2.Empty:
        command = category_mappers.delete_category_command(request, caller=current_caller())
        await categories.delete_category(
            command, categories=self._ports.categories, products=self._products
        )
        return empty_pb2.Empty()

    async def GetInventory(  # noqa: D102
        self, request: product_service_pb2.GetInventoryRequest, context: Context
    ) -> product_pb2.InventoryLevel:
        command = inventory_mappers.get_inventory_command(request, caller=current_caller())
        product_id, level = await inventory.get_inventory(command, products=self._products)
        return inventory_mappers.inventory_to_proto(product_id, level)

    async def AdjustInventory(  # noqa: D102
        self, request: product_service_pb2.AdjustInventoryRequest, context: Context
    ) -> product_pb2.InventoryLevel:
        command = inventory_mappers.adjust_inventory_command(request, caller=current_caller())
        product_id, level = await inventory.adjust_inventory(
            command, products=self._products, stock=self._ports.stock, clock=self._clock
        )
        return inventory_mappers.inventory_to_proto(product_id, level)

    async def ListInventoryLedgerEntries(  # noqa: D102
        self, request: product_service_pb2.ListInventoryLedgerEntriesRequest, context: Context
    ) -> product_service_pb2.ListInventoryLedgerEntriesResponse:
        command = inventory_mappers.ledger_command(request, caller=current_caller())
        page = await inventory.list_ledger_entries(
            command, products=self._products, stock=self._ports.stock
        )
        return inventory_mappers.ledger_response(page)

    async def CreateDiscount(  # noqa: D102
        self, request: product_service_pb2.CreateDiscountRequest, context: Context
    ) -> product_pb2.Discount:
        command = product_mappers.create_discount_command(request, caller=current_caller())
        discount = await pricing.create_discount(
            command, products=self._products, clock=self._clock
        )
        return product_mappers.discount_to_proto(discount)

    async def DeleteDiscount(  # noqa: D102
        self, request: product_service_pb2.DeleteDiscountRequest, context: Context
    ) -> empty_pb2.Empty:
        command = product_mappers.delete_discount_command(request, caller=current_caller())
        await pricing.delete_discount(command, products=self._products, clock=self._clock)
        return empty_pb2.Empty()

    async def ListReviews(  # noqa: D102
        self, request: product_service_pb2.ListReviewsRequest, context: Context
    ) -> product_service_pb2.ListReviewsResponse:
        command = review_mappers.list_reviews_command(request)
        page = await reviews.list_reviews(
            command, products=self._products, reviews=self._ports.reviews
        )
        return review_mappers.reviews_response(page)

    async def CreateReview(  # noqa: D102
        self, request: product_service_pb2.CreateReviewRequest, context: Context
    ) -> product_pb2.Review:
        command = review_mappers.create_review_command(request, caller=current_caller())
        review = await reviews.create_review(
            command,
            products=self._products,
            reviews=self._ports.reviews,
            purchases=self._ports.purchases,
            clock=self._clock,
        )
        return review_mappers.review_to_proto(review)

    async def UpdateReview(  # noqa: D102
        self, request: product_service_pb2.UpdateReviewRequest, context: Context
    ) -> product_pb2.Review:
        command = review_mappers.update_review_command(request, caller=current_caller())
        review = await reviews.update_review(
            command, products=self._products, reviews=self._ports.reviews, clock=self._clock
        )
        return review_mappers.review_to_proto(review)

    async def DeleteReview(  # noqa: D102
        self, request: product_service_pb2.DeleteReviewRequest, context: Context
    ) -> empty_pb2.Empty:
        command = review_mappers.review_action_command(
            request.product_id, request.review_id, caller=current_caller()
        )
        await reviews.delete_review(command, products=self._products, reviews=self._ports.reviews)
        return empty_pb2.Empty()

    async def ReplyToReview(  # noqa: D102
        self, request: product_service_pb2.ReplyToReviewRequest, context: Context
    ) -> product_pb2.Review:
        command = review_mappers.review_action_command(
            request.product_id, request.review_id, request.reply, caller=current_caller()
        )
        review = await reviews.reply_to_review(
            command, products=self._products, reviews=self._ports.reviews, clock=self._clock
        )
        return review_mappers.review_to_proto(review)

    async def HideReview(  # noqa: D102
        self, request: product_service_pb2.HideReviewRequest, context: Context
    ) -> product_pb2.Review:
        command = review_mappers.review_action_command(
            request.product_id, request.review_id, request.reason, caller=current_caller()
        )
        review = await reviews.hide_review(
            command, products=self._products, reviews=self._ports.reviews, clock=self._clock
        )
        return review_mappers.review_to_proto(review)

    async def ListRecommendations(  # noqa: D102
        self, request: product_service_pb2.ListRecommendationsRequest, context: Context
    ) -> product_service_pb2.ListRecommendationsResponse:
        command = search_mappers.recommendations_command(request)
        found = await recommendations.list_recommendations(
            command, products=self._products, purchases=self._ports.purchases
        )
        return search_mappers.recommendations_response(found, self._clock.now())


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

    async def ExportUserData(  # noqa: D102
        self, request: product_service_pb2.ExportUserDataRequest, context: Context
    ) -> product_service_pb2.ExportUserDataResponse:
        records = await privacy.export_user(
            request.user_id, products=self._ports.products, reviews=self._ports.reviews
        )
        now = self._ports.clock.now()
        return product_service_pb2.ExportUserDataResponse(
            reviews=[review_mappers.review_to_proto(review) for review in records.reviews],
            listings=[product_mappers.product_to_proto(p, now) for p in records.listings],
        )

    async def ReserveInventory(  # noqa: D102
        self, request: product_service_pb2.ReserveInventoryRequest, context: Context
    ) -> product_service_pb2.ReserveInventoryResponse:
        command = inventory_mappers.reserve_command(request)
        reservation = await reservations.reserve_inventory(
            command,
            reservations=self._ports.reservations,
            stock=self._ports.stock,
            products=self._ports.products,
            clock=self._ports.clock,
            wait_seconds=self._wait_seconds,
            lease_seconds=self._lease_seconds,
            expires_in_seconds=self._expires_in_seconds,
        )
        return inventory_mappers.reserve_response(reservation)

    async def CommitReservation(  # noqa: D102
        self, request: product_service_pb2.CommitReservationRequest, context: Context
    ) -> product_service_pb2.CommitReservationResponse:
        command = inventory_mappers.commit_command(request)
        await reservations.commit_reservation(
            command,
            reservations=self._ports.reservations,
            stock=self._ports.stock,
            clock=self._ports.clock,
        )
        return product_service_pb2.CommitReservationResponse()

    async def ReleaseReservation(  # noqa: D102
        self, request: product_service_pb2.ReleaseReservationRequest, context: Context
    ) -> product_service_pb2.ReleaseReservationResponse:
        command = inventory_mappers.release_command(request)
        await reservations.release_reservation(
            command,
            reservations=self._ports.reservations,
            stock=self._ports.stock,
            clock=self._ports.clock,
        )
        return product_service_pb2.ReleaseReservationResponse()
