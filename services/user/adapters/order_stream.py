"""The order event stream in Redis as this service reads it: its group and its parser.

`services.common.order_stream.order_events_consumer` builds the consumer around them.
"""

from __future__ import annotations

import uuid

from google.protobuf.message import DecodeError
from google.type import money_pb2
from marketplace.order.v1 import events_pb2

from services.common.money import Money
from services.user.domain.order_mail import OrderEventKind, OrderLine, OrderNotice

# The order service's outbox keeps an event until this group (and the product
# service's) has acknowledged it: see services/order/adapters/outbox.py.
GROUP = "user-service"


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _money(value: money_pb2.Money) -> Money | None:
    if not value.currency_code:
        return None
    return Money(value.units * 100 + value.nanos // 10_000_000, value.currency_code)


def parse_entry(fields: dict[bytes, bytes]) -> OrderNotice | None:
    """The notice a stream entry carries, or None when it is malformed."""
    try:
        payload = events_pb2.OrderEvent.FromString(fields.get(b"payload", b""))
    except DecodeError:
        return None
    event_id = fields.get(b"event_id", b"").decode(errors="replace") or payload.event_id
    if not event_id or not payload.order.order_id:
        return None
    type_name = fields.get(b"type", b"").decode(errors="replace")
    type_name = type_name or events_pb2.OrderEventType.Name(payload.event_type)
    try:
        kind = OrderEventKind(type_name)
    except ValueError:
        kind = OrderEventKind.OTHER
    order = payload.order
    lines = tuple(
        OrderLine(
            title=item.title or item.product_id,
            quantity=int(item.quantity),
            seller_id=_uuid(item.seller_id),
            line_total=_money(item.line_total) or Money(0, order.total.currency_code or "USD"),
        )
        for item in order.items
    )
    return OrderNotice(
        event_id=event_id,
        kind=kind,
        order_id=order.order_id,
        buyer_id=_uuid(order.buyer_id),
        lines=lines,
        total=_money(order.total),
        refund_amount=_money(payload.refund_amount) if payload.HasField("refund_amount") else None,
    )
