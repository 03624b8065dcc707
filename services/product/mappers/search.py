"""Search and recommendations: requests to commands, pages to responses."""

from __future__ import annotations

from datetime import datetime

from marketplace.product.v1 import product_service_pb2

from services.common.errors import FieldViolation, InvalidArgument
from services.product.domain.commands import (
    FacetCount,
    ListRecommendations,
    RecommendationKind,
    SearchProducts,
    SortOrder,
)
from services.product.domain.model import Product
from services.product.mappers.products import product_to_proto
from services.product.service_layer.search import SearchResult

_SORT_ORDERS = {
    product_service_pb2.SORT_ORDER_UNSPECIFIED: SortOrder.DEFAULT,
    product_service_pb2.SORT_ORDER_RELEVANCE: SortOrder.RELEVANCE,
    product_service_pb2.SORT_ORDER_PRICE_ASCENDING: SortOrder.PRICE_ASCENDING,
    product_service_pb2.SORT_ORDER_PRICE_DESCENDING: SortOrder.PRICE_DESCENDING,
    product_service_pb2.SORT_ORDER_NEWEST: SortOrder.NEWEST,
    product_service_pb2.SORT_ORDER_RATING: SortOrder.RATING,
}

_KINDS = {
    product_service_pb2.RECOMMENDATION_KIND_UNSPECIFIED: RecommendationKind.DEFAULT,
    product_service_pb2.RECOMMENDATION_KIND_ALSO_BOUGHT: RecommendationKind.ALSO_BOUGHT,
    product_service_pb2.RECOMMENDATION_KIND_SIMILAR: RecommendationKind.SIMILAR,
}


def search_command(request: product_service_pb2.SearchProductsRequest) -> SearchProducts:
    """The command of a SearchProducts request."""
    sort_order = _SORT_ORDERS.get(request.sort_order)
    if sort_order is None:
        raise InvalidArgument([FieldViolation("sort_order", "is not a known sort order")])
    return SearchProducts(
        query=request.query,
        category=request.category,
        subcategory=request.subcategory,
        seller_id=request.seller_id,
        min_price_minor=request.min_price_minor,
        max_price_minor=request.max_price_minor,
        attribute_filters=tuple(request.attribute_filters),
        in_stock_only=request.in_stock_only,
        min_rating=request.min_rating,
        sort_order=sort_order,
        page_size=request.page_size,
        page_token=request.page_token,
    )


def _facet(field: str, values: tuple[FacetCount, ...]) -> product_service_pb2.Facet:
    return product_service_pb2.Facet(
        field=field,
        values=[product_service_pb2.FacetValue(value=v.value, count=v.count) for v in values],
    )


def search_response(
    result: SearchResult, now: datetime
) -> product_service_pb2.SearchProductsResponse:
    """The response of SearchProducts."""
    page = result.page
    return product_service_pb2.SearchProductsResponse(
        products=[product_to_proto(p, now) for p in page.products],
        next_page_token=result.next_page_token,
        total_size=page.total_size,
        facets=[_facet(field, values) for field, values in page.facets.items() if values],
    )


def recommendations_command(
    request: product_service_pb2.ListRecommendationsRequest,
) -> ListRecommendations:
    """The command of a ListRecommendations request."""
    kind = _KINDS.get(request.kind)
    if kind is None:
        raise InvalidArgument([FieldViolation("kind", "is not a known recommendation kind")])
    return ListRecommendations(
        product_id=request.product_id, kind=kind, page_size=request.page_size
    )


def recommendations_response(
    products: list[Product], now: datetime
) -> product_service_pb2.ListRecommendationsResponse:
    """The response of ListRecommendations."""
    return product_service_pb2.ListRecommendationsResponse(
        products=[product_to_proto(p, now) for p in products]
    )
