"""Wishlists in `wishlist_items`."""

from __future__ import annotations

import uuid
from datetime import datetime

from services.user.adapters.postgres.pool import Connection
from services.user.domain.model import WishlistItem


class PostgresWishlistRepository:
    """The `wishlist_items` table."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def add(self, user_id: uuid.UUID, product_id: str, now: datetime) -> WishlistItem:
        """Add a product unless present; the stored item either way."""
        await self._connection.execute(
            "insert into wishlist_items (user_id, product_id, added_at) values ($1, $2, $3) "
            "on conflict do nothing",
            user_id,
            product_id,
            now,
        )
        added = await self._connection.fetchval(
            "select added_at from wishlist_items where user_id = $1 and product_id = $2",
            user_id,
            product_id,
        )
        return WishlistItem(product_id, added)

    async def get(self, user_id: uuid.UUID, product_id: str) -> WishlistItem | None:
        """The item if the product is on the wishlist."""
        added = await self._connection.fetchval(
            "select added_at from wishlist_items where user_id = $1 and product_id = $2",
            user_id,
            product_id,
        )
        return None if added is None else WishlistItem(product_id, added)

    async def remove(self, user_id: uuid.UUID, product_id: str) -> bool:
        """Remove a product; whether it was there."""
        status = await self._connection.execute(
            "delete from wishlist_items where user_id = $1 and product_id = $2",
            user_id,
            product_id,
        )
        return status == "DELETE 1"

    async def count(self, user_id: uuid.UUID) -> int:
        """How many products the wishlist holds."""
        value = await self._connection.fetchval(
            "select count(*) from wishlist_items where user_id = $1", user_id
        )
        return int(value or 0)

    async def page(
        self, user_id: uuid.UUID, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[WishlistItem]:
        """Items newest first, after a position."""
        if after is None:
            rows = await self._connection.fetch(
                "select product_id, added_at from wishlist_items where user_id = $1 "
                "order by added_at desc, product_id desc limit $2",
                user_id,
                limit,
            )
        else:
            rows = await self._connection.fetch(
                "select product_id, added_at from wishlist_items where user_id = $1 "
                "and (added_at, product_id) < ($2, $3) "
                "order by added_at desc, product_id desc limit $4",
                user_id,
                after[0],
                after[1],
                limit,
            )
        return [WishlistItem(r["product_id"], r["added_at"]) for r in rows]
