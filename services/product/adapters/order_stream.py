"""The order event stream in Redis as this service reads it: its group and its parser.

`services.common.order_stream.order_events_consumer` builds the consumer around them.
"""

from __future__ import annotations

from google.protobuf.message import DecodeError
from marketplace.order.v1 import events_pb2

from services.product.service_layer.order_events import OrderEvent, OrderEventKind

# The order service's outbox keeps an event until this group (and the user service's)
# has acknowledged it: see services/order/adapters/outbox.py.
GROUP = "product-service"


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
