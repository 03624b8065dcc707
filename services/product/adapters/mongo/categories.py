"""MongoDB storage of the category tree."""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from services.product.adapters.mongo.documents import category_from_doc, category_to_doc
from services.product.adapters.mongo.schema import CATEGORIES, Database
from services.product.domain.model import Category


class MongoCategoryRepository:
    """Categories in the `categories` collection, keyed by their slug."""

    def __init__(self, db: Database) -> None:
        self._categories = db[CATEGORIES]

    async def add(self, category: Category) -> bool:
        """Store a new category; False when its id is taken."""
        try:
            await self._categories.insert_one(category_to_doc(category))
        except DuplicateKeyError:
            return False
        return True

    async def get(self, category_id: str) -> Category | None:
        """The category, or None."""
        doc = await self._categories.find_one({"_id": category_id})
        return category_from_doc(doc) if doc else None

    async def list(self, parent_id: str | None) -> list[Category]:
        """Every category, or the children of `parent_id`."""
        query = {} if parent_id is None else {"parent_id": parent_id}
        return [category_from_doc(doc) for doc in await self._categories.find(query).to_list()]

    async def replace(self, category: Category) -> bool:
        """Store new values of an existing category; False when it is gone."""
        result = await self._categories.replace_one(
            {"_id": category.category_id}, category_to_doc(category)
        )
        return result.matched_count == 1

    async def delete(self, category_id: str) -> bool:
        """Delete a category; False when it was not there."""
        result = await self._categories.delete_one({"_id": category_id})
        return result.deleted_count == 1

    async def count_children(self, category_id: str) -> int:
        """How many categories have this one as parent."""
        return await self._categories.count_documents({"parent_id": category_id})
