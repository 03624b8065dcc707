"""The order event stream in Redis, consumed with the `product-service` consumer group."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Unpack

from google.protobuf.message import DecodeError
from marketplace.order.v1 import events_pb2
from redis.asyncio import Redis

from services.common.streams import ConsumerTuning, StreamConsumer
from services.product.service_layer.order_events import OrderEvent, OrderEventKind

STREAM = "marketplace.order.events.v1"
GROUP = "product-service"

type EventHandler = Callable[[OrderEvent], Awaitable[bool]]


def parse_entry(fields: dict[bytes, bytes]) -> OrderEvent | None:
    """The event a stream entry carries, or None when it is malformed."""
    event_id = fields.get(b"event_id", b"").decode(errors="replace")
    type_name = fields.get(b"type", b"").decode(errors="replace")
    try:
        payload = events_pb2.OrderEvent.FromString(fields.get(b"payload", b""))
    except DecodeError:
        return None
    event_id = event_id or payload.event_id
    if not event_id:
        return None
    if not type_name:
        type_name = events_pb2.OrderEventType.Name(payload.event_type)
    try:
        kind = OrderEventKind(type_name)
    except ValueError:
        kind = OrderEventKind.OTHER
    order = payload.order
    quantities: dict[str, int] = {}
    for item in order.items:
        if item.product_id and item.quantity > 0:
            quantities[item.product_id] = quantities.get(item.product_id, 0) + item.quantity
    return OrderEvent(
        event_id=event_id,
        kind=kind,
        order_id=order.order_id,
        buyer_id=order.buyer_id,
        product_ids=tuple(
            dict.fromkeys(item.product_id for item in order.items if item.product_id)
        ),
        quantities=tuple(quantities.items()),
        restock_required=payload.restock_required,
    )


class OrderEventConsumer(StreamConsumer[OrderEvent]):
    """The chassis stream consumer of order events with this service's group.

    It reads them as one consumer of the group, applies them, then acknowledges them.
    """

    def __init__(
        self,
        redis: Redis,
        handler: EventHandler,
        *,
        consumer: str,
        stream: str = STREAM,
        group: str = GROUP,
        **tuning: Unpack[ConsumerTuning],
    ) -> None:
        super().__init__(
            redis,
            parse_entry,
            handler,
            stream=stream,
            group=group,
            consumer=consumer,
            event_prefix="order_event",
            **tuning,
        )
