"""MongoDB storage of stock: holds per order, sales, restocks, adjustments and the ledger."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.product.adapters.cache import ProductCache, ProductDocs
from services.product.adapters.mongo.documents import (
    BUMP_REVISION,
    Document,
    hold_field,
    ledger_entry_from_doc,
    ledger_entry_to_doc,
    product_from_doc,
)
from services.product.adapters.mongo.schema import LEDGER, PRODUCTS, Database
from services.product.adapters.mongo.search import state_filter
from services.product.domain.model import LedgerEntry, Product, ProductState
from services.product.service_layer.ports import HoldOutcome, HoldResult, LedgerNote


def _queued(entry: Document) -> Document:
    return {f"ledger_outbox.{entry['_id']}": entry}


def _note_doc(product_id: str, note: LedgerNote, on_hand: int, reserved: int) -> Document:
    return ledger_entry_to_doc(
        LedgerEntry(
            entry_id=uuid.uuid4().hex,
            product_id=product_id,
            on_hand_delta=on_hand,
            reserved_delta=reserved,
            reason=note.reason,
            actor=note.actor,
            create_time=note.time,
        )
    )


class MongoStockStore:
    """Stock on the product documents; each order's units are tagged on the product.

    A hold moves units from available to reserved and records the order under `holds` in
    the same atomic update, so a repeated hold, unhold or sale for one order is a no-op.
    Every stock move queues its ledger entry on the product in that same atomic update
    (`ledger_outbox`), and the entries are then copied to the ledger collection: a crash
    between the two loses no entry, since the next flush copies what is still queued.
    """

    def __init__(self, db: Database, docs: ProductDocs | None = None) -> None:
        self._products = db[PRODUCTS]
        self._ledger = db[LEDGER]
        self._docs = docs or ProductDocs(self._products, ProductCache(None))

    async def hold(
        self,
        product_id: str,
        order_id: str,
        quantity: int,
        note: LedgerNote,
        *,
        states: Sequence[ProductState],
    ) -> HoldResult:
        """Move `quantity` available units to reserved for the order, unless already done.

        Only a product in one of `states` (the service layer's rule of what may be sold)
        is held; any other is NOT_FOUND.
        """
        hold = hold_field(order_id)
        doc = await self._products.find_one_and_update(
            {
                "_id": product_id,
                "state": state_filter(states),
                "inventory.available": {"$gte": quantity},
                hold: {"$exists": False},
            },
            {
                "$inc": {
                    "inventory.available": -quantity,
                    "inventory.reserved": quantity,
                    "ledger_pending": 1,
                    **BUMP_REVISION,
                },
                "$set": {
                    hold: {"order_id": order_id, "quantity": quantity},
                    **_queued(_note_doc(product_id, note, 0, quantity)),
                },
            },
            return_document=ReturnDocument.AFTER,
        )
        if doc is not None:
            await self._docs.written(doc)
            await self.flush_written(product_id, doc)
            return HoldResult(HoldOutcome.HELD, product_from_doc(doc))
        current = await self._products.find_one({"_id": product_id})
        if current is None:
            return HoldResult(HoldOutcome.NOT_FOUND)
        if _held_quantity(current, order_id) is not None:
            return HoldResult(HoldOutcome.HELD, product_from_doc(current))
        if current.get("state") not in {state.value for state in states}:
            return HoldResult(HoldOutcome.NOT_FOUND)
        return HoldResult(HoldOutcome.OUT_OF_STOCK, product_from_doc(current))

    async def unhold(
        self, product_id: str, order_id: str, note: LedgerNote, *, quantity: int | None = None
    ) -> None:
        """Give the order's held units back to available; nothing when it holds none."""
        await self._settle(product_id, order_id, sold=False, note=note, expected=quantity)

    async def sell_hold(
        self, product_id: str, order_id: str, note: LedgerNote, *, quantity: int | None = None
    ) -> None:
        """Take the order's held units out of stock; nothing when it holds none."""
        await self._settle(product_id, order_id, sold=True, note=note, expected=quantity)

    async def _settle(
        self,
        product_id: str,
        order_id: str,
        *,
        sold: bool,
        note: LedgerNote,
        expected: int | None,
    ) -> None:
        hold = hold_field(order_id)
        if expected is not None:
            # The caller knows what the reservation held: one update, filtered on that
            # very hold, settles it without reading the product first.
            doc = await self._settle_quantity(product_id, hold, expected, sold=sold, note=note)
            if doc is not None:
                return
        current = await self._products.find_one({"_id": product_id, hold: {"$exists": True}})
        quantity = _held_quantity(current, order_id) if current else None
        if quantity is None:
            return
        await self._settle_quantity(product_id, hold, quantity, sold=sold, note=note)

    async def _settle_quantity(
        self, product_id: str, hold: str, quantity: int, *, sold: bool, note: LedgerNote
    ) -> Document | None:
        """Settle the hold if it holds `quantity` units; the product after, or None."""
        target = "inventory.on_hand" if sold else "inventory.available"
        entry = _note_doc(product_id, note, -quantity if sold else 0, -quantity)
        # The filter on the hold makes the update happen once even if two calls race here.
        doc = await self._products.find_one_and_update(
            {"_id": product_id, f"{hold}.quantity": quantity},
            {
                "$unset": {hold: ""},
                "$set": _queued(entry),
                "$inc": {
                    "inventory.reserved": -quantity,
                    target: -quantity if sold else quantity,
                    "ledger_pending": 1,
                    **BUMP_REVISION,
                },
            },
            return_document=ReturnDocument.AFTER,
        )
        if doc is not None:
            await self._docs.written(doc)
            await self.flush_written(product_id, doc)
        return doc

    async def restock(
        self, product_id: str, order_id: str, quantity: int, note: LedgerNote
    ) -> bool:
        """Put a cancelled order's sold units back, once per order; False if done before.

        The order is marked on the product in the same atomic update, like a hold.
        """
        marker = "restocks.r" + hold_field(order_id).removeprefix("holds.h")
        doc = await self._products.find_one_and_update(
            {"_id": product_id, marker: {"$exists": False}},
            {
                "$inc": {
                    "inventory.on_hand": quantity,
                    "inventory.available": quantity,
                    "ledger_pending": 1,
                    **BUMP_REVISION,
                },
                "$set": {marker: True, **_queued(_note_doc(product_id, note, quantity, 0))},
            },
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return False
        await self._docs.written(doc)
        await self.flush_written(product_id, doc)
        return True

    async def adjust(self, product_id: str, delta: int, note: LedgerNote) -> Product | None:
        """Change on-hand units by `delta` unless that would take them below the reserved.

        Returns the product after the change, or None when refused (or not found).
        """
        condition: dict[str, Any] = {"_id": product_id}
        if delta < 0:
            # available = on_hand - reserved, so this keeps on_hand >= reserved atomically.
            condition["inventory.available"] = {"$gte": -delta}
        doc = await self._products.find_one_and_update(
            condition,
            {
                "$inc": {
                    "inventory.on_hand": delta,
                    "inventory.available": delta,
                    "ledger_pending": 1,
                    **BUMP_REVISION,
                },
                "$set": _queued(_note_doc(product_id, note, delta, 0)),
            },
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            return None
        await self._docs.written(doc)
        await self.flush_written(product_id, doc)
        return product_from_doc(doc)

    async def flush_ledger(self, product_id: str) -> None:
        """Copy the product's queued ledger entries to the ledger, then unqueue them."""
        doc = await self._products.find_one({"_id": product_id}, {"ledger_outbox": 1})
        await self.flush_written(product_id, doc)

    async def flush_written(self, product_id: str, doc: Document | None) -> None:
        """Flush the entries `doc` (the product as a write returned it) shows queued.

        A write's own answer lists what was queued at that instant, so the hot path needs
        no read of its own; an entry queued after it is flushed by its own writer.
        """
        queued = dict((doc or {}).get("ledger_outbox") or {})
        for entry_id, entry in queued.items():
            # An entry may have been copied by an earlier flush that died before unqueueing it.
            with contextlib.suppress(DuplicateKeyError):
                await self._ledger.insert_one(entry)
            key = f"ledger_outbox.{entry_id}"
            # Conditional, so two flushes racing here decrement the counter once.
            await self._products.update_one(
                {"_id": product_id, key: {"$exists": True}},
                {"$unset": {key: ""}, "$inc": {"ledger_pending": -1}},
            )

    async def flush_all_ledgers(self, *, limit: int = 200) -> int:
        """Flush the products that still have queued entries (after a crash); how many."""
        docs = await self._products.find(
            {"ledger_pending": {"$gt": 0}}, {"_id": 1}, limit=limit
        ).to_list()
        for doc in docs:
            await self.flush_ledger(str(doc["_id"]))
        return len(docs)

    async def ledger_page(self, product_id: str, *, offset: int, limit: int) -> list[LedgerEntry]:
        """One page of a product's ledger, newest first."""
        await self.flush_ledger(product_id)
        docs = (
            await self._ledger.find({"product_id": product_id})
            .sort([("create_time", -1), ("_id", -1)])
            .skip(offset)
            .limit(limit)
            .to_list()
        )
        return [ledger_entry_from_doc(doc) for doc in docs]


def _held_quantity(doc: dict[str, Any], order_id: str) -> int | None:
    key = hold_field(order_id).removeprefix("holds.")
    hold = (doc.get("holds") or {}).get(key)
    return int(hold["quantity"]) if isinstance(hold, dict) else None
