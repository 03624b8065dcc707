"""The category tree: requests to commands, categories to messages."""

from __future__ import annotations

from marketplace.product.v1 import product_pb2, product_service_pb2

from services.common.identity import Caller
from services.product.domain.commands import (
    CreateCategory,
    DeleteCategory,
    ListCategories,
    UpdateCategory,
)
from services.product.domain.model import Category
from services.product.mappers.fields import mask_paths_of


def list_categories_command(
    request: product_service_pb2.ListCategoriesRequest,
) -> ListCategories:
    """The command of a ListCategories request."""
    return ListCategories(parent_id=request.parent_id)


def create_category_command(
    request: product_service_pb2.CreateCategoryRequest, *, caller: Caller
) -> CreateCategory:
    """The command of a CreateCategory request."""
    category = request.category
    return CreateCategory(
        caller=caller,
        category_id=category.category_id,
        parent_id=category.parent_id,
        display_name=category.display_name,
        attribute_names=tuple(category.attribute_names),
    )


def update_category_command(
    request: product_service_pb2.UpdateCategoryRequest, *, caller: Caller
) -> UpdateCategory:
    """The command of an UpdateCategory request."""
    category = request.category
    return UpdateCategory(
        caller=caller,
        category_id=category.category_id,
        paths=mask_paths_of(request.update_mask),
        display_name=category.display_name,
        attribute_names=tuple(category.attribute_names),
        parent_id=category.parent_id,
    )


def delete_category_command(
    request: product_service_pb2.DeleteCategoryRequest, *, caller: Caller
) -> DeleteCategory:
    """The command of a DeleteCategory request."""
    return DeleteCategory(caller=caller, category_id=request.category_id)


def category_to_proto(category: Category) -> product_pb2.Category:
    """The API view of a category."""
    return product_pb2.Category(
        category_id=category.category_id,
        parent_id=category.parent_id,
        display_name=category.display_name,
        attribute_names=list(category.attribute_names),
    )
