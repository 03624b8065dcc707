"""Return API requests to commands (shape checks only) and returns to their proto resource."""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from marketplace.order.v1 import return_pb2, return_service_pb2

from services.common.errors import FieldViolation, InvalidArgument, Violations
from services.common.identity import Caller
from services.common.pagination import clamp_page_size, decode_page_token, encode_page_token
from services.common.proto_money import money_to_proto
from services.order.domain.returns import (
    CreateReturn,
    DecideReturn,
    GetReturn,
    ListReturns,
    ListSellerReturns,
    ReceiveReturn,
    RequestedLine,
    Return,
    ReturnCursor,
    ReturnState,
)
from services.order.mappers.requests import (
    MAX_ITEMS,
    MAX_QUANTITY,
    buyer_id,
    checked_idempotency_key,
    order_caller,
    parse_order_id,
)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
MAX_REASON = 500
_STATES = {
    ReturnState.REQUESTED: return_pb2.RETURN_STATE_REQUESTED,
    ReturnState.APPROVED: return_pb2.RETURN_STATE_APPROVED,
    ReturnState.REJECTED: return_pb2.RETURN_STATE_REJECTED,
    ReturnState.RECEIVED: return_pb2.RETURN_STATE_RECEIVED,
    ReturnState.REFUNDED: return_pb2.RETURN_STATE_REFUNDED,
}


def parse_return_id(value: str) -> uuid.UUID:
    """A return id from a request, or INVALID_ARGUMENT."""
    try:
        return uuid.UUID(value)
    except ValueError:
        raise InvalidArgument(
            [FieldViolation("return_id", "must be a return id (a UUID)")]
        ) from None


def create_return_command(
    request: return_service_pb2.CreateReturnRequest, caller: Caller, idempotency_key: str | None
) -> CreateReturn:
    """Validate a CreateReturnRequest; every invalid field is reported at once."""
    violations = Violations()
    key = checked_idempotency_key(request.request_id, idempotency_key, violations, "return")
    order_id: uuid.UUID | None = None
    try:
        order_id = parse_order_id(request.order_id)
    except InvalidArgument:
        violations.add("order_id", "must be an order id (a UUID)")
    wanted = request.order_return
    violations.check(
        1 <= len(wanted.items) <= MAX_ITEMS,
        "order_return.items",
        f"must hold 1 to {MAX_ITEMS} lines",
    )
    seen: set[str] = set()
    for index, item in enumerate(wanted.items):
        path = f"order_return.items[{index}]"
        product_id = item.product_id.strip()
        violations.check(
            0 < len(product_id) <= 128, f"{path}.product_id", "is required, at most 128 characters"
        )
        violations.check(product_id not in seen, f"{path}.product_id", "appears more than once")
        seen.add(product_id)
        violations.check(
            1 <= item.quantity <= MAX_QUANTITY, f"{path}.quantity", f"must be 1 to {MAX_QUANTITY}"
        )
    reason = wanted.reason.strip()
    violations.check(
        0 < len(reason) <= MAX_REASON,
        "order_return.reason",
        f"is required, at most {MAX_REASON} characters",
    )
    violations.raise_if_any()
    assert order_id is not None
    buyer_id(caller)  # returns are kept under the buyer's uuid
    content = return_service_pb2.CreateReturnRequest()
    content.CopyFrom(request)
    content.ClearField("request_id")
    fingerprint = hashlib.sha256(content.SerializeToString(deterministic=True)).digest()
    return CreateReturn(
        order_id=order_id,
        caller=order_caller(caller),
        lines=tuple(RequestedLine(i.product_id.strip(), i.quantity) for i in wanted.items),
        reason=reason,
        idempotency_key=key,
        request_fingerprint=fingerprint,
    )


def list_returns_command(
    request: return_service_pb2.ListReturnsRequest, caller: Caller
) -> ListReturns:
    """Validate a ListReturnsRequest and unwrap its page token."""
    order_id = parse_order_id(request.order_id)
    page_size = clamp_page_size(request.page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
    position = decode_page_token(request.page_token)
    cursor = None
    if position is not None:
        try:
            cursor = ReturnCursor(datetime.fromisoformat(position["t"]), uuid.UUID(position["i"]))
            same_order = position.get("o") == str(order_id)
        except (KeyError, TypeError, ValueError):
            same_order = False
        if cursor is None or not same_order:
            raise InvalidArgument(
                [FieldViolation("page_token", "does not belong to this query; start over")]
            )
    return ListReturns(order_id, order_caller(caller), page_size, cursor)


def page_token(order_id: uuid.UUID, cursor: ReturnCursor | None) -> str:
    """The opaque token of the page after `cursor`; empty on the last page."""
    if cursor is None:
        return ""
    return encode_page_token(
        {"t": cursor.created_at.isoformat(), "i": str(cursor.return_id), "o": str(order_id)}
    )


_STATE_OF_PROTO = {value: state for state, value in _STATES.items()}


def list_seller_returns_command(
    request: return_service_pb2.ListSellerReturnsRequest, caller: Caller
) -> ListSellerReturns:
    """Validate a ListSellerReturnsRequest and unwrap its page token, bound to the query."""
    violations = Violations()
    seller_id = request.seller_id.strip()
    violations.check(0 < len(seller_id) <= 64, "seller_id", 'must be "me" or a seller\'s user id')
    states: set[ReturnState] = set()
    for value in request.states:
        state = _STATE_OF_PROTO.get(value)
        if state is None:
            violations.add("states", "must name return states, not RETURN_STATE_UNSPECIFIED")
            break
        states.add(state)
    ordered = tuple(sorted(states))
    violations.check(request.page_size >= 0, "page_size", "must not be negative")
    query = [seller_id, [state.value for state in ordered]]
    cursor = None
    position = decode_page_token(request.page_token)
    if position is not None:
        try:
            cursor = ReturnCursor(datetime.fromisoformat(position["t"]), uuid.UUID(position["i"]))
            same_query = position.get("q") == query
        except (KeyError, TypeError, ValueError):
            same_query = False
        if cursor is None or not same_query:
            violations.add("page_token", "does not belong to this seller's list and states")
    violations.raise_if_any()
    page_size = clamp_page_size(request.page_size, default=DEFAULT_PAGE_SIZE, maximum=MAX_PAGE_SIZE)
    return ListSellerReturns(seller_id, order_caller(caller), ordered, page_size, cursor)


def seller_page_token(command: ListSellerReturns, cursor: ReturnCursor | None) -> str:
    """The opaque token of the page after `cursor`, bound to the command's query."""
    if cursor is None:
        return ""
    query = [command.seller_id, [state.value for state in command.states]]
    return encode_page_token(
        {"t": cursor.created_at.isoformat(), "i": str(cursor.return_id), "q": query}
    )


def get_return_command(request: return_service_pb2.GetReturnRequest, caller: Caller) -> GetReturn:
    """Validate a GetReturnRequest."""
    return GetReturn(parse_return_id(request.return_id), order_caller(caller))


def approve_return_command(
    request: return_service_pb2.ApproveReturnRequest, caller: Caller
) -> DecideReturn:
    """Validate an ApproveReturnRequest; its note is optional."""
    violations = Violations()
    reason = request.reason.strip()
    violations.check(
        len(reason) <= MAX_REASON, "reason", f"must be at most {MAX_REASON} characters"
    )
    return_id = _return_id(request.return_id, violations)
    violations.raise_if_any()
    assert return_id is not None
    return DecideReturn(return_id, order_caller(caller), approve=True, reason=reason)


def reject_return_command(
    request: return_service_pb2.RejectReturnRequest, caller: Caller
) -> DecideReturn:
    """Validate a RejectReturnRequest; the buyer is owed a reason."""
    violations = Violations()
    reason = request.reason.strip()
    violations.check(
        0 < len(reason) <= MAX_REASON, "reason", f"is required, at most {MAX_REASON} characters"
    )
    return_id = _return_id(request.return_id, violations)
    violations.raise_if_any()
    assert return_id is not None
    return DecideReturn(return_id, order_caller(caller), approve=False, reason=reason)


def receive_return_command(
    request: return_service_pb2.ReceiveReturnRequest, caller: Caller
) -> ReceiveReturn:
    """Validate a ReceiveReturnRequest."""
    return ReceiveReturn(parse_return_id(request.return_id), order_caller(caller))


def _return_id(value: str, violations: Violations) -> uuid.UUID | None:
    try:
        return parse_return_id(value)
    except InvalidArgument:
        violations.add("return_id", "must be a return id (a UUID)")
        return None


def return_to_proto(item: Return) -> return_pb2.Return:
    """The Return resource of a return."""
    message = return_pb2.Return(
        name=f"returns/{item.return_id}",
        return_id=str(item.return_id),
        order_id=str(item.order_id),
        buyer_id=str(item.buyer_id),
        seller_id=item.seller_id,
        items=[
            return_pb2.ReturnItem(
                product_id=line.product_id,
                quantity=line.quantity,
                title=line.title,
                unit_price=money_to_proto(line.unit_price),
            )
            for line in item.lines
        ],
        reason=item.reason,
        state=_STATES[item.state],
        decision_reason=item.decision_reason,
        items_total=money_to_proto(item.items_total),
        refund_failure=item.refund_failure,
        create_time=_timestamp(item.created_at),
        update_time=_timestamp(item.updated_at),
    )
    if item.refund_amount is not None:
        message.refund_amount.CopyFrom(money_to_proto(item.refund_amount))
    for field, at in (
        ("decide_time", item.decided_at),
        ("receive_time", item.received_at),
        ("refund_time", item.refunded_at),
    ):
        if at is not None:
            getattr(message, field).CopyFrom(_timestamp(at))
    return message


def _timestamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp
