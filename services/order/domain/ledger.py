"""The sellers' ledger: what a captured sale, a refund, a cancel and a payout book to whom.

Entries are signed integer minor units, append-only, one currency each. Every order
event books each seller at most once (keyed by the event's id, the seller and the kind),
so a seller's balance is exactly: their captured parts - their share of the refunds -
the commission kept + the commission given back - their payouts.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from services.common.money import Money
from services.order.domain.model import Order, Refund
from services.order.domain.status import OrderStatus, PaymentStatus

# The platform's commission on a sale unless configured (ORDER_COMMISSION_BPS): 10 %.
DEFAULT_COMMISSION_BPS = 1000
BASIS_POINTS = 10_000


class EntryKind(StrEnum):
    """Why money moved on a seller's ledger, as stored."""

    SALE = "sale"
    COMMISSION = "commission"
    REFUND = "refund"
    COMMISSION_REFUND = "commission_refund"
    PAYOUT = "payout"


# Debits (and the commission handed back with a refund) count against the available
# balance at once, so money already refunded is never paid out; sales and their
# commission wait for the holding period.
IMMEDIATE_KINDS = frozenset({EntryKind.REFUND, EntryKind.COMMISSION_REFUND, EntryKind.PAYOUT})


@dataclass(frozen=True)
class LedgerEntry:
    """One movement of a seller's money; positive credits the seller."""

    entry_id: uuid.UUID
    seller_id: str
    kind: EntryKind
    amount: Money
    # The payment attempt, refund or payout that caused it: unique with seller and kind.
    source_id: uuid.UUID
    created_at: datetime
    order_id: uuid.UUID | None = None
    payout_id: uuid.UUID | None = None

    def available_at(self, hold: timedelta) -> datetime:
        """When the entry counts in the available balance."""
        return self.created_at if self.kind in IMMEDIATE_KINDS else self.created_at + hold


@dataclass(frozen=True)
class Booked:
    """What the ledger holds for one seller's part of an order: its sale and commission."""

    sale_minor: int
    commission_minor: int


@dataclass(frozen=True)
class Balance:
    """A seller's money in one currency: settled (available) and still held (pending)."""

    available: Money
    pending: Money


def seller_sale(order: Order, seller_id: str) -> Money:
    """The seller's part of an order: what a capture credits them before commission.

    The one place that says what a seller earns on an order (today their line totals); the
    refund split below weighs the sellers by it too.
    """
    return order.seller_total(seller_id)


def commission_on(sale_minor: int, bps: int) -> int:
    """The platform's commission on a sale, rounded down to the cent (in the seller's favour)."""
    return sale_minor * bps // BASIS_POINTS


def allocate_refunds(order: Order, refunds: Sequence[Refund]) -> dict[str, int]:
    """Each seller's share of `refunds`, by the sales reports' rule, to the cent.

    A seller's own refunds are theirs; refunds made for no seller (an admin's refund of the
    order) split in proportion to what each seller's part still held after its own
    refunds, rounded down, and the cents left over go one each to the largest rounded-off
    fraction (then the larger part, then the lower seller id). The same rule as
    adapters/postgres/reports.py, so the by-seller report reconciles with the ledger.
    """
    sellers = sorted(order.seller_ids)
    own = {s: sum(r.amount.minor for r in refunds if r.seller_id == s) for s in sellers}
    remaining = {s: seller_sale(order, s).minor - own[s] for s in sellers}
    unattributed = sum(r.amount.minor for r in refunds if r.seller_id is None)
    whole = sum(remaining.values())
    allocated = dict(own)
    if unattributed and whole > 0:
        shares = {s: unattributed * remaining[s] // whole for s in sellers}
        fractions = {s: unattributed * remaining[s] % whole for s in sellers}
        left = unattributed - sum(shares.values())
        for s in sorted(sellers, key=lambda s: (-fractions[s], -remaining[s], s))[:left]:
            shares[s] += 1
        for s in sellers:
            allocated[s] += shares[s]
    return allocated


def order_entries(
    order: Order, *, booked: Mapping[str, Booked], commission_bps: int
) -> list[LedgerEntry]:
    """The entries an order's unsaved changes book, to write in the same transaction.

    A captured payment credits each seller their sale and debits the commission; each
    refund debits every seller the change in their allocated share of the order's refunds
    and gives back the commission in proportion; a paid order's cancel refunds every
    seller's whole remaining part. `booked` is what the ledger already holds for the
    order; an order captured before the ledger existed books nothing.
    """
    entries: list[LedgerEntry] = []
    capture = next((p for p in order.unsaved_payments if p.status is PaymentStatus.CAPTURED), None)
    if capture is not None:
        booked = {}
        for seller in sorted(order.seller_ids):
            sale = seller_sale(order, seller).minor
            commission = commission_on(sale, commission_bps)
            booked[seller] = Booked(sale, commission)
            entries.append(
                _entry(order, seller, EntryKind.SALE, sale, capture.payment_id, capture.at)
            )
            if commission:
                entries.append(
                    _entry(
                        order,
                        seller,
                        EntryKind.COMMISSION,
                        -commission,
                        capture.payment_id,
                        capture.at,
                    )
                )
    if not booked:
        return entries
    unsaved = {r.refund_id for r in order.unsaved_refunds}
    done = [r for r in order.refunds if r.refund_id not in unsaved]
    before = allocate_refunds(order, done)
    for refund in order.unsaved_refunds:
        done.append(refund)
        after = allocate_refunds(order, done)
        entries += _refund_entries(order, booked, before, after, refund.refund_id, refund.at)
        before = after
    cancel = next((p for p in order.unsaved_payments if p.status is PaymentStatus.REFUNDED), None)
    if cancel is not None and order.status is OrderStatus.CANCELLED:
        # cancel_paid refunded the whole capture: every seller's part goes back in full.
        after = {s: b.sale_minor for s, b in booked.items()}
        entries += _refund_entries(order, booked, before, after, cancel.payment_id, cancel.at)
    return entries


def _refund_entries(
    order: Order,
    booked: Mapping[str, Booked],
    before: Mapping[str, int],
    after: Mapping[str, int],
    source_id: uuid.UUID,
    at: datetime,
) -> list[LedgerEntry]:
    entries = []
    for seller in sorted(booked):
        part = booked[seller]
        moved = after.get(seller, 0) - before.get(seller, 0)
        if moved:
            entries.append(_entry(order, seller, EntryKind.REFUND, -moved, source_id, at))
        # Cumulative, so a part refunded in full gives back exactly the commission kept.
        returned = _returned(part, after.get(seller, 0)) - _returned(part, before.get(seller, 0))
        if returned:
            entries.append(
                _entry(order, seller, EntryKind.COMMISSION_REFUND, returned, source_id, at)
            )
    return entries


def _returned(part: Booked, refunded_minor: int) -> int:
    """The commission given back once `refunded_minor` of the part was refunded."""
    if part.sale_minor <= 0:
        return 0
    refunded = min(max(refunded_minor, 0), part.sale_minor)
    return part.commission_minor * refunded // part.sale_minor


def _entry(
    order: Order, seller: str, kind: EntryKind, minor: int, source_id: uuid.UUID, at: datetime
) -> LedgerEntry:
    return LedgerEntry(
        entry_id=uuid.uuid4(),
        seller_id=seller,
        kind=kind,
        amount=Money(minor, order.currency),
        source_id=source_id,
        created_at=at,
        order_id=order.order_id,
    )
