"""CreateOrder request validation and the stored-response codec."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from marketplace.order.v1 import order_pb2, order_service_pb2

from services.common.errors import InvalidArgument
from services.common.identity import Caller
from services.common.limits import PHONE_NUMBER_MAX, RECIPIENT_NAME_MAX
from services.common.money import Money
from services.order.domain.model import Order, OrderItem, ShippingAddress
from services.order.domain.status import PaymentStatus
from services.order.mappers import orders, requests
from services.user.domain.addresses import AddressFields, address_violations

CALLER = Caller(user_id=str(uuid.uuid4()))


def request(**overrides: object) -> order_service_pb2.CreateOrderRequest:
    fields: dict[str, object] = {
        "items": [order_pb2.OrderItem(product_id="p1", quantity=2)],
        "shipping_address": order_pb2.ShippingAddress(
            recipient_name="Ada", line1="1 Main St", city="Berlin", country_code="DE"
        ),
        "payment_method_token": "tok_visa",
    }
    fields.update(overrides)
    return order_service_pb2.CreateOrderRequest(**fields)  # type: ignore[arg-type]


def violated_fields(error: InvalidArgument) -> set[str]:
    return {v.field for v in error.violations}


def test_a_valid_request_becomes_a_command() -> None:
    command = requests.place_order_command(request(), CALLER, "key-1")
    assert command.buyer_id == uuid.UUID(CALLER.user_id)
    assert command.lines[0].product_id == "p1"
    assert command.shipping_address is not None
    assert command.shipping_address.country_code == "DE"
    assert len(command.request_fingerprint) == 32


def test_the_fingerprint_follows_the_body() -> None:
    first = requests.place_order_command(request(), CALLER, "k")
    same = requests.place_order_command(request(), CALLER, "k")
    other = requests.place_order_command(request(payment_method_token="tok_other"), CALLER, "k")
    assert first.request_fingerprint == same.request_fingerprint
    assert first.request_fingerprint != other.request_fingerprint


@pytest.mark.parametrize("key", [None, "", "x" * 256, "has space", "ümlaut"])
def test_the_idempotency_key_is_required_and_bounded(key: str | None) -> None:
    with pytest.raises(InvalidArgument) as raised:
        requests.place_order_command(request(), CALLER, key)
    assert violated_fields(raised.value) == {"idempotency-key"}


def test_every_invalid_field_is_reported_at_once() -> None:
    bad = request(
        items=[
            order_pb2.OrderItem(product_id="p1", quantity=0),
            order_pb2.OrderItem(product_id="p1", quantity=101),
            order_pb2.OrderItem(product_id="", quantity=1),
        ],
        shipping_address=order_pb2.ShippingAddress(
            recipient_name=" ", line1="x" * 201, city="Berlin", country_code="de"
        ),
        payment_method_token="",
    )
    with pytest.raises(InvalidArgument) as raised:
        requests.place_order_command(bad, CALLER, "k")
    assert violated_fields(raised.value) == {
        "items[0].quantity",
        "items[1].product_id",
        "items[1].quantity",
        "items[2].product_id",
        "shipping_address.recipient_name",
        "shipping_address.line1",
        "shipping_address.country_code",
        "payment_method_token",
    }


def test_an_inline_address_has_the_address_book_limits() -> None:
    at_limit = AddressFields(
        recipient_name="r" * RECIPIENT_NAME_MAX,
        line1="1 Main St",
        city="Berlin",
        country_code="DE",
        phone_number="+" + "4" * (PHONE_NUMBER_MAX - 1),
    )
    assert address_violations(at_limit) == []  # the address book takes it ...
    inline = order_pb2.ShippingAddress(
        recipient_name=at_limit.recipient_name,
        line1=at_limit.line1,
        city=at_limit.city,
        country_code=at_limit.country_code,
        phone_number=at_limit.phone_number,
    )
    requests.place_order_command(request(shipping_address=inline), CALLER, "k")  # ... and orders
    too_long = order_pb2.ShippingAddress()
    too_long.CopyFrom(inline)
    too_long.recipient_name += "r"
    too_long.phone_number += "4"
    too_long.country_code = "XX"  # two capitals, but no ISO 3166-1 country
    with pytest.raises(InvalidArgument) as raised:
        requests.place_order_command(request(shipping_address=too_long), CALLER, "k")
    assert violated_fields(raised.value) == {
        "shipping_address.recipient_name",
        "shipping_address.phone_number",
        "shipping_address.country_code",
    }


def test_item_count_is_bounded() -> None:
    many = [order_pb2.OrderItem(product_id=f"p{i}", quantity=1) for i in range(51)]
    for items in ([], many):
        with pytest.raises(InvalidArgument) as raised:
            requests.place_order_command(request(items=items), CALLER, "k")
        assert violated_fields(raised.value) == {"items"}


def test_an_address_book_entry_is_named_by_its_uuid_instead_of_a_full_address() -> None:
    address_id = uuid.uuid4()
    bare = order_service_pb2.CreateOrderRequest(
        items=[order_pb2.OrderItem(product_id="p1", quantity=1)],
        address_id=str(address_id),
        payment_method_token="tok_visa",
    )
    command = requests.place_order_command(bare, CALLER, "k")
    assert (command.address_id, command.shipping_address) == (address_id, None)
    bare.address_id = "home"
    with pytest.raises(InvalidArgument) as not_an_id:
        requests.place_order_command(bare, CALLER, "k")
    assert violated_fields(not_an_id.value) == {"address_id"}
    with pytest.raises(InvalidArgument) as both:
        requests.place_order_command(request(address_id=str(address_id)), CALLER, "k")
    assert violated_fields(both.value) == {"address_id"}
    neither = order_service_pb2.CreateOrderRequest(
        items=[order_pb2.OrderItem(product_id="p1", quantity=1)], payment_method_token="tok_visa"
    )
    with pytest.raises(InvalidArgument) as missing:
        requests.place_order_command(neither, CALLER, "k")
    assert violated_fields(missing.value) == {"shipping_address"}


def test_the_codec_round_trips_an_order() -> None:
    now = datetime(2026, 11, 25, 12, 0, 0, 123456, tzinfo=UTC)
    order = Order.place(
        order_id=uuid.uuid4(),
        buyer_id=uuid.uuid4(),
        items=[OrderItem("p1", "s1", "Lamp", 3, Money(1234, "EUR"))],
        shipping_address=ShippingAddress("Ada", "1 Main St", "Berlin", "DE", postal_code="10115"),
        at=now,
    )
    order.cancel_for_payment(
        status=PaymentStatus.DECLINED, failure_reason="card_declined", gateway_reference="", at=now
    )
    codec = orders.ProtoOrderCodec()
    data = codec.encode(order)
    assert codec.encode(codec.decode(data)) == data
    message = orders.order_to_proto(codec.decode(data))
    assert message.total.units == 37 and message.total.nanos == 20_000_000
    assert message.payment.status == order_pb2.PAYMENT_STATUS_DECLINED
    assert [c.to_status for c in message.status_history] == [
        order_pb2.ORDER_STATUS_PENDING,
        order_pb2.ORDER_STATUS_CANCELLED,
    ]
