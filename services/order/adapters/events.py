"""Order events as the outbox stores them: one versioned OrderEvent per status change."""

from __future__ import annotations

import uuid

from google.protobuf.timestamp_pb2 import Timestamp
from marketplace.order.v1 import events_pb2, order_pb2

from services.common.proto_money import money_to_proto
from services.order.domain.model import Order, StatusChange
from services.order.domain.status import OrderStatus
from services.order.mappers.orders import order_to_proto, status_to_proto

# The stream the product service consumes; the contract is shared, so it is versioned.
ORDER_EVENTS_STREAM = "marketplace.order.events.v1"

_EVENT_TYPES: dict[OrderStatus, events_pb2.OrderEventType.ValueType] = {
    OrderStatus.PENDING: events_pb2.ORDER_EVENT_TYPE_PLACED,
    OrderStatus.PAID: events_pb2.ORDER_EVENT_TYPE_PAID,
    OrderStatus.FULFILLING: events_pb2.ORDER_EVENT_TYPE_FULFILLING,
    OrderStatus.SHIPPED: events_pb2.ORDER_EVENT_TYPE_SHIPPED,
    OrderStatus.DELIVERED: events_pb2.ORDER_EVENT_TYPE_DELIVERED,
    OrderStatus.CANCELLED: events_pb2.ORDER_EVENT_TYPE_CANCELLED,
    OrderStatus.REFUNDED: events_pb2.ORDER_EVENT_TYPE_REFUNDED,
    OrderStatus.PARTIALLY_REFUNDED: events_pb2.ORDER_EVENT_TYPE_REFUNDED,
}


def event_rows(order: Order) -> list[tuple[uuid.UUID, uuid.UUID, str, bytes]]:
    """One outbox row per unsaved status change: (event_id, order_id, type name, payload)."""
    snapshot = order_to_proto(order)
    rows = []
    for change in order.unsaved_history:
        event = _event(order, change, snapshot)
        name = events_pb2.OrderEventType.Name(event.event_type)
        rows.append((uuid.UUID(event.event_id), order.order_id, name, event.SerializeToString()))
    return rows


def _event(order: Order, change: StatusChange, snapshot: order_pb2.Order) -> events_pb2.OrderEvent:
    stamp = Timestamp()
    stamp.FromDatetime(change.at)
    event = events_pb2.OrderEvent(
        event_id=str(uuid.uuid4()),
        event_type=_EVENT_TYPES[change.to_status],
        occur_time=stamp,
    )
    event.order.CopyFrom(snapshot)
    if change.from_status is not None:
        event.previous_status = status_to_proto(change.from_status)
    if change.to_status is OrderStatus.CANCELLED:
        event.restock_required = order.restock_required
    refunded = change.to_status in (OrderStatus.REFUNDED, OrderStatus.PARTIALLY_REFUNDED)
    if refunded and order.unsaved_refunds:
        event.refund_amount.CopyFrom(money_to_proto(order.unsaved_refunds[-1].amount))
    return event
