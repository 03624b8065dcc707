"""Payouts and the requests of the PayoutService: balances, ledger pages and payout runs."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from services.common.money import Money
from services.order.domain.commands import Caller

# "me" names the caller; "-" names every seller (AIP-159), for admins listing payouts.
ME = "me"
EVERY_SELLER = "-"


@dataclass(frozen=True)
class Payout:
    """Money a payout run moved out of a seller's available balance."""

    payout_id: uuid.UUID
    run_id: uuid.UUID
    seller_id: str
    amount: Money
    settled_before: datetime
    created_at: datetime


@dataclass(frozen=True)
class PayoutRun:
    """What one run paid: a payout per seller and currency with a positive available balance."""

    run_id: uuid.UUID
    settled_before: datetime
    payouts: list[Payout]


@dataclass(frozen=True)
class PageCursor:
    """Where a newest-first page ends: the last row's creation time and id."""

    created_at: datetime
    row_id: uuid.UUID


@dataclass(frozen=True)
class GetSellerBalance:
    """Read a seller's balance ("me" or a seller id)."""

    seller_id: str
    caller: Caller


@dataclass(frozen=True)
class ListLedgerEntries:
    """Read a page of a seller's ledger, newest first."""

    seller_id: str
    caller: Caller
    page_size: int
    after: PageCursor | None


@dataclass(frozen=True)
class ListPayouts:
    """Read a page of a seller's (or, for admins, every seller's) payouts, newest first."""

    seller_id: str
    caller: Caller
    page_size: int
    after: PageCursor | None


@dataclass(frozen=True)
class RunPayouts:
    """Pay every seller their positive available balance."""

    caller: Caller
