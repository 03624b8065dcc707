"""Conversions between the product API's protobuf messages and the domain."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf import field_mask_pb2, timestamp_pb2
from google.type import money_pb2
from marketplace.product.v1 import product_pb2, product_service_pb2

from services.common.errors import FieldViolation, InvalidArgument
from services.common.field_mask import unique_paths
from services.common.identity import Caller
from services.common.money import Money
from services.common.proto_money import money_from_proto, money_to_proto
from services.product.domain.commands import (
    AdjustInventory,
    BatchGetProducts,
    ChangeLifecycle,
    CommitReservation,
    CreateCategory,
    CreateDiscount,
    CreateProduct,
    CreateReview,
    DeleteCategory,
    DeleteDiscount,
    FacetCount,
    GetInventory,
    GetProduct,
    ListCategories,
    ListLedgerEntries,
    ListRecommendations,
    ListReviews,
    ParseProblem,
    RecommendationKind,
    ReleaseReservation,
    ReserveInventory,
    ReviewAction,
    SearchProducts,
    SortOrder,
    UpdateCategory,
    UpdateProduct,
    UpdateReview,
    Viewer,
)
from services.product.domain.model import (
    AttributeValue,
    Category,
    Discount,
    Inventory,
    LedgerEntry,
    LifecycleAction,
    PricedItem,
    Product,
    ProductState,
    Reservation,
    ReservationLine,
    Review,
    ReviewState,
)
from services.product.service_layer.handlers import SearchResult
from services.product.service_layer.inventory import LedgerPage
from services.product.service_layer.reviews import ReviewPage

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


def _money(
    message: product_pb2.Product | product_pb2.Discount,
    name: str,
    problems: list[ParseProblem],
    prefix: str = "product",
) -> Money | None:
    if not message.HasField(name):  # type: ignore[arg-type]  # names come from this module
        return None
    try:
        return money_from_proto(getattr(message, name), f"{prefix}.{name}")
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
        checkout_id=request.checkout_id,
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
    return money_to_proto(money)


def _attribute_proto(value: AttributeValue) -> product_pb2.AttributeValue:
    if isinstance(value, bool):
        return product_pb2.AttributeValue(bool_value=value)
    if isinstance(value, str):
        return product_pb2.AttributeValue(text_value=value)
    return product_pb2.AttributeValue(number_value=value)


def discount_to_proto(discount: Discount) -> product_pb2.Discount:
    """The API view of a discount."""
    message = product_pb2.Discount(
        discount_id=discount.discount_id,
        start_time=_timestamp(discount.start_time),
        end_time=_timestamp(discount.end_time),
    )
    if discount.amount_off is not None:
        message.amount_off.CopyFrom(money_to_proto(discount.amount_off))
    else:
        message.percent_off = discount.percent_off
    return message


def product_to_proto(product: Product, now: datetime | None = None) -> product_pb2.Product:
    """The API view of a product, priced at `now`."""
    now = now or datetime.now(UTC)
    message = product_pb2.Product(
        product_id=product.product_id,
        seller_id=product.seller_id,
        title=product.title,
        description=product.description,
        category=product.category,
        subcategory=product.subcategory,
        attributes={name: _attribute_proto(v) for name, v in product.attributes.items()},
        list_price=_money_proto(product.list_price),
        effective_price=_money_proto(product.effective_price_at(now)),
        discounts=[discount_to_proto(d) for d in product.discounts],
        stock_available=product.inventory.available,
        state=_STATES[product.state],
        rating=product_pb2.RatingSummary(
            average=product.rating.average,
            count=product.rating.count,
            histogram=list(product.rating.histogram),
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


def _paths(mask: field_mask_pb2.FieldMask) -> tuple[str, ...]:
    return unique_paths(mask.paths)


def update_product_command(request: product_service_pb2.UpdateProductRequest) -> UpdateProduct:
    """The command of an UpdateProduct request; fields outside the mask are ignored."""
    product = request.product
    problems: list[ParseProblem] = []
    if not request.HasField("product"):
        problems.append(ParseProblem("product", "is required"))
    paths = _paths(request.update_mask)
    list_price = _money(product, "list_price", problems) if "list_price" in paths else None
    sale_price = _money(product, "sale_price", problems) if "sale_price" in paths else None
    if "list_price" in paths and list_price is None and not problems:
        problems.append(ParseProblem("product.list_price", "is required"))
    return UpdateProduct(
        product_id=product.product_id,
        etag=product.etag,
        paths=paths,
        title=product.title,
        description=product.description,
        category=product.category,
        subcategory=product.subcategory,
        attributes={name: _attribute(value) for name, value in product.attributes.items()},
        list_price=list_price,
        sale_price=sale_price,
        image_urls=tuple(product.image_urls),
        parse_problems=tuple(problems),
    )


def lifecycle_command(product_id: str, action: LifecycleAction) -> ChangeLifecycle:
    """The command of a Publish, Unpublish or Archive request."""
    return ChangeLifecycle(product_id=product_id, action=action)


def list_categories_command(
    request: product_service_pb2.ListCategoriesRequest,
) -> ListCategories:
    """The command of a ListCategories request."""
    return ListCategories(parent_id=request.parent_id)


def create_category_command(
    request: product_service_pb2.CreateCategoryRequest,
) -> CreateCategory:
    """The command of a CreateCategory request."""
    category = request.category
    return CreateCategory(
        category_id=category.category_id,
        parent_id=category.parent_id,
        display_name=category.display_name,
        attribute_names=tuple(category.attribute_names),
    )


def update_category_command(
    request: product_service_pb2.UpdateCategoryRequest,
) -> UpdateCategory:
    """The command of an UpdateCategory request."""
    category = request.category
    return UpdateCategory(
        category_id=category.category_id,
        paths=_paths(request.update_mask),
        display_name=category.display_name,
        attribute_names=tuple(category.attribute_names),
        parent_id=category.parent_id,
    )


def delete_category_command(
    request: product_service_pb2.DeleteCategoryRequest,
) -> DeleteCategory:
    """The command of a DeleteCategory request."""
    return DeleteCategory(category_id=request.category_id)


def category_to_proto(category: Category) -> product_pb2.Category:
    """The API view of a category."""
    return product_pb2.Category(
        category_id=category.category_id,
        parent_id=category.parent_id,
        display_name=category.display_name,
        attribute_names=list(category.attribute_names),
    )


def get_inventory_command(request: product_service_pb2.GetInventoryRequest) -> GetInventory:
    """The command of a GetInventory request."""
    return GetInventory(product_id=request.product_id)


def adjust_inventory_command(
    request: product_service_pb2.AdjustInventoryRequest,
) -> AdjustInventory:
    """The command of an AdjustInventory request."""
    return AdjustInventory(
        product_id=request.product_id, delta=request.delta, reason=request.reason
    )


def inventory_to_proto(product_id: str, inventory: Inventory) -> product_pb2.InventoryLevel:
    """The API view of a stock figure."""
    return product_pb2.InventoryLevel(
        product_id=product_id,
        on_hand=inventory.on_hand,
        reserved=inventory.reserved,
        available=inventory.available,
    )


def ledger_command(
    request: product_service_pb2.ListInventoryLedgerEntriesRequest,
) -> ListLedgerEntries:
    """The command of a ListInventoryLedgerEntries request."""
    return ListLedgerEntries(
        product_id=request.product_id, page_size=request.page_size, page_token=request.page_token
    )


def _ledger_entry(entry: LedgerEntry) -> product_pb2.InventoryLedgerEntry:
    return product_pb2.InventoryLedgerEntry(
        entry_id=entry.entry_id,
        product_id=entry.product_id,
        on_hand_delta=entry.on_hand_delta,
        reserved_delta=entry.reserved_delta,
        reason=entry.reason,
        actor=entry.actor,
        create_time=_timestamp(entry.create_time),
    )


def ledger_response(page: LedgerPage) -> product_service_pb2.ListInventoryLedgerEntriesResponse:
    """The response of ListInventoryLedgerEntries."""
    return product_service_pb2.ListInventoryLedgerEntriesResponse(
        entries=[_ledger_entry(e) for e in page.entries], next_page_token=page.next_page_token
    )


def create_discount_command(request: product_service_pb2.CreateDiscountRequest) -> CreateDiscount:
    """The command of a CreateDiscount request."""
    discount = request.discount
    problems: list[ParseProblem] = []
    amount_off = _money(discount, "amount_off", problems, prefix="discount")
    if amount_off is None and discount.HasField("amount_off") and not problems:
        problems.append(ParseProblem("discount.amount_off", "is invalid"))
    return CreateDiscount(
        product_id=request.product_id,
        start_time=(
            discount.start_time.ToDatetime(tzinfo=UTC) if discount.HasField("start_time") else None
        ),
        end_time=(
            discount.end_time.ToDatetime(tzinfo=UTC) if discount.HasField("end_time") else None
        ),
        percent_off=discount.percent_off if discount.WhichOneof("amount") == "percent_off" else 0,
        amount_off=amount_off,
        parse_problems=tuple(problems),
    )


def delete_discount_command(request: product_service_pb2.DeleteDiscountRequest) -> DeleteDiscount:
    """The command of a DeleteDiscount request."""
    return DeleteDiscount(product_id=request.product_id, discount_id=request.discount_id)


_REVIEW_STATES = {
    ReviewState.VISIBLE: product_pb2.REVIEW_STATE_VISIBLE,
    ReviewState.HIDDEN: product_pb2.REVIEW_STATE_HIDDEN,
}


def review_to_proto(review: Review) -> product_pb2.Review:
    """The API view of a review."""
    return product_pb2.Review(
        review_id=review.review_id,
        product_id=review.product_id,
        author_id=review.author_id,
        rating=review.rating,
        title=review.title,
        body=review.body,
        verified_purchase=review.verified_purchase,
        seller_reply=review.seller_reply,
        state=_REVIEW_STATES[review.state],
        create_time=_timestamp(review.create_time),
        update_time=_timestamp(review.update_time),
    )


def list_reviews_command(request: product_service_pb2.ListReviewsRequest) -> ListReviews:
    """The command of a ListReviews request."""
    return ListReviews(
        product_id=request.product_id, page_size=request.page_size, page_token=request.page_token
    )


def reviews_response(page: ReviewPage) -> product_service_pb2.ListReviewsResponse:
    """The response of ListReviews."""
    return product_service_pb2.ListReviewsResponse(
        reviews=[review_to_proto(r) for r in page.reviews], next_page_token=page.next_page_token
    )


def create_review_command(request: product_service_pb2.CreateReviewRequest) -> CreateReview:
    """The command of a CreateReview request."""
    review = request.review
    return CreateReview(
        product_id=request.product_id, rating=review.rating, title=review.title, body=review.body
    )


def update_review_command(request: product_service_pb2.UpdateReviewRequest) -> UpdateReview:
    """The command of an UpdateReview request."""
    review = request.review
    return UpdateReview(
        product_id=review.product_id,
        review_id=review.review_id,
        paths=_paths(request.update_mask),
        rating=review.rating,
        title=review.title,
        body=review.body,
    )


def review_action_command(product_id: str, review_id: str, text: str = "") -> ReviewAction:
    """The command of a DeleteReview, ReplyToReview or HideReview request."""
    return ReviewAction(product_id=product_id, review_id=review_id, text=text)


_KINDS = {
    product_service_pb2.RECOMMENDATION_KIND_UNSPECIFIED: RecommendationKind.DEFAULT,
    product_service_pb2.RECOMMENDATION_KIND_ALSO_BOUGHT: RecommendationKind.ALSO_BOUGHT,
    product_service_pb2.RECOMMENDATION_KIND_SIMILAR: RecommendationKind.SIMILAR,
}


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
    products: list[Product],
) -> product_service_pb2.ListRecommendationsResponse:
    """The response of ListRecommendations."""
    now = datetime.now(UTC)
    return product_service_pb2.ListRecommendationsResponse(
        products=[product_to_proto(p, now) for p in products]
    )
