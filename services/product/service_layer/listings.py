"""Listing use cases: create, read, edit and move a product through its lifecycle."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from services.common.clock import Clock
from services.common.errors import Aborted, FailedPrecondition, PermissionDenied, Violations
from services.common.identity import Role
from services.common.pagination import clamp_page_size, decode_page_token, encode_page_token
from services.product.domain.commands import (
    BatchGetProducts,
    ChangeLifecycle,
    CreateProduct,
    GetProduct,
    ListSellerProducts,
    UpdateProduct,
)
from services.product.domain.model import (
    LIFECYCLE,
    SELLER_LISTING_STATES,
    AttributeValue,
    Inventory,
    LifecycleAction,
    Product,
    ProductState,
    parse_etag,
    to_millis,
)
from services.product.domain.reasons import ErrorReason
from services.product.service_layer import validation
from services.product.service_layer.access import (
    managed_product,
    product_not_found,
    require_verified_seller,
)
from services.product.service_layer.ports import CategoryRepository, ProductRepository

log = structlog.get_logger("product")

UPDATABLE_PATHS = (
    "title",
    "description",
    "category",
    "subcategory",
    "attributes",
    "list_price",
    "sale_price",
    "image_urls",
)


async def check_category_path(
    categories: CategoryRepository, category: str, subcategory: str
) -> None:
    """Raise InvalidArgument unless the category tree holds this category and subcategory.

    `category` must be a top-level category and `subcategory`, when set, one of its
    children: listings then always sit in the tree admins manage, so its facets and
    filters mean something. The answer names only the fields, not the tree.
    """
    violations = Violations()
    top = await categories.get(category)
    if top is None or top.parent_id:
        violations.add("product.category", "no such category: it must be a top-level category")
    elif subcategory:
        child = await categories.get(subcategory)
        violations.check(
            child is not None and child.parent_id == category,
            "product.subcategory",
            "no such subcategory of this category",
        )
    violations.raise_if_any()


async def create_product(
    command: CreateProduct,
    *,
    products: ProductRepository,
    categories: CategoryRepository,
    clock: Clock,
) -> Product:
    """Create a listing owned by the caller, a seller or an admin with a verified email."""
    caller = command.caller
    require_verified_seller(caller)
    validation.validate_create_product(command)
    await check_category_path(categories, command.category, command.subcategory)
    assert command.list_price is not None  # the validation refuses a missing list price
    attributes: dict[str, AttributeValue] = {
        name: value for name, value in command.attributes.items() if value is not None
    }
    now = to_millis(clock.now())
    product = Product(
        product_id=str(uuid.uuid4()),
        seller_id=caller.user_id,
        title=command.title.strip(),
        description=command.description,
        category=command.category,
        subcategory=command.subcategory,
        attributes=attributes,
        list_price=command.list_price,
        sale_price=command.sale_price,
        inventory=Inventory(on_hand=command.initial_stock),
        state=ProductState.PUBLISHED if command.publish else ProductState.DRAFT,
        image_urls=command.image_urls,
        create_time=now,
        update_time=now,
    )
    await products.add(product)
    log.info("product_created", product_id=product.product_id, state=product.state.value)
    return product


async def get_product(command: GetProduct, *, products: ProductRepository) -> Product:
    """The product, if the viewer may see it; others get NOT_FOUND, not a hint it exists."""
    validation.validate_product_id(command.product_id)
    product = await products.get(command.product_id)
    viewer = command.viewer
    if product is None or not product.visible_to(viewer.user_id, is_admin=viewer.is_admin):
        raise product_not_found(command.product_id)
    return product


async def batch_get_products(
    command: BatchGetProducts, *, products: ProductRepository
) -> list[Product]:
    """The products the viewer may see, in the order asked; the others are left out."""
    validation.validate_batch_get(command)
    found = await products.get_many(list(dict.fromkeys(command.product_ids)))
    viewer = command.viewer
    return [
        product
        for product_id in command.product_ids
        if (product := found.get(product_id)) is not None
        and product.visible_to(viewer.user_id, is_admin=viewer.is_admin)
    ]


def _stale(product_id: str) -> Aborted:
    return Aborted(
        "the product changed since it was read; read it again and retry",
        reason=ErrorReason.ETAG_MISMATCH,
        metadata={"product_id": product_id},
    )


async def update_product(
    command: UpdateProduct,
    *,
    products: ProductRepository,
    categories: CategoryRepository,
    clock: Clock,
) -> Product:
    """Apply the masked fields if the etag is current; a stale etag is ABORTED."""
    caller = command.caller
    violations = Violations()
    for problem in command.parse_problems:
        violations.add(problem.field, problem.description)
    validation.check_id(violations, command.product_id, "product.product_id")
    expected = parse_etag(command.etag)
    if not command.etag:
        violations.add("product.etag", "is required: send the etag of the product you read")
    elif expected is None:
        violations.add("product.etag", "is not an etag this API issued")
    if not command.paths:
        violations.add("update_mask", "is required")
    for path in command.paths:
        if path not in UPDATABLE_PATHS:
            violations.add("update_mask", f"{path!r} cannot be updated")
    violations.raise_if_any()
    assert expected is not None
    product = await managed_product(command.product_id, caller, products)
    if product.state is ProductState.ARCHIVED:
        raise FailedPrecondition(
            "an archived product cannot be changed",
            reason=ErrorReason.PRODUCT_ARCHIVED,
            metadata={"product_id": command.product_id},
        )
    if product.version != expected:
        raise _stale(command.product_id)
    paths = set(command.paths)

    def pick(name: str, new: Any, old: Any) -> Any:
        return new if name in paths else old

    merged = CreateProduct(
        title=pick("title", command.title, product.title),
        description=pick("description", command.description, product.description),
        category=pick("category", command.category, product.category),
        subcategory=pick("subcategory", command.subcategory, product.subcategory),
        attributes=pick("attributes", command.attributes, product.attributes),
        list_price=pick("list_price", command.list_price, product.list_price),
        sale_price=pick("sale_price", command.sale_price, product.sale_price),
        initial_stock=0,
        image_urls=pick("image_urls", command.image_urls, product.image_urls),
        publish=False,
        caller=caller,
    )
    validation.validate_create_product(merged)
    for discount in product.discounts:
        amount_off, list_price = discount.amount_off, merged.list_price
        if amount_off is not None and list_price is not None:
            violations.check(
                amount_off.currency == list_price.currency,
                "product.list_price",
                "must keep the currency of its discounts",
            )
    violations.raise_if_any()
    if paths & {"category", "subcategory"}:
        await check_category_path(categories, merged.category, merged.subcategory)
    fields: dict[str, Any] = {
        "title": merged.title.strip(),
        "description": merged.description,
        "category": merged.category,
        "subcategory": merged.subcategory,
        "attributes": {k: v for k, v in merged.attributes.items() if v is not None},
        "list_price": merged.list_price,
        "sale_price": merged.sale_price,
        "image_urls": merged.image_urls,
    }
    changes = {name: value for name, value in fields.items() if name in paths}
    updated = await products.update_fields(
        command.product_id, expected_version=expected, fields=changes, now=to_millis(clock.now())
    )
    if updated is None:
        raise _stale(command.product_id)
    log.info("product_updated", product_id=command.product_id, fields=sorted(paths))
    return updated


async def change_lifecycle(
    command: ChangeLifecycle,
    *,
    products: ProductRepository,
    clock: Clock,
) -> Product:
    """Publish, unpublish or archive; asking for the current state again is a no-op."""
    caller = command.caller
    if command.action is LifecycleAction.PUBLISH:
        require_verified_seller(caller)
    product = await managed_product(command.product_id, caller, products)
    from_states, to_state = LIFECYCLE[command.action]
    if product.state is to_state:
        return product
    changed = await products.set_state(
        command.product_id,
        from_states=tuple(from_states),
        to_state=to_state,
        now=to_millis(clock.now()),
    )
    if changed is not None:
        log.info("product_state_changed", product_id=command.product_id, state=to_state.value)
        return changed
    current = await products.get(command.product_id)
    if current is not None and current.state is to_state:
        return current  # a concurrent call made the same change
    state = current.state.value if current else "gone"
    raise FailedPrecondition(
        f"cannot {command.action.value} a product in state {state}",
        reason=ErrorReason.INVALID_PRODUCT_STATE,
        metadata={"product_id": command.product_id, "state": state},
    )


DEFAULT_SELLER_PAGE = 20
MAX_SELLER_PAGE = 100
ME = "me"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class ProductPage:
    """A page of products and the token of the next page ("" on the last)."""

    products: list[Product]
    next_page_token: str


async def list_seller_products(
    command: ListSellerProducts, *, products: ProductRepository
) -> ProductPage:
    """One seller's products in every state (or those asked), newest first.

    A seller lists their own ("me" or their id); admins list any seller's. Another
    seller's id is refused before anything is read, so probing ids tells nothing.
    """
    caller = command.caller
    caller.require_any_role(Role.SELLER, Role.ADMIN)
    requested = command.seller_id.strip()
    seller_id = caller.user_id if requested == ME else requested
    violations = Violations()
    for problem in command.parse_problems:
        violations.add(problem.field, problem.description)
    validation.check_id(violations, seller_id, "seller_id")
    if command.max_available is not None and command.max_available < 0:
        violations.add("max_available", "must not be negative")
    states = tuple(sorted(set(command.states))) or SELLER_LISTING_STATES
    # The token is bound to the seller and the filters: continuing another query with it
    # would skip or repeat products.
    query = [seller_id, [s.value for s in states], command.category, command.max_available]
    after: tuple[int, str] | None = None
    position = decode_page_token(command.page_token)
    if position is not None:
        created_ms, product_id = position.get("t"), position.get("i")
        if (
            position.get("q") != query
            or not isinstance(created_ms, int)
            or not isinstance(product_id, str)
        ):
            violations.add("page_token", "does not belong to this seller's list and filters")
        else:
            after = (created_ms, product_id)
    if command.page_size < 0:
        violations.add("page_size", "must not be negative")
    violations.raise_if_any()
    limit = clamp_page_size(command.page_size, default=DEFAULT_SELLER_PAGE, maximum=MAX_SELLER_PAGE)
    if seller_id != caller.user_id and not caller.is_admin:
        raise PermissionDenied(
            "sellers list only their own products",
            reason=ErrorReason.NOT_PRODUCT_OWNER,
            metadata={"seller_id": seller_id},
        )
    page = await products.list_by_seller(
        seller_id,
        states=states,
        category=command.category,
        max_available=command.max_available,
        after=after,
        limit=limit + 1,
    )
    token = ""
    if len(page) > limit:
        last = page[limit - 1]
        created_ms = (last.create_time - _EPOCH) // timedelta(milliseconds=1)
        token = encode_page_token({"q": query, "t": created_ms, "i": last.product_id})
    return ProductPage(page[:limit], token)
