"""Conversions between the product API's protobuf messages and the domain."""

from __future__ import annotations

from datetime import datetime

from google.protobuf import timestamp_pb2
from google.type import money_pb2
from marketplace.product.v1 import product_pb2, product_service_pb2

from services.common.auth import Caller
from services.common.errors import FieldViolation, InvalidArgument
from services.common.money import Money
from services.product.domain.commands import (
    BatchGetProducts,
    CommitReservation,
    CreateProduct,
    FacetCount,
    GetProduct,
    ParseProblem,
    ReleaseReservation,
    ReserveInventory,
    SearchProducts,
    SortOrder,
    Viewer,
)
from services.product.domain.model import (
    AttributeValue,
    PricedItem,
    Product,
    ProductState,
    Reservation,
    ReservationLine,
)
from services.product.service_layer.handlers import SearchResult

_STATES = {
    ProductState.DRAFT: product_pb2.PRODUCT_STATE_DRAFT,
    ProductState.PUBLISHED: product_pb2.PRODUCT_STATE_PUBLISHED,
    ProductState.UNPUBLISHED: product_pb2.PRODUCT_STATE_UNPUBLISHED,
    ProductState.ARCHIVED: product_pb2.PRODUCT_STATE_ARCHIVED,
}
_SORT_ORDERS = {
    product_service_pb2.SORT_ORDER_UNSPECIFIED: SortOrder.DEFAULT,
    product_service_pb2.SORT_ORDER_RELEVANCE: SortOrder.RELEVANCE,
    product_service_pb2.SORT_ORDER_PRICE_ASCENDING: SortOrder.PRICE_ASCENDING,
    product_service_pb2.SORT_ORDER_PRICE_DESCENDING: SortOrder.PRICE_DESCENDING,
    product_service_pb2.SORT_ORDER_NEWEST: SortOrder.NEWEST,
    product_service_pb2.SORT_ORDER_RATING: SortOrder.RATING,
}


def viewer_of(caller: Caller | None) -> Viewer:
    """Who reads, from the optional caller of a public RPC."""
    if caller is None:
        return Viewer()
    return Viewer(user_id=caller.user_id, is_admin=caller.is_admin)


def _money(message: product_pb2.Product, name: str, problems: list[ParseProblem]) -> Money | None:
    if not message.HasField(name):  # type: ignore[arg-type]  # names come from this module
        return None
    try:
        return Money.from_proto(getattr(message, name), f"product.{name}")
    except InvalidArgument as error:
        problems.extend(ParseProblem(v.field, v.description) for v in error.violations)
        return None


def _attribute(value: product_pb2.AttributeValue) -> AttributeValue | None:
    kind = value.WhichOneof("kind")
    if kind == "text_value":
        return value.text_value
    if kind == "number_value":
        return float(value.number_value)
    if kind == "bool_value":
        return bool(value.bool_value)
    return None


def create_product_command(request: product_service_pb2.CreateProductRequest) -> CreateProduct:
    """The command of a CreateProduct request; output-only fields of the product are ignored."""
    product = request.product
    problems: list[ParseProblem] = []
    if not request.HasField("product"):
        problems.append(ParseProblem("product", "is required"))
    list_price = _money(product, "list_price", problems)
    sale_price = _money(product, "sale_price", problems)
    return CreateProduct(
        title=product.title,
        description=product.description,
        category=product.category,
        subcategory=product.subcategory,
        attributes={name: _attribute(value) for name, value in product.attributes.items()},
        list_price=list_price,
        sale_price=sale_price,
        initial_stock=product.initial_stock,
        image_urls=tuple(product.image_urls),
        publish=request.publish,
        parse_problems=tuple(problems),
    )


def get_product_command(
    request: product_service_pb2.GetProductRequest, caller: Caller | None
) -> GetProduct:
    """The command of a GetProduct request."""
    return GetProduct(product_id=request.product_id, viewer=viewer_of(caller))


def batch_get_command(
    request: product_service_pb2.BatchGetProductsRequest, caller: Caller | None
) -> BatchGetProducts:
    """The command of a BatchGetProducts request."""
    return BatchGetProducts(product_ids=tuple(request.product_ids), viewer=viewer_of(caller))


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


def reserve_command(request: product_service_pb2.ReserveInventoryRequest) -> ReserveInventory:
    """The command of a ReserveInventory request."""
    return ReserveInventory(
        order_id=request.order_id,
        lines=tuple(ReservationLine(item.product_id, item.quantity) for item in request.items),
    )


def commit_command(request: product_service_pb2.CommitReservationRequest) -> CommitReservation:
    """The command of a CommitReservation request."""
    return CommitReservation(order_id=request.order_id)


def release_command(request: product_service_pb2.ReleaseReservationRequest) -> ReleaseReservation:
    """The command of a ReleaseReservation request."""
    return ReleaseReservation(order_id=request.order_id)


def _timestamp(value: datetime) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _money_proto(money: Money) -> money_pb2.Money:
    return money.to_proto()


def _attribute_proto(value: AttributeValue) -> product_pb2.AttributeValue:
    if isinstance(value, bool):
        return product_pb2.AttributeValue(bool_value=value)
    if isinstance(value, str):
        return product_pb2.AttributeValue(text_value=value)
    return product_pb2.AttributeValue(number_value=value)


def product_to_proto(product: Product) -> product_pb2.Product:
    """The API view of a product."""
    message = product_pb2.Product(
        product_id=product.product_id,
        seller_id=product.seller_id,
        title=product.title,
        description=product.description,
        category=product.category,
        subcategory=product.subcategory,
        attributes={name: _attribute_proto(v) for name, v in product.attributes.items()},
        list_price=_money_proto(product.list_price),
        effective_price=_money_proto(product.effective_price),
        stock_available=product.inventory.available,
        state=_STATES[product.state],
        rating=product_pb2.RatingSummary(
            average=product.rating.average, count=product.rating.count, histogram=[0] * 5
        ),
        image_urls=list(product.image_urls),
        etag=product.etag,
        create_time=_timestamp(product.create_time),
        update_time=_timestamp(product.update_time),
    )
    if product.sale_price is not None:
        message.sale_price.CopyFrom(_money_proto(product.sale_price))
    return message


def batch_get_response(products: list[Product]) -> product_service_pb2.BatchGetProductsResponse:
    """The response of BatchGetProducts."""
    return product_service_pb2.BatchGetProductsResponse(
        products=[product_to_proto(p) for p in products]
    )


def _facet(field: str, values: tuple[FacetCount, ...]) -> product_service_pb2.Facet:
    return product_service_pb2.Facet(
        field=field,
        values=[product_service_pb2.FacetValue(value=v.value, count=v.count) for v in values],
    )


def search_response(result: SearchResult) -> product_service_pb2.SearchProductsResponse:
    """The response of SearchProducts."""
    page = result.page
    return product_service_pb2.SearchProductsResponse(
        products=[product_to_proto(p) for p in page.products],
        next_page_token=result.next_page_token,
        total_size=page.total_size,
        facets=[_facet(field, values) for field, values in page.facets.items() if values],
    )


def _priced_item(item: PricedItem) -> product_service_pb2.PricedItem:
    return product_service_pb2.PricedItem(
        product_id=item.product_id,
        seller_id=item.seller_id,
        title=item.title,
        quantity=item.quantity,
        unit_price=_money_proto(item.unit_price),
    )


def reserve_response(reservation: Reservation) -> product_service_pb2.ReserveInventoryResponse:
    """The response of ReserveInventory: the priced items, in the order they were asked."""
    return product_service_pb2.ReserveInventoryResponse(
        items=[_priced_item(item) for item in reservation.items]
    )
