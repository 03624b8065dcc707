"""Catalog use cases: editing listings, their lifecycle, discounts and the category tree."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import structlog

from services.common.clock import Clock
from services.common.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Violations,
)
from services.common.identity import Caller, Role
from services.product.domain.commands import (
    ChangeLifecycle,
    CreateCategory,
    CreateDiscount,
    CreateProduct,
    DeleteCategory,
    DeleteDiscount,
    ListCategories,
    UpdateCategory,
    UpdateProduct,
)
from services.product.domain.model import (
    LIFECYCLE,
    Category,
    Discount,
    LifecycleAction,
    Product,
    ProductState,
    parse_etag,
)
from services.product.domain.reasons import ErrorReason
from services.product.service_layer import validation
from services.product.service_layer.handlers import (
    check_category_path,
    now_ms,
    product_not_found,
)
from services.product.service_layer.ports import CategoryRepository, ProductRepository
from services.product.service_layer.sellers import require_verified_seller

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
MAX_DISCOUNTS = 20


async def managed_product(product_id: str, caller: Caller, products: ProductRepository) -> Product:
    """The product if the caller may change it: its seller or an admin.

    Others who cannot even see it (a draft of another seller) get NOT_FOUND, so drafts do
    not leak; others who can see it get PERMISSION_DENIED.
    """
    caller.require_any_role(Role.SELLER, Role.ADMIN)
    validation.validate_product_id(product_id)
    product = await products.get(product_id)
    if product is None or not product.visible_to(caller.user_id, is_admin=caller.is_admin):
        raise product_not_found(product_id)
    if not product.managed_by(caller.user_id, is_admin=caller.is_admin):
        raise PermissionDenied(
            "only the product's seller or an admin may change it",
            reason=ErrorReason.NOT_PRODUCT_OWNER,
            metadata={"product_id": product_id},
        )
    return product


def _stale(product_id: str) -> Aborted:
    return Aborted(
        "the product changed since it was read; read it again and retry",
        reason=ErrorReason.ETAG_MISMATCH,
        metadata={"product_id": product_id},
    )


async def update_product(
    command: UpdateProduct,
    caller: Caller,
    products: ProductRepository,
    categories: CategoryRepository,
    *,
    clock: Clock,
) -> Product:
    """Apply the masked fields if the etag is current; a stale etag is ABORTED."""
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
        command.product_id, expected_version=expected, fields=changes, now=now_ms(clock)
    )
    if updated is None:
        raise _stale(command.product_id)
    log.info("product_updated", product_id=command.product_id, fields=sorted(paths))
    return updated


async def change_lifecycle(
    command: ChangeLifecycle,
    caller: Caller,
    products: ProductRepository,
    *,
    clock: Clock,
) -> Product:
    """Publish, unpublish or archive; asking for the current state again is a no-op."""
    if command.action is LifecycleAction.PUBLISH:
        require_verified_seller(caller)
    product = await managed_product(command.product_id, caller, products)
    from_states, to_state = LIFECYCLE[command.action]
    if product.state is to_state:
        return product
    changed = await products.set_state(
        command.product_id, from_states=tuple(from_states), to_state=to_state, now=now_ms(clock)
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


def _millis(moment: datetime) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


async def create_discount(
    command: CreateDiscount,
    caller: Caller,
    products: ProductRepository,
    *,
    clock: Clock,
) -> Discount:
    """Schedule a discount on a product the caller manages."""
    validation.validate_discount(command)
    product = await managed_product(command.product_id, caller, products)
    assert command.start_time is not None and command.end_time is not None
    if command.amount_off is not None:
        violations = Violations()
        violations.check(
            command.amount_off.currency == product.list_price.currency,
            "discount.amount_off.currency_code",
            "must be the currency of the product's list price",
        )
        violations.check(
            command.amount_off.minor < product.list_price.minor,
            "discount.amount_off",
            "must be below the product's list price",
        )
        violations.raise_if_any()
    discount = Discount(
        discount_id=uuid.uuid4().hex[:16],
        # MongoDB keeps milliseconds: the answer shows what is stored.
        start_time=_millis(command.start_time),
        end_time=_millis(command.end_time),
        percent_off=command.percent_off,
        amount_off=command.amount_off,
    )
    updated = await products.add_discount(
        command.product_id, discount, now=now_ms(clock), max_discounts=MAX_DISCOUNTS
    )
    if updated is None:
        raise product_not_found(command.product_id)
    if all(d.discount_id != discount.discount_id for d in updated.discounts):
        raise ResourceExhausted(
            f"a product has at most {MAX_DISCOUNTS} discounts; delete old ones first",
            reason=ErrorReason.TOO_MANY_DISCOUNTS,
            metadata={"product_id": command.product_id},
        )
    log.info("discount_created", product_id=command.product_id, discount_id=discount.discount_id)
    return discount


async def delete_discount(
    command: DeleteDiscount,
    caller: Caller,
    products: ProductRepository,
    *,
    clock: Clock,
) -> None:
    """Remove a discount from a product the caller manages."""
    violations = Violations()
    validation.check_id(violations, command.discount_id, "discount_id")
    violations.raise_if_any()
    await managed_product(command.product_id, caller, products)
    if not await products.remove_discount(
        command.product_id, command.discount_id, now=now_ms(clock)
    ):
        raise NotFound(
            "no such discount on this product",
            reason=ErrorReason.DISCOUNT_NOT_FOUND,
            metadata={"product_id": command.product_id, "discount_id": command.discount_id},
        )


def _category_not_found(category_id: str, field: str = "category_id") -> NotFound:
    return NotFound(
        "no such category", reason=ErrorReason.CATEGORY_NOT_FOUND, metadata={field: category_id}
    )


async def list_categories(
    command: ListCategories, categories: CategoryRepository
) -> list[Category]:
    """The whole tree, or one category's children, parents before children, by name."""
    if command.parent_id:
        violations = Violations()
        validation.check_slug(violations, command.parent_id, "parent_id", required=True)
        violations.raise_if_any()
        return sorted(
            await categories.list(command.parent_id), key=lambda c: (c.display_name, c.category_id)
        )
    every = await categories.list(None)
    children: dict[str, list[Category]] = {}
    for category in every:
        children.setdefault(category.parent_id, []).append(category)
    ordered: list[Category] = []

    def walk(parent: str) -> None:
        for category in sorted(
            children.get(parent, []), key=lambda c: (c.display_name, c.category_id)
        ):
            ordered.append(category)
            walk(category.category_id)

    walk("")
    return ordered


async def create_category(
    command: CreateCategory, caller: Caller, categories: CategoryRepository
) -> Category:
    """Add a category; the tree has two levels, matching product category and subcategory."""
    caller.require_any_role(Role.ADMIN)
    validation.validate_category(
        command.category_id, command.parent_id, command.display_name, command.attribute_names
    )
    if command.parent_id:
        parent = await categories.get(command.parent_id)
        if parent is None:
            raise _category_not_found(command.parent_id, "parent_id")
        if parent.parent_id:
            raise FailedPrecondition(
                "categories have two levels: the parent must be a top-level category",
                reason=ErrorReason.CATEGORY_TOO_DEEP,
                metadata={"parent_id": command.parent_id},
            )
    category = Category(
        category_id=command.category_id,
        parent_id=command.parent_id,
        display_name=command.display_name.strip(),
        attribute_names=command.attribute_names,
    )
    if not await categories.add(category):
        raise AlreadyExists(
            "a category with this id exists",
            reason=ErrorReason.CATEGORY_EXISTS,
            metadata={"category_id": command.category_id},
        )
    log.info("category_created", category_id=category.category_id)
    return category


async def update_category(
    command: UpdateCategory, caller: Caller, categories: CategoryRepository
) -> Category:
    """Rename a category or change its expected attributes; the tree shape is fixed."""
    caller.require_any_role(Role.ADMIN)
    violations = Violations()
    validation.check_slug(violations, command.category_id, "category.category_id", required=True)
    if not command.paths:
        violations.add("update_mask", "is required")
    for path in command.paths:
        if path not in ("display_name", "attribute_names"):
            violations.add("update_mask", f"{path!r} cannot be updated")
    violations.raise_if_any()
    current = await categories.get(command.category_id)
    if current is None:
        raise _category_not_found(command.category_id)
    updated = Category(
        category_id=current.category_id,
        parent_id=current.parent_id,
        display_name=(
            command.display_name.strip()
            if "display_name" in command.paths
            else current.display_name
        ),
        attribute_names=(
            command.attribute_names
            if "attribute_names" in command.paths
            else current.attribute_names
        ),
    )
    validation.validate_category(
        updated.category_id, updated.parent_id, updated.display_name, updated.attribute_names
    )
    if not await categories.replace(updated):
        raise _category_not_found(command.category_id)
    return updated


async def delete_category(
    command: DeleteCategory,
    caller: Caller,
    categories: CategoryRepository,
    products: ProductRepository,
) -> None:
    """Delete a category that no product and no subcategory uses."""
    caller.require_any_role(Role.ADMIN)
    violations = Violations()
    validation.check_slug(violations, command.category_id, "category_id", required=True)
    violations.raise_if_any()
    if await categories.get(command.category_id) is None:
        raise _category_not_found(command.category_id)
    if await categories.count_children(command.category_id):
        raise FailedPrecondition(
            "delete the subcategories first",
            reason=ErrorReason.CATEGORY_HAS_CHILDREN,
            metadata={"category_id": command.category_id},
        )
    if await products.count_in_category(command.category_id):
        raise FailedPrecondition(
            "products still use this category",
            reason=ErrorReason.CATEGORY_IN_USE,
            metadata={"category_id": command.category_id},
        )
    if not await categories.delete(command.category_id):
        raise _category_not_found(command.category_id)
