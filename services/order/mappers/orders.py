"""Orders and reports between the domain and their protobuf messages, both ways."""

from __future__ import annotations

import uuid
from dataclasses import asdict, fields
from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp
from google.type import date_pb2
from marketplace.order.v1 import order_pb2, order_service_pb2
from marketplace.user.v1 import user_pb2

from services.common.money import Money
from services.common.proto_money import money_to_proto
from services.order.domain.model import (
    Order,
    OrderItem,
    PaymentAttempt,
    ShippingAddress,
    StatusChange,
)
from services.order.domain.pricing import SellerPart
from services.order.domain.status import OrderStatus, PaymentStatus
from services.order.service_layer.reports import SalesReport

# The order's own address message, or the user service's address book entry: same fields.
type AddressMessage = order_pb2.ShippingAddress | user_pb2.Address


def status_to_proto(status: OrderStatus) -> order_pb2.OrderStatus.ValueType:
    """The wire enum of an order status."""
    return order_pb2.OrderStatus.Value(f"ORDER_STATUS_{status.name}")


def status_from_proto(value: int) -> OrderStatus:
    """The domain status of a wire enum value; ValueError for unknown or unspecified."""
    name = order_pb2.OrderStatus.Name(order_pb2.OrderStatus.ValueType(value))
    try:
        return OrderStatus[name.removeprefix("ORDER_STATUS_")]
    except KeyError:
        raise ValueError(f"{name} is not an order status") from None


def _timestamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp


def order_to_proto(order: Order) -> order_pb2.Order:
    """The wire form of an order, with its payment summary and timeline."""
    message = order_pb2.Order(
        order_id=str(order.order_id),
        buyer_id=str(order.buyer_id),
        items=[
            order_pb2.OrderItem(
                product_id=item.product_id,
                quantity=item.quantity,
                seller_id=item.seller_id,
                title=item.title,
                unit_price=money_to_proto(item.unit_price),
                line_total=money_to_proto(item.line_total),
                carrier=item.carrier,
                tracking_number=item.tracking_number,
                ship_time=_timestamp(item.shipped_at) if item.shipped_at else None,
            )
            for item in order.items
        ],
        shipping_address=address_to_proto(order.shipping_address),
        status=status_to_proto(order.status),
        subtotal=money_to_proto(order.subtotal),
        total=money_to_proto(order.total),
        shipping_total=money_to_proto(order.sums.shipping),
        tax_total=money_to_proto(order.sums.tax),
        parts=[
            order_pb2.SellerPart(
                seller_id=part.seller_id,
                subtotal=money_to_proto(part.subtotal),
                shipping_total=money_to_proto(part.shipping),
                tax_total=money_to_proto(part.tax),
                total=money_to_proto(part.total),
            )
            for part in order.seller_parts
        ],
        status_history=[
            order_pb2.StatusChange(
                from_status=(
                    status_to_proto(c.from_status)
                    if c.from_status
                    else order_pb2.ORDER_STATUS_UNSPECIFIED
                ),
                to_status=status_to_proto(c.to_status),
                actor=c.actor,
                reason=c.reason,
                change_time=_timestamp(c.at),
            )
            for c in order.history
        ],
        create_time=_timestamp(order.created_at),
        update_time=_timestamp(order.updated_at),
    )
    payment = order.payment
    if payment is not None:
        message.payment.CopyFrom(
            order_pb2.Payment(
                status=order_pb2.PaymentStatus.Value(f"PAYMENT_STATUS_{payment.status.name}"),
                amount=money_to_proto(payment.amount),
                refunded_amount=money_to_proto(
                    order.refunded
                    if order.refunds
                    else (payment.refunded or Money(0, payment.amount.currency))
                ),
                gateway_reference=payment.gateway_reference,
                failure_reason=payment.failure_reason,
            )
        )
    return message


def order_from_proto(message: order_pb2.Order) -> Order:
    """Rebuild an order from the wire form order_to_proto wrote (a stored response)."""
    currency = message.total.currency_code
    history = [
        StatusChange(
            from_status=status_from_proto(c.from_status) if c.from_status else None,
            to_status=status_from_proto(c.to_status),
            actor=c.actor,
            reason=c.reason,
            at=c.change_time.ToDatetime(tzinfo=UTC),
        )
        for c in message.status_history
    ]
    payments = []
    if message.HasField("payment"):
        p = message.payment
        payments.append(
            PaymentAttempt(
                payment_id=uuid.UUID(int=0),  # not on the wire; a replayed response needs none
                status=PaymentStatus[
                    order_pb2.PaymentStatus.Name(p.status).removeprefix("PAYMENT_STATUS_")
                ],
                amount=_money(p.amount.units, p.amount.nanos, currency),
                gateway_reference=p.gateway_reference,
                failure_reason=p.failure_reason,
                at=message.update_time.ToDatetime(tzinfo=UTC),
                refunded=_money(p.refunded_amount.units, p.refunded_amount.nanos, currency),
            )
        )
    return Order(
        order_id=uuid.UUID(message.order_id),
        buyer_id=uuid.UUID(message.buyer_id),
        items=[
            OrderItem(
                product_id=i.product_id,
                seller_id=i.seller_id,
                title=i.title,
                quantity=i.quantity,
                unit_price=_money(i.unit_price.units, i.unit_price.nanos, currency),
            )
            for i in message.items
        ],
        shipping_address=address_from_message(message.shipping_address),
        status=status_from_proto(message.status),
        created_at=message.create_time.ToDatetime(tzinfo=UTC),
        updated_at=message.update_time.ToDatetime(tzinfo=UTC),
        history=history,
        payments=payments,
        parts=[
            SellerPart(
                seller_id=p.seller_id,
                subtotal=_money(p.subtotal.units, p.subtotal.nanos, currency),
                shipping=_money(p.shipping_total.units, p.shipping_total.nanos, currency),
                tax=_money(p.tax_total.units, p.tax_total.nanos, currency),
            )
            for p in message.parts
        ],
    )


def address_to_proto(address: ShippingAddress) -> order_pb2.ShippingAddress:
    """The wire form of a shipping address."""
    return order_pb2.ShippingAddress(**asdict(address))


def address_from_message(message: AddressMessage) -> ShippingAddress:
    """The shipping address a message with the address fields holds, copied as it is."""
    return ShippingAddress(**{f.name: getattr(message, f.name) for f in fields(ShippingAddress)})


def _money(units: int, nanos: int, currency: str) -> Money:
    return Money(units * 100 + nanos // 10_000_000, currency)


class ProtoOrderCodec:
    """Stores an idempotent response as the serialized Order message."""

    def encode(self, order: Order) -> bytes:
        """The serialized Order."""
        return bytes(order_to_proto(order).SerializeToString(deterministic=True))

    def decode(self, data: bytes) -> Order:
        """The order a stored response holds."""
        return order_from_proto(order_pb2.Order.FromString(data))


def sales_report_to_proto(report: SalesReport) -> order_service_pb2.SalesReport:
    """The wire form of a sales report."""
    message = order_service_pb2.SalesReport(
        rows=[
            order_service_pb2.SalesReportRow(
                date=(
                    date_pb2.Date(year=r.day.year, month=r.day.month, day=r.day.day)
                    if r.day
                    else None
                ),
                seller_id=r.seller_id,
                order_count=r.order_count,
                total=money_to_proto(r.total),
                shipping_total=money_to_proto(r.shipping) if r.shipping else None,
                tax_total=money_to_proto(r.tax) if r.tax else None,
            )
            for r in report.rows
        ]
    )
    if report.total is not None:
        message.total.CopyFrom(money_to_proto(report.total))
    return message
