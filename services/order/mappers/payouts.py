"""Payout API requests to commands (shape checks only) and ledger, balance and payouts to protos."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta

from google.protobuf.timestamp_pb2 import Timestamp
from marketplace.order.v1 import payout_pb2, payout_service_pb2

from services.common.errors import FieldViolation, InvalidArgument
from services.common.identity import Caller
from services.common.pagination import clamp_page_size, decode_page_token, encode_page_token
from services.common.proto_money import money_to_proto
from services.order.domain.ledger import EntryKind, LedgerEntry
from services.order.domain.payouts import (
    EVERY_SELLER,
    ME,
    GetSellerBalance,
    ListLedgerEntries,
    ListPayouts,
    PageCursor,
    Payout,
    PayoutRun,
    RunPayouts,
)
from services.order.mappers.requests import order_caller
from services.order.service_layer.payouts import SellerBalance

DEFAULT_LEDGER_PAGE = 50
MAX_LEDGER_PAGE = 200
DEFAULT_PAYOUT_PAGE = 20
MAX_PAYOUT_PAGE = 100
# A seller id is a user id: letters, digits, "-" and "_", at most 128 characters.
_SELLER_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
_KINDS = {
    EntryKind.SALE: payout_pb2.LEDGER_ENTRY_KIND_SALE,
    EntryKind.COMMISSION: payout_pb2.LEDGER_ENTRY_KIND_COMMISSION,
    EntryKind.REFUND: payout_pb2.LEDGER_ENTRY_KIND_REFUND,
    EntryKind.COMMISSION_REFUND: payout_pb2.LEDGER_ENTRY_KIND_COMMISSION_REFUND,
    EntryKind.PAYOUT: payout_pb2.LEDGER_ENTRY_KIND_PAYOUT,
}


def _seller_id(value: str, *, every: bool = False) -> str:
    """The seller a request names: "me", a user id, or "-" where every seller is allowed."""
    seller_id = value.strip()
    if seller_id == ME or (every and seller_id == EVERY_SELLER) or _SELLER_ID.match(seller_id):
        return seller_id
    described = '"me", "-" or a seller id' if every else '"me" or a seller id'
    raise InvalidArgument([FieldViolation("seller_id", f"must be {described}")])


def _cursor(token: str, seller_id: str) -> PageCursor | None:
    """The cursor a page token holds; one made for another seller is refused."""
    position = decode_page_token(token)
    if position is None:
        return None
    try:
        cursor = PageCursor(datetime.fromisoformat(position["t"]), uuid.UUID(position["i"]))
        same = position.get("s") == seller_id
    except (KeyError, TypeError, ValueError):
        same = False
    if not same:
        raise InvalidArgument(
            [FieldViolation("page_token", "does not belong to this seller's list; start over")]
        )
    return cursor


def page_token(seller_id: str, cursor: PageCursor | None) -> str:
    """The opaque token of the page after `cursor`; empty on the last page."""
    if cursor is None:
        return ""
    return encode_page_token(
        {"t": cursor.created_at.isoformat(), "i": str(cursor.row_id), "s": seller_id}
    )


def get_balance_command(
    request: payout_service_pb2.GetSellerBalanceRequest, caller: Caller
) -> GetSellerBalance:
    """Validate a GetSellerBalanceRequest."""
    return GetSellerBalance(_seller_id(request.seller_id), order_caller(caller))


def list_ledger_command(
    request: payout_service_pb2.ListLedgerEntriesRequest, caller: Caller
) -> ListLedgerEntries:
    """Validate a ListLedgerEntriesRequest and unwrap its page token."""
    seller_id = _seller_id(request.seller_id)
    size = clamp_page_size(request.page_size, default=DEFAULT_LEDGER_PAGE, maximum=MAX_LEDGER_PAGE)
    return ListLedgerEntries(
        seller_id, order_caller(caller), size, _cursor(request.page_token, seller_id)
    )


def list_payouts_command(
    request: payout_service_pb2.ListPayoutsRequest, caller: Caller
) -> ListPayouts:
    """Validate a ListPayoutsRequest and unwrap its page token."""
    seller_id = _seller_id(request.seller_id, every=True)
    size = clamp_page_size(request.page_size, default=DEFAULT_PAYOUT_PAGE, maximum=MAX_PAYOUT_PAGE)
    return ListPayouts(
        seller_id, order_caller(caller), size, _cursor(request.page_token, seller_id)
    )


def run_payouts_command(
    request: payout_service_pb2.RunPayoutsRequest, caller: Caller
) -> RunPayouts:
    """A RunPayoutsRequest has no fields to check."""
    return RunPayouts(order_caller(caller))


def balance_to_proto(balance: SellerBalance) -> payout_pb2.SellerBalance:
    """The SellerBalance resource, one CurrencyBalance per currency code in order."""
    return payout_pb2.SellerBalance(
        seller_id=balance.seller_id,
        balances=[
            payout_pb2.CurrencyBalance(
                available=money_to_proto(b.available), pending=money_to_proto(b.pending)
            )
            for _, b in sorted(balance.balances.items())
        ],
        hold_seconds=int(balance.hold.total_seconds()),
    )


def entry_to_proto(entry: LedgerEntry, hold: timedelta) -> payout_pb2.LedgerEntry:
    """The LedgerEntry resource of an entry."""
    return payout_pb2.LedgerEntry(
        entry_id=str(entry.entry_id),
        seller_id=entry.seller_id,
        kind=_KINDS[entry.kind],
        amount=money_to_proto(entry.amount),
        order_id=str(entry.order_id) if entry.order_id else "",
        payout_id=str(entry.payout_id) if entry.payout_id else "",
        create_time=_timestamp(entry.created_at),
        available_time=_timestamp(entry.available_at(hold)),
    )


def payout_to_proto(payout: Payout) -> payout_pb2.Payout:
    """The Payout resource of a payout."""
    return payout_pb2.Payout(
        name=f"payouts/{payout.payout_id}",
        payout_id=str(payout.payout_id),
        seller_id=payout.seller_id,
        amount=money_to_proto(payout.amount),
        run_id=str(payout.run_id),
        settled_before=_timestamp(payout.settled_before),
        create_time=_timestamp(payout.created_at),
    )


def run_to_proto(run: PayoutRun) -> payout_service_pb2.RunPayoutsResponse:
    """The RunPayoutsResponse of a run."""
    return payout_service_pb2.RunPayoutsResponse(
        run_id=str(run.run_id),
        settled_before=_timestamp(run.settled_before),
        payouts=[payout_to_proto(p) for p in run.payouts],
    )


def _timestamp(at: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(at)
    return stamp
