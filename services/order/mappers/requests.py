"""Order API requests to commands, checking their shape only (presence, lengths, enums, ids)."""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import replace
from datetime import date, datetime

from google.type import date_pb2
from marketplace.order.v1 import order_pb2, order_service_pb2

from services.common.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    Violations,
)
from services.common.identity import Caller, Role
from services.common.limits import (
    ADDRESS_TEXT_FIELDS,
    COUNTRY_CODES,
    PHONE_NUMBER_MAX,
    POSTAL_CODE_MAX,
)
from services.common.metadata import IDEMPOTENCY_KEY_HEADER
from services.common.money import Money
from services.common.pagination import clamp_page_size, decode_page_token, encode_page_token
from services.common.proto_money import money_from_proto
from services.order.domain.commands import Caller as OrderCaller
from services.order.domain.commands import (
    CancelOrder,
    GetOrder,
    GetSalesReport,
    ListOrders,
    MarkOrderDelivered,
    OrderCursor,
    PlaceOrder,
    RefundOrder,
    ShipOrderItems,
    WatchOrder,
)
from services.order.domain.model import OrderLine, ShippingAddress
from services.order.domain.reasons import ErrorReason
from services.order.domain.status import OrderStatus
from services.order.mappers.orders import address_from_message, status_from_proto

MAX_ITEMS = 50
MAX_QUANTITY = 100
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_REPORT_DAYS = 366
_PRINTABLE_ASCII = re.compile(r"^[\x21-\x7e]+$")
# field name -> (required, maximum length): the address book's limits (services.common.limits).
_ADDRESS_FIELDS: dict[str, tuple[bool, int]] = {
    **ADDRESS_TEXT_FIELDS,
    "postal_code": (False, POSTAL_CODE_MAX),
    "phone_number": (False, PHONE_NUMBER_MAX),
}


def buyer_id(caller: Caller) -> uuid.UUID:
    """The caller's user id as the uuid orders are kept under."""
    try:
        return uuid.UUID(caller.user_id)
    except ValueError:
        raise FailedPrecondition(
            "only marketplace user accounts can hold orders", reason=ErrorReason.BUYER_ID_INVALID
        ) from None


def checked_idempotency_key(
    request_id: str, header: str | None, violations: Violations, unique_per: str
) -> str:
    """The call's idempotency key: the request_id field or the idempotency-key metadata.

    Clients that cannot set headers send the AIP-155 request_id; when both are sent they
    must agree, because two keys for one call cannot both be honoured.
    """
    header = header or ""
    if request_id:
        try:
            uuid.UUID(request_id)
        except ValueError:
            violations.add("request_id", "must be a UUID")
            return ""
        if header and header != request_id:
            violations.add(
                "request_id", f"differs from the {IDEMPOTENCY_KEY_HEADER} metadata; send one"
            )
        return request_id
    violations.check(
        1 <= len(header) <= 255 and bool(_PRINTABLE_ASCII.match(header)),
        IDEMPOTENCY_KEY_HEADER,
        f"send an idempotency-key of 1 to 255 printable ASCII characters (or a request_id), "
        f"unique per {unique_per}",
    )
    return header


def _fingerprint[R: (order_service_pb2.CreateOrderRequest, order_service_pb2.RefundOrderRequest)](
    request: R, prefix: bytes = b""
) -> bytes:
    """A digest of what the request asks for; its idempotency key is not part of it.

    Without a request_id the bytes are those of the whole request, as before the field
    existed, so keys recorded earlier keep matching their retries.
    """
    content = type(request)()
    content.CopyFrom(request)
    content.ClearField("request_id")
    return hashlib.sha256(prefix + content.SerializeToString(deterministic=True)).digest()


def place_order_command(
    request: order_service_pb2.CreateOrderRequest, caller: Caller, idempotency_key: str | None
) -> PlaceOrder:
    """Validate a CreateOrderRequest; every invalid field is reported at once."""
    violations = Violations()
    key = checked_idempotency_key(request.request_id, idempotency_key, violations, "order")
    violations.check(
        1 <= len(request.items) <= MAX_ITEMS, "items", f"must hold 1 to {MAX_ITEMS} lines"
    )
    seen: set[str] = set()
    for index, item in enumerate(request.items):
        path = f"items[{index}]"
        product_id = item.product_id.strip()
        if not product_id or len(product_id) > 128:
            violations.add(f"{path}.product_id", "is required, at most 128 characters")
        elif product_id in seen:
            violations.add(f"{path}.product_id", "appears more than once; merge the lines")
        seen.add(product_id)
        violations.check(
            1 <= item.quantity <= MAX_QUANTITY,
            f"{path}.quantity",
            f"must be between 1 and {MAX_QUANTITY}",
        )
    has_address = request.HasField("shipping_address")
    if request.address_id and has_address:
        violations.add("address_id", "set either address_id or shipping_address, not both")
    elif not request.address_id and not has_address:
        violations.add(
            "shipping_address", "is required unless address_id names an address book entry"
        )
    if has_address:
        check_address(request.shipping_address, violations)
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
    violations.raise_if_any()
    return PlaceOrder(
        buyer_id=buyer_id(caller),
        idempotency_key=key,
        request_fingerprint=_fingerprint(request),
        lines=tuple(OrderLine(i.product_id.strip(), i.quantity) for i in request.items),
        shipping_address=address_from_request(request.shipping_address) if has_address else None,
        address_id=address_id,
        payment_method_token=token,
    )


def address_from_request(address: order_pb2.ShippingAddress) -> ShippingAddress:
    """The domain address of a request's inline shipping address, its text fields trimmed."""
    copied = address_from_message(address)
    return replace(
        copied,
        **{name: getattr(copied, name).strip() for name in _ADDRESS_FIELDS},
    )


def check_address(address: order_pb2.ShippingAddress, violations: Violations) -> None:
    """Note a violation for each missing or too long field of an inline address."""
    for name, (required, maximum) in _ADDRESS_FIELDS.items():
        value = getattr(address, name).strip()
        path = f"shipping_address.{name}"
        if required and not value:
            violations.add(path, "is required")
        elif len(value) > maximum:
            violations.add(path, f"must be at most {maximum} characters")
    violations.check(
        address.country_code in COUNTRY_CODES,
        "shipping_address.country_code",
        "must be an ISO 3166-1 alpha-2 code in capitals, such as DE",
    )


def parse_order_id(value: str, field: str = "order_id") -> uuid.UUID:
    """An order id from a request, or INVALID_ARGUMENT."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument([FieldViolation(field, "must be an order id (a UUID)")]) from None


def order_caller(caller: Caller) -> OrderCaller:
    """The caller as the order rules see them."""
    return OrderCaller(
        user_id=caller.user_id,
        is_admin=caller.is_admin,
        is_seller=Role.SELLER in caller.roles,
    )


def get_order_command(request: order_service_pb2.GetOrderRequest, caller: Caller) -> GetOrder:
    """Validate a GetOrderRequest."""
    return GetOrder(parse_order_id(request.order_id), order_caller(caller))


def watch_order_command(request: order_service_pb2.WatchOrderRequest, caller: Caller) -> WatchOrder:
    """Validate a WatchOrderRequest."""
    return WatchOrder(parse_order_id(request.order_id), order_caller(caller))


def cancel_order_command(
    request: order_service_pb2.CancelOrderRequest, caller: Caller
) -> CancelOrder:
    """Validate a CancelOrderRequest."""
    order_id = parse_order_id(request.order_id)
    if len(request.reason) > 500:
        raise InvalidArgument([FieldViolation("reason", "must be at most 500 characters")])
    return CancelOrder(order_id, order_caller(caller), request.reason.strip())


def ship_order_items_command(
    request: order_service_pb2.ShipOrderItemsRequest, caller: Caller
) -> ShipOrderItems:
    """Validate a ShipOrderItemsRequest."""
    violations = Violations()
    try:
        order_id = parse_order_id(request.order_id)
    except InvalidArgument:
        violations.add("order_id", "must be an order id (a UUID)")
    carrier = request.carrier.strip()
    tracking = request.tracking_number.strip()
    violations.check(0 < len(carrier) <= 64, "carrier", "is required, at most 64 characters")
    violations.check(
        0 < len(tracking) <= 64 and bool(_PRINTABLE_ASCII.match(tracking)),
        "tracking_number",
        "is required: 1 to 64 printable ASCII characters",
    )
    for index, product_id in enumerate(request.product_ids):
        violations.check(
            0 < len(product_id.strip()) <= 128, f"product_ids[{index}]", "must be a product id"
        )
    violations.raise_if_any()
    return ShipOrderItems(
        order_id,
        order_caller(caller),
        frozenset(p.strip() for p in request.product_ids),
        carrier,
        tracking,
    )


def mark_order_delivered_command(
    request: order_service_pb2.MarkOrderDeliveredRequest, caller: Caller
) -> MarkOrderDelivered:
    """Validate a MarkOrderDeliveredRequest."""
    return MarkOrderDelivered(parse_order_id(request.order_id), order_caller(caller))


def refund_order_command(
    request: order_service_pb2.RefundOrderRequest, caller: Caller, idempotency_key: str | None
) -> RefundOrder:
    """Validate a RefundOrderRequest; the idempotency key is required."""
    violations = Violations()
    key = checked_idempotency_key(request.request_id, idempotency_key, violations, "refund")
    try:
        order_id = parse_order_id(request.order_id)
    except InvalidArgument:
        violations.add("order_id", "must be an order id (a UUID)")
    reason = request.reason.strip()
    violations.check(0 < len(reason) <= 500, "reason", "is required, at most 500 characters")
    amount: Money | None = None
    if request.HasField("amount"):
        try:
            amount = money_from_proto(request.amount, "amount")
        except InvalidArgument as invalid:
            for violation in invalid.violations:
                violations.add(violation.field, violation.description)
        else:
            violations.check(amount.minor > 0, "amount", "must be more than zero")
    violations.raise_if_any()
    who = order_caller(caller)
    fingerprint = _fingerprint(request, who.user_id.encode() + b"|")
    return RefundOrder(order_id, who, amount, reason, key, fingerprint)


def sales_report_command(
    request: order_service_pb2.GetSalesReportRequest, caller: Caller
) -> GetSalesReport:
    """Validate a GetSalesReportRequest; who may see which sales is the use case's rule."""
    violations = Violations()
    start = _date(request.start_date, "start_date", violations)
    end = _date(request.end_date, "end_date", violations)
    if start and end:
        violations.check(start <= end, "end_date", "must not be before start_date")
        violations.check(
            (end - start).days <= MAX_REPORT_DAYS,
            "end_date",
            f"must be at most {MAX_REPORT_DAYS} days after start_date",
        )
    violations.check(len(request.seller_id) <= 128, "seller_id", "must be at most 128 characters")
    violations.raise_if_any()
    assert start is not None and end is not None
    by_seller = request.grouping == order_service_pb2.SALES_REPORT_GROUPING_SELLER
    return GetSalesReport(
        order_caller(caller), start, end, by_seller, request.seller_id.strip() or None
    )


def _date(value: date_pb2.Date, field: str, violations: Violations) -> date | None:
    try:
        return date(value.year, value.month, value.day)
    except ValueError:
        violations.add(field, "is required: a full calendar date")
        return None


def list_orders_command(request: order_service_pb2.ListOrdersRequest, caller: Caller) -> ListOrders:
    """Validate a ListOrdersRequest and unwrap its page token."""
    page_size = clamp_page_size(request.page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
    status: OrderStatus | None = None
    if request.status != order_pb2.ORDER_STATUS_UNSPECIFIED:
        try:
            status = status_from_proto(request.status)
        except ValueError:
            raise InvalidArgument([FieldViolation("status", "is not an order status")]) from None
    position = decode_page_token(request.page_token)
    cursor = None
    if position is not None:
        try:
            cursor = OrderCursor(datetime.fromisoformat(position["t"]), uuid.UUID(position["i"]))
            same_filter = position.get("s") == (status.value if status else None)
        except (KeyError, TypeError, ValueError):
            same_filter = False
        if cursor is None or not same_filter:
            raise InvalidArgument(
                [FieldViolation("page_token", "does not belong to this query; start over")]
            )
    who = order_caller(caller)
    if not (who.is_admin or who.is_seller):
        buyer_id(caller)  # buyers' orders are kept under their uuid
    return ListOrders(who, page_size, cursor, status)


def page_token(cursor: OrderCursor | None, status: OrderStatus | None) -> str:
    """The opaque token of the page after `cursor`; empty on the last page."""
    if cursor is None:
        return ""
    return encode_page_token(
        {
            "t": cursor.created_at.isoformat(),
            "i": str(cursor.order_id),
            "s": status.value if status else None,
        }
    )
