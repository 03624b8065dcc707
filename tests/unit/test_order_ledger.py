"""The ledger's rules without I/O: what a capture, refunds and a cancel book to each seller."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from services.common.money import Money
from services.order.domain.ledger import (
    Booked,
    EntryKind,
    LedgerEntry,
    allocate_refunds,
    order_entries,
    seller_sale,
)
from services.order.domain.model import Order, OrderItem, Refund
from tests.fakes.cart import ADDRESS

AT = datetime(2026, 11, 30, 12, tzinfo=UTC)
SELLER_A, SELLER_B = "aaaa", "bbbb"


def paid_order(a_minor: int = 2000, b_minor: int = 1000) -> Order:
    """A captured order: seller A's lines worth `a_minor`, seller B's `b_minor`."""
    order = Order.place(
        order_id=uuid.uuid4(),
        buyer_id=uuid.uuid4(),
        items=[
            OrderItem("p-a", SELLER_A, "Lamp", 1, Money(a_minor, "USD")),
            OrderItem("p-b", SELLER_B, "Shade", 1, Money(b_minor, "USD")),
        ],
        shipping_address=ADDRESS,
        at=AT,
    )
    order.mark_paid(gateway_reference="ch_1", at=AT)
    return order


def refund(order: Order, minor: int, seller_id: str | None) -> Refund:
    made = Refund(
        refund_id=uuid.uuid4(),
        idempotency_key=str(uuid.uuid4()),
        request_fingerprint=b"",
        actor="someone",
        seller_id=seller_id,
        amount=Money(minor, "USD"),
        reason="damaged",
        gateway_reference="ch_1",
        at=AT,
    )
    order.refund(made)
    return made


def sums(entries: list[LedgerEntry]) -> dict[tuple[str, EntryKind], int]:
    totals: dict[tuple[str, EntryKind], int] = {}
    for e in entries:
        totals[(e.seller_id, e.kind)] = totals.get((e.seller_id, e.kind), 0) + e.amount.minor
    return totals


def book(order: Order, bps: int = 1000) -> list[LedgerEntry]:
    """Book the order's capture, then forget it was unsaved, as the repository does."""
    entries = order_entries(order, booked={}, commission_bps=bps)
    order.mark_saved()
    return entries


def booked_of(entries: list[LedgerEntry]) -> dict[str, Booked]:
    """What the ledger holds for the order once `entries` are written."""
    totals = sums(entries)
    return {
        s: Booked(totals[(s, EntryKind.SALE)], -totals.get((s, EntryKind.COMMISSION), 0))
        for s in (SELLER_A, SELLER_B)
    }


def test_a_capture_credits_each_seller_their_part_and_debits_the_commission() -> None:
    order = paid_order()
    entries = book(order, bps=1250)
    assert sums(entries) == {
        (SELLER_A, EntryKind.SALE): 2000,
        (SELLER_A, EntryKind.COMMISSION): -250,
        (SELLER_B, EntryKind.SALE): 1000,
        (SELLER_B, EntryKind.COMMISSION): -125,
    }
    assert seller_sale(order, SELLER_A) == Money(2000, "USD")
    # One event books each seller once per kind: the unique key of the table.
    assert len({(e.source_id, e.seller_id, e.kind) for e in entries}) == len(entries)


def test_refunds_split_as_the_reports_do_and_return_the_commission_in_proportion() -> None:
    # The report's own example: an admin's 5.00 then seller B's own 1.00 split 345 / 155.
    order = paid_order()
    booked = booked_of(book(order))
    refund(order, 500, None)
    first = order_entries(order, booked=booked, commission_bps=1000)
    order.mark_saved()
    refund(order, 100, SELLER_B)
    second = order_entries(order, booked=booked, commission_bps=1000)
    order.mark_saved()
    assert allocate_refunds(order, order.refunds) == {SELLER_A: 345, SELLER_B: 255}
    refunded = sums(first + second)
    assert refunded[(SELLER_A, EntryKind.REFUND)] == -345
    assert refunded[(SELLER_B, EntryKind.REFUND)] == -255
    # Commission given back: 10 % of each refunded share, rounded down.
    assert refunded[(SELLER_A, EntryKind.COMMISSION_REFUND)] == 34
    assert refunded[(SELLER_B, EntryKind.COMMISSION_REFUND)] == 25
    # Every cent of each refund was booked to someone, no more.
    assert sum(e.amount.minor for e in first if e.kind is EntryKind.REFUND) == -500
    assert sum(e.amount.minor for e in second if e.kind is EntryKind.REFUND) == -100


def test_a_full_refund_gives_every_cent_of_sale_and_commission_back() -> None:
    order = paid_order(1999, 1)
    booked = booked_of(book(order, bps=333))
    refund(order, 7, None)
    entries = order_entries(order, booked=booked, commission_bps=333)
    order.mark_saved()
    refund(order, 2000 - 7, None)
    entries += order_entries(order, booked=booked, commission_bps=333)
    totals = sums(entries)
    for seller in (SELLER_A, SELLER_B):
        assert -totals[(seller, EntryKind.REFUND)] == booked[seller].sale_minor
        assert (
            totals.get((seller, EntryKind.COMMISSION_REFUND), 0) == booked[seller].commission_minor
        )


def test_cancelling_a_paid_order_reverses_every_seller_in_full() -> None:
    order = paid_order()
    booked = booked_of(book(order))
    order.cancel_paid(actor="buyer", reason="changed my mind", refund_reference="re_1", at=AT)
    totals = sums(order_entries(order, booked=booked, commission_bps=1000))
    assert totals == {
        (SELLER_A, EntryKind.REFUND): -2000,
        (SELLER_A, EntryKind.COMMISSION_REFUND): 200,
        (SELLER_B, EntryKind.REFUND): -1000,
        (SELLER_B, EntryKind.COMMISSION_REFUND): 100,
    }


def test_an_order_captured_before_the_ledger_existed_books_no_refund() -> None:
    order = paid_order()
    order.mark_saved()
    refund(order, 500, None)
    assert order_entries(order, booked={}, commission_bps=1000) == []


def test_a_capture_and_its_cancel_saved_together_net_to_zero() -> None:
    # The reconciler records a recovered capture and its refund in one save.
    order = paid_order()
    order.cancel_paid(actor="system", reason="stock gone", refund_reference="ch_1", at=AT)
    entries = order_entries(order, booked={}, commission_bps=1000)
    for seller in (SELLER_A, SELLER_B):
        assert sum(e.amount.minor for e in entries if e.seller_id == seller) == 0
    assert {e.kind for e in entries} == {
        EntryKind.SALE,
        EntryKind.COMMISSION,
        EntryKind.REFUND,
        EntryKind.COMMISSION_REFUND,
    }
