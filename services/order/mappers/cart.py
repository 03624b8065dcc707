"""Translation between the cart API's protobuf messages and the domain; shape checks only."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from marketplace.order.v1 import cart_pb2, cart_service_pb2

from services.common.errors import Violations
from services.common.identity import Caller
from services.common.proto_money import money_to_proto
from services.order.domain.cart import (
    MAX_LINES,
    MAX_QUANTITY,
    AddCartItem,
    Availability,
    CartView,
    CheckoutCart,
    GetCart,
    PricedLine,
    RemoveCartItem,
    UpdateCartItem,
)
from services.order.mappers import requests as mappers

_PRODUCT_ID_MAX = 128
# Cart checkouts share the key space of CreateOrder; the prefix keeps their fingerprints
# apart, so a key used for one never replays as the other.
_FINGERPRINT_PREFIX = b"cart-checkout:"

_AVAILABILITY = {
    Availability.AVAILABLE: cart_pb2.CART_ITEM_AVAILABILITY_AVAILABLE,
    Availability.INSUFFICIENT_STOCK: cart_pb2.CART_ITEM_AVAILABILITY_INSUFFICIENT_STOCK,
    Availability.UNAVAILABLE: cart_pb2.CART_ITEM_AVAILABILITY_UNAVAILABLE,
    Availability.UNKNOWN: cart_pb2.CART_ITEM_AVAILABILITY_UNKNOWN,
}


def get_cart_command(request: cart_service_pb2.GetCartRequest, caller: Caller) -> GetCart:
    """The caller's cart."""
    return GetCart(mappers.buyer_id(caller))


def add_cart_item_command(
    request: cart_service_pb2.AddCartItemRequest, caller: Caller
) -> AddCartItem:
    """Validate an AddCartItemRequest."""
    violations = Violations()
    product_id = _product_id(request.product_id, violations)
    _quantity(request.quantity, violations)
    violations.raise_if_any()
    return AddCartItem(mappers.buyer_id(caller), product_id, request.quantity)


def update_cart_item_command(
    request: cart_service_pb2.UpdateCartItemRequest, caller: Caller
) -> UpdateCartItem:
    """Validate an UpdateCartItemRequest."""
    violations = Violations()
    product_id = _product_id(request.product_id, violations)
    _quantity(request.quantity, violations, zero_hint=True)
    violations.raise_if_any()
    return UpdateCartItem(mappers.buyer_id(caller), product_id, request.quantity)


def remove_cart_item_command(
    request: cart_service_pb2.RemoveCartItemRequest, caller: Caller
) -> RemoveCartItem:
    """Validate a RemoveCartItemRequest."""
    violations = Violations()
    product_id = _product_id(request.product_id, violations)
    violations.raise_if_any()
    return RemoveCartItem(mappers.buyer_id(caller), product_id)


def checkout_cart_command(
    request: cart_service_pb2.CheckoutCartRequest, caller: Caller, idempotency_key: str | None
) -> CheckoutCart:
    """Validate a CheckoutCartRequest; every invalid field is reported at once."""
    violations = Violations()
    key = mappers.checked_idempotency_key(
        request.request_id, idempotency_key, violations, "checkout"
    )
    has_address = request.HasField("shipping_address")
    if request.address_id and has_address:
        violations.add("address_id", "set either address_id or shipping_address, not both")
    elif not request.address_id and not has_address:
        violations.add(
            "shipping_address", "is required unless address_id names an address book entry"
        )
    if has_address:
        mappers.check_address(request.shipping_address, violations)
    token = request.payment_method_token
    violations.check(
        0 < len(token) <= 255, "payment_method_token", "is required, at most 255 characters"
    )
    address_id: uuid.UUID | None = None
    if request.address_id:
        try:
            address_id = uuid.UUID(request.address_id)
        except ValueError:
            violations.add("address_id", "must be the id of an address book entry (a UUID)")
    violations.check(
        len(request.product_ids) <= MAX_LINES,
        "product_ids",
        f"must name at most {MAX_LINES} products",
    )
    product_ids = tuple(
        _product_id(value, violations, f"product_ids[{index}]")
        for index, value in enumerate(request.product_ids)
    )
    violations.raise_if_any()
    return CheckoutCart(
        buyer_id=mappers.buyer_id(caller),
        idempotency_key=key,
        request_fingerprint=_fingerprint(request),
        product_ids=product_ids,
        shipping_address=mappers.address_from_request(request.shipping_address)
        if has_address
        else None,
        address_id=address_id,
        payment_method_token=token,
    )


def cart_to_proto(view: CartView) -> cart_pb2.Cart:
    """The cart as the API shows it."""
    cart = view.cart
    message = cart_pb2.Cart(
        name=cart.name,
        items=[_item(priced) for priced in view.lines],
        total_quantity=view.total_quantity,
        ready_for_checkout=view.ready_for_checkout,
        checkout_in_progress=cart.hold is not None,
    )
    if (subtotal := view.subtotal) is not None:
        message.subtotal.CopyFrom(money_to_proto(subtotal))
    if (discounts := view.discount_total) is not None:
        message.discount_total.CopyFrom(money_to_proto(discounts))
    if cart.updated_at is not None:
        message.update_time.CopyFrom(_timestamp(cart.updated_at))
    return message


def _item(priced: PricedLine) -> cart_pb2.CartItem:
    line = priced.line
    item = cart_pb2.CartItem(
        product_id=line.product_id,
        quantity=line.quantity,
        seller_id=line.seller_id,
        title=line.title,
        added_unit_price=money_to_proto(line.added_unit_price),
        price_changed=priced.price_changed,
        line_total=money_to_proto(priced.line_total),
        availability=_AVAILABILITY[priced.availability],
        stock_available=priced.stock_available,
        add_time=_timestamp(line.added_at),
        update_time=_timestamp(line.updated_at),
    )
    if priced.list_price is not None:
        item.list_price.CopyFrom(money_to_proto(priced.list_price))
    if priced.unit_price is not None:
        item.unit_price.CopyFrom(money_to_proto(priced.unit_price))
    if (discount := priced.unit_discount) is not None:
        item.unit_discount.CopyFrom(money_to_proto(discount))
    return item


def _product_id(value: str, violations: Violations, field: str = "product_id") -> str:
    product_id = value.strip()
    violations.check(
        0 < len(product_id) <= _PRODUCT_ID_MAX,
        field,
        f"is required, at most {_PRODUCT_ID_MAX} characters",
    )
    return product_id


def _quantity(value: int, violations: Violations, *, zero_hint: bool = False) -> None:
    hint = "; remove the line with RemoveCartItem" if zero_hint and value == 0 else ""
    violations.check(
        1 <= value <= MAX_QUANTITY, "quantity", f"must be between 1 and {MAX_QUANTITY}{hint}"
    )


def _fingerprint(request: cart_service_pb2.CheckoutCartRequest) -> bytes:
    """A digest of what the checkout asks for; its idempotency key is not part of it."""
    content = cart_service_pb2.CheckoutCartRequest()
    content.CopyFrom(request)
    content.ClearField("request_id")
    return hashlib.sha256(
        _FINGERPRINT_PREFIX + content.SerializeToString(deterministic=True)
    ).digest()


def _timestamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp
