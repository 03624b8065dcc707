"""Order events from the order service: verified purchases and co-purchase counts."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import structlog

from services.common.clock import Clock
from services.product.service_layer.ports import (
    LedgerNote,
    ProcessedEvents,
    PurchaseStore,
    ReviewRepository,
    StockStore,
)

log = structlog.get_logger("product.events")


class OrderEventKind(StrEnum):
    """The order event types the product service acts on, by their enum names."""

    PLACED = "ORDER_EVENT_TYPE_PLACED"
    PAID = "ORDER_EVENT_TYPE_PAID"
    CANCELLED = "ORDER_EVENT_TYPE_CANCELLED"
    DELIVERED = "ORDER_EVENT_TYPE_DELIVERED"
    REFUNDED = "ORDER_EVENT_TYPE_REFUNDED"
    OTHER = "OTHER"


@dataclass(frozen=True)
class OrderEvent:
    """What the product service needs from an order event."""

    event_id: str
    kind: OrderEventKind
    order_id: str
    buyer_id: str
    product_ids: tuple[str, ...]
    # The units per product, for a restock after a cancellation of sold stock.
    quantities: tuple[tuple[str, int], ...] = ()
    # Set on a cancellation after the stock was sold: the units go back to stock.
    restock_required: bool = False


async def handle_order_event(
    event: OrderEvent,
    *,
    processed: ProcessedEvents,
    purchases: PurchaseStore,
    reviews: ReviewRepository,
    stock: StockStore,
    clock: Clock,
) -> bool:
    """Apply an event once; returns False when it had been processed already.

    The event is marked processed only after its effects, so a crash in between replays
    it. Its effects are idempotent on their own (a basket is counted once per order, a
    purchase is a unique pair, a restock is marked per order on the product), so the replay
    changes nothing twice: exactly once in effect.
    """
    if await processed.seen(event.event_id):
        return False
    if event.kind is OrderEventKind.PAID:
        # Paid orders are real purchases; placed ones may still fail payment.
        await purchases.count_basket(event.order_id, event.product_ids)
    elif event.kind is OrderEventKind.CANCELLED:
        await purchases.uncount_basket(event.order_id)
        if event.restock_required:
            # Sold units come back; each product is restocked once per order, so a replay
            # (or a second cancellation event) adds nothing twice.
            note = LedgerNote(
                f"restock cancelled order {event.order_id}", "order-events", clock.now()
            )
            for product_id, quantity in event.quantities:
                await stock.restock(product_id, event.order_id, quantity, note)
    elif event.kind is OrderEventKind.DELIVERED:
        await purchases.count_basket(event.order_id, event.product_ids)
        await purchases.record_delivered(event.buyer_id, event.product_ids, now=clock.now())
        await reviews.mark_verified(event.buyer_id, event.product_ids)
    fresh = await processed.remember(event.event_id, event.kind.value, now=clock.now())
    log.info("order_event_processed", event_id=event.event_id, type=event.kind.value)
    return fresh
