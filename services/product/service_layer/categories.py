"""Category use cases: the two-level tree admins manage and listings sit in."""

from __future__ import annotations

import structlog

from services.common.errors import AlreadyExists, FailedPrecondition, NotFound, Violations
from services.common.identity import Role
from services.product.domain.commands import (
    CreateCategory,
    DeleteCategory,
    ListCategories,
    UpdateCategory,
)
from services.product.domain.model import Category
from services.product.domain.reasons import ErrorReason
from services.product.service_layer import validation
from services.product.service_layer.ports import CategoryRepository, ProductRepository

log = structlog.get_logger("product")


def _category_not_found(category_id: str, field: str = "category_id") -> NotFound:
    return NotFound(
        "no such category", reason=ErrorReason.CATEGORY_NOT_FOUND, metadata={field: category_id}
    )


async def list_categories(
    command: ListCategories, *, categories: CategoryRepository
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


async def create_category(command: CreateCategory, *, categories: CategoryRepository) -> Category:
    """Add a category; the tree has two levels, matching product category and subcategory."""
    command.caller.require_any_role(Role.ADMIN)
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


async def update_category(command: UpdateCategory, *, categories: CategoryRepository) -> Category:
    """Rename a category or change its expected attributes; the tree shape is fixed."""
    command.caller.require_any_role(Role.ADMIN)
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
    *,
    categories: CategoryRepository,
    products: ProductRepository,
) -> None:
    """Delete a category that no product and no subcategory uses."""
    command.caller.require_any_role(Role.ADMIN)
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
