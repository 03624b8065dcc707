"""MongoDB storage of delivered purchases and co-purchase counts."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Sequence
from datetime import datetime

from pymongo.errors import DuplicateKeyError

from services.product.adapters.mongo.schema import (
    CO_PURCHASES,
    ORDER_BASKETS,
    PURCHASES,
    Database,
)

MAX_BASKET_PRODUCTS = 50  # pairs grow with the square of the basket; big ones are capped


class MongoPurchaseStore:
    """Delivered purchases and co-purchase counts.

    An order's basket is counted under a marker document keyed by the order id, inserted
    before the pair counters move, so a replayed event never counts an order twice. A crash
    between the marker and the counters under-counts that order; it never over-counts.
    """

    def __init__(self, db: Database) -> None:
        self._purchases = db[PURCHASES]
        self._baskets = db[ORDER_BASKETS]
        self._pairs = db[CO_PURCHASES]

    async def forget_buyer(self, buyer_id: str) -> None:
        """Drop what the buyer received (the co-purchase counts name nobody and stay)."""
        await self._purchases.delete_many({"buyer_id": buyer_id})

    async def record_delivered(
        self, buyer_id: str, product_ids: Sequence[str], *, now: datetime
    ) -> None:
        """Remember that the buyer received these products."""
        for product_id in dict.fromkeys(product_ids):
            # A duplicate is a product bought before, or a replayed event.
            with contextlib.suppress(DuplicateKeyError):
                await self._purchases.insert_one(
                    {
                        "_id": f"{buyer_id}:{product_id}",
                        "buyer_id": buyer_id,
                        "product_id": product_id,
                        "time": now,
                    }
                )

    async def has_received(self, buyer_id: str, product_id: str) -> bool:
        """Whether the buyer received the product."""
        doc = await self._purchases.find_one({"buyer_id": buyer_id, "product_id": product_id})
        return doc is not None

    async def count_basket(self, order_id: str, product_ids: Sequence[str]) -> bool:
        """Count each pair of the order's products as bought together, once per order."""
        products = sorted(dict.fromkeys(product_ids))[:MAX_BASKET_PRODUCTS]
        try:
            await self._baskets.insert_one(
                {"_id": order_id, "state": "counted", "products": products}
            )
        except DuplicateKeyError:
            return False  # counted already, or cancelled before it was paid
        await self._move_pairs(products, 1)
        return True

    async def uncount_basket(self, order_id: str) -> bool:
        """Take a counted order's pairs back out (it was cancelled), once per order."""
        try:
            await self._baskets.insert_one({"_id": order_id, "state": "cancelled", "products": []})
            return False  # never counted: the marker keeps a late payment from counting it
        except DuplicateKeyError:
            pass
        doc = await self._baskets.find_one_and_update(
            {"_id": order_id, "state": "counted"}, {"$set": {"state": "cancelled"}}
        )
        if doc is None:
            return False
        await self._move_pairs(list(doc.get("products") or ()), -1)
        return True

    async def _move_pairs(self, products: Sequence[str], step: int) -> None:
        for first, second in itertools.permutations(products, 2):
            await self._pairs.update_one(
                {"_id": f"{first}|{second}"},
                {
                    "$inc": {"count": step},
                    "$setOnInsert": {"product_id": first, "other_id": second},
                },
                upsert=True,
            )

    async def also_bought(self, product_id: str, *, limit: int) -> list[tuple[str, int]]:
        """Products bought with this one, most often first, with their counts."""
        docs = (
            await self._pairs.find({"product_id": product_id, "count": {"$gt": 0}})
            .sort([("count", -1), ("other_id", 1)])
            .limit(limit)
            .to_list()
        )
        return [(str(doc["other_id"]), int(doc["count"])) for doc in docs]
