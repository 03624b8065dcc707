"""Listings: CreateProduct, Get, BatchGet, Update, the lifecycle and discounts."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta

from marketplace.product.v1 import product_pb2, product_service_pb2

from services.common.identity import Caller
from services.common.proto_money import money_to_proto
from services.product.domain.commands import (
    BatchGetProducts,
    ChangeLifecycle,
    CreateDiscount,
    CreateProduct,
    DeleteDiscount,
    GetProduct,
    ListSellerProducts,
    ParseProblem,
    UpdateProduct,
    Viewer,
)
from services.product.domain.model import (
    LISTED_STATES,
    Discount,
    LifecycleAction,
    Product,
    ProductState,
)
from services.product.mappers.fields import (
    attribute_proto,
    mask_paths_of,
    parse_attribute,
    parse_money,
    timestamp,
)
from services.product.service_layer.listings import ProductPage

_STATES = {
    ProductState.DRAFT: product_pb2.PRODUCT_STATE_DRAFT,
    ProductState.PUBLISHED: product_pb2.PRODUCT_STATE_PUBLISHED,
    ProductState.UNPUBLISHED: product_pb2.PRODUCT_STATE_UNPUBLISHED,
    ProductState.ARCHIVED: product_pb2.PRODUCT_STATE_ARCHIVED,
}


def viewer_of(caller: Caller | None) -> Viewer:
    """Who reads, from the optional caller of a public RPC."""
    if caller is None:
        return Viewer()
    return Viewer(user_id=caller.user_id, is_admin=caller.is_admin)


def create_product_command(
    request: product_service_pb2.CreateProductRequest, *, caller: Caller
) -> CreateProduct:
    """The command of a CreateProduct request; output-only fields of the product are ignored."""
    product = request.product
    problems: list[ParseProblem] = []
    if not request.HasField("product"):
        problems.append(ParseProblem("product", "is required"))
    list_price = parse_money(product, "list_price", problems)
    sale_price = parse_money(product, "sale_price", problems)
    return CreateProduct(
        caller=caller,
        title=product.title,
        description=product.description,
        category=product.category,
        subcategory=product.subcategory,
        attributes={name: parse_attribute(value) for name, value in product.attributes.items()},
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


def discount_to_proto(discount: Discount) -> product_pb2.Discount:
    """The API view of a discount."""
    message = product_pb2.Discount(
        discount_id=discount.discount_id,
        start_time=timestamp(discount.start_time),
        end_time=timestamp(discount.end_time),
    )
    if discount.amount_off is not None:
        message.amount_off.CopyFrom(money_to_proto(discount.amount_off))
    else:
        message.percent_off = discount.percent_off
    return message


def product_to_proto(product: Product, now: datetime) -> product_pb2.Product:
    """The API view of a product, priced at `now` (the injected clock's time)."""
    message = product_pb2.Product(
        product_id=product.product_id,
        seller_id=product.seller_id,
        title=product.title,
        description=product.description,
        category=product.category,
        subcategory=product.subcategory,
        attributes={name: attribute_proto(v) for name, v in product.attributes.items()},
        list_price=money_to_proto(product.list_price),
        effective_price=money_to_proto(product.effective_price_at(now)),
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
        create_time=timestamp(product.create_time),
        update_time=timestamp(product.update_time),
    )
    if product.sale_price is not None:
        message.sale_price.CopyFrom(money_to_proto(product.sale_price))
    return message


# A cached view: the span of time its price holds for (ms since the epoch, end exclusive),
# whether the product is listed, its seller, then the serialized Product message.
_VIEW_HEAD = struct.Struct(">qq?H")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)
_ALWAYS = (-(2**63), 2**63 - 1)


def _ms(moment: datetime) -> int:
    # Floored, so comparisons with the whole-millisecond discount times stay exact.
    return (moment - _EPOCH) // _MS


def cached_view(product: Product, now: datetime) -> bytes:
    """The view a cache hit serves: the answer of an uncached read at `now`, and its validity.

    The effective price is the only part that changes with time, and only when a discount
    starts or ends: the view holds from the last such moment up to `now` until the next one.
    """
    moments = [m for d in product.discounts for m in (d.start_time, d.end_time)]
    before = [m for m in moments if m <= now]
    after = [m for m in moments if m > now]
    valid_from = _ms(max(before)) if before else _ALWAYS[0]
    valid_until = _ms(min(after)) if after else _ALWAYS[1]
    seller = product.seller_id.encode()
    head = _VIEW_HEAD.pack(valid_from, valid_until, product.state in LISTED_STATES, len(seller))
    return head + seller + product_to_proto(product, now).SerializeToString()


def served_view(view: bytes, now: datetime, viewer: Viewer) -> product_pb2.Product | None:
    """The product a cached view answers at `now` for `viewer`; None when a read must decide.

    None when the price may have changed since the view was rendered or when the viewer may
    not see the product (the uncached read then answers NOT_FOUND with its usual details).
    """
    if len(view) < _VIEW_HEAD.size:
        return None
    valid_from, valid_until, listed, seller_len = _VIEW_HEAD.unpack_from(view)
    if not valid_from <= _ms(now) < valid_until:
        return None
    start = _VIEW_HEAD.size
    if not (listed or viewer.is_admin):
        seller = view[start : start + seller_len].decode()
        if viewer.user_id is None or viewer.user_id != seller:
            return None
    return product_pb2.Product.FromString(view[start + seller_len :])


def batch_get_response(
    products: list[Product], now: datetime
) -> product_service_pb2.BatchGetProductsResponse:
    """The response of BatchGetProducts."""
    return product_service_pb2.BatchGetProductsResponse(
        products=[product_to_proto(p, now) for p in products]
    )


def update_product_command(
    request: product_service_pb2.UpdateProductRequest, *, caller: Caller
) -> UpdateProduct:
    """The command of an UpdateProduct request; fields outside the mask are ignored."""
    product = request.product
    problems: list[ParseProblem] = []
    if not request.HasField("product"):
        problems.append(ParseProblem("product", "is required"))
    paths = mask_paths_of(request.update_mask)
    list_price = parse_money(product, "list_price", problems) if "list_price" in paths else None
    sale_price = parse_money(product, "sale_price", problems) if "sale_price" in paths else None
    if "list_price" in paths and list_price is None and not problems:
        problems.append(ParseProblem("product.list_price", "is required"))
    return UpdateProduct(
        caller=caller,
        product_id=product.product_id,
        etag=product.etag,
        paths=paths,
        title=product.title,
        description=product.description,
        category=product.category,
        subcategory=product.subcategory,
        attributes={name: parse_attribute(value) for name, value in product.attributes.items()},
        list_price=list_price,
        sale_price=sale_price,
        image_urls=tuple(product.image_urls),
        parse_problems=tuple(problems),
    )


def lifecycle_command(
    product_id: str, action: LifecycleAction, *, caller: Caller
) -> ChangeLifecycle:
    """The command of a Publish, Unpublish or Archive request."""
    return ChangeLifecycle(caller=caller, product_id=product_id, action=action)


def create_discount_command(
    request: product_service_pb2.CreateDiscountRequest, *, caller: Caller
) -> CreateDiscount:
    """The command of a CreateDiscount request."""
    discount = request.discount
    problems: list[ParseProblem] = []
    amount_off = parse_money(discount, "amount_off", problems, prefix="discount")
    if amount_off is None and discount.HasField("amount_off") and not problems:
        problems.append(ParseProblem("discount.amount_off", "is invalid"))
    return CreateDiscount(
        caller=caller,
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


def delete_discount_command(
    request: product_service_pb2.DeleteDiscountRequest, *, caller: Caller
) -> DeleteDiscount:
    """The command of a DeleteDiscount request."""
    return DeleteDiscount(
        caller=caller, product_id=request.product_id, discount_id=request.discount_id
    )


_STATE_OF_PROTO = {number: state for state, number in _STATES.items()}


def list_seller_products_command(
    request: product_service_pb2.ListSellerProductsRequest, caller: Caller
) -> ListSellerProducts:
    """The command of a ListSellerProducts request."""
    states: list[ProductState] = []
    problems: list[ParseProblem] = []
    for index, number in enumerate(request.states):
        state = _STATE_OF_PROTO.get(number)
        if state is None:
            problems.append(ParseProblem(f"states[{index}]", "must be a product state"))
        else:
            states.append(state)
    return ListSellerProducts(
        seller_id=request.seller_id,
        states=tuple(states),
        category=request.category.strip(),
        max_available=request.max_available if request.HasField("max_available") else None,
        page_size=request.page_size,
        page_token=request.page_token,
        parse_problems=tuple(problems),
        caller=caller,
    )


def seller_products_response(
    page: ProductPage, now: datetime
) -> product_service_pb2.ListSellerProductsResponse:
    """The response of ListSellerProducts."""
    return product_service_pb2.ListSellerProductsResponse(
        products=[product_to_proto(p, now) for p in page.products],
        next_page_token=page.next_page_token,
    )
