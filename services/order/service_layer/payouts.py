"""Sellers' balances, ledgers and payouts; admins run payouts.

The ledger itself is written by the order repository, in the transaction of each capture,
refund and cancel (adapters/postgres/ledger.py): this module only reads it and pays out.
A payout run takes a database lock that serialises runs, reads every positive available
balance and books the payouts in the same short transaction, with no network call inside:
a second run waits, then finds those balances at zero and pays nothing twice.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

import structlog

from services.common.clock import Clock
from services.common.errors import PermissionDenied
from services.common.reasons import ErrorReason as CommonReason
from services.order.domain.commands import Caller
from services.order.domain.ledger import Balance, LedgerEntry
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
from services.order.domain.reasons import ErrorReason
from services.order.service_layer.ports import PayoutUnitOfWorkFactory

log = structlog.get_logger("payouts")


@dataclass(frozen=True)
class SellerBalance:
    """A seller's balances by currency code, and the holding period they were computed with."""

    seller_id: str
    balances: dict[str, Balance]
    hold: timedelta


async def get_balance(
    command: GetSellerBalance, *, uow: PayoutUnitOfWorkFactory, clock: Clock, hold: timedelta
) -> SellerBalance:
    """A seller's available and pending balance in each currency they have entries in."""
    seller_id = _seller(command.caller, command.seller_id)
    async with uow() as work:
        balances = await work.ledger.balances(seller_id, settled_before=clock.now() - hold)
    return SellerBalance(seller_id, balances, hold)


async def list_ledger(
    command: ListLedgerEntries, *, uow: PayoutUnitOfWorkFactory
) -> tuple[list[LedgerEntry], PageCursor | None]:
    """One page of a seller's ledger entries, newest first, and the cursor of the next."""
    seller_id = _seller(command.caller, command.seller_id)
    async with uow() as work:
        rows = await work.ledger.entries(
            seller_id, limit=command.page_size + 1, after=command.after
        )
    page = rows[: command.page_size]
    more = len(rows) > command.page_size
    return page, PageCursor(page[-1].created_at, page[-1].entry_id) if more else None


async def list_payouts(
    command: ListPayouts, *, uow: PayoutUnitOfWorkFactory
) -> tuple[list[Payout], PageCursor | None]:
    """One page of payouts, newest first: a seller's own, or any seller's (every one's) for admins."""
    everyone = command.seller_id == EVERY_SELLER
    if everyone and not command.caller.is_admin:
        raise PermissionDenied(
            "only admins list every seller's payouts", reason=ErrorReason.NOT_YOUR_LEDGER
        )
    seller_id = None if everyone else _seller(command.caller, command.seller_id)
    async with uow() as work:
        rows = await work.ledger.payouts(
            seller_id, limit=command.page_size + 1, after=command.after
        )
    page = rows[: command.page_size]
    more = len(rows) > command.page_size
    return page, PageCursor(page[-1].created_at, page[-1].payout_id) if more else None


async def run_payouts(
    command: RunPayouts, *, uow: PayoutUnitOfWorkFactory, clock: Clock, hold: timedelta
) -> PayoutRun:
    """Pay every seller their positive available balance, one payout per currency. Admins only.

    A negative balance (refunds after an earlier payout) is never paid and carries over.
    """
    if not command.caller.is_admin:
        raise PermissionDenied("only admins run payouts", reason=CommonReason.ROLE_REQUIRED)
    run_id = uuid.uuid4()
    async with uow() as work:
        await work.ledger.lock_payout_runs()
        # Read the clock once the lock is held: the balances below include every payout
        # an earlier run committed, so none is paid twice.
        now = clock.now()
        settled_before = now - hold
        payouts = [
            Payout(uuid.uuid4(), run_id, seller_id, amount, settled_before, now)
            for seller_id, amount in await work.ledger.due(settled_before=settled_before)
        ]
        for payout in payouts:
            await work.ledger.add_payout(payout)
        await work.commit()
    log.info(
        "payouts_run",
        run_id=str(run_id),
        payouts=len(payouts),
        by=command.caller.user_id,
    )
    return PayoutRun(run_id, settled_before, payouts)


def _seller(caller: Caller, requested: str) -> str:
    """The seller a request names ("me" is the caller), if the caller may see their money."""
    if not (caller.is_admin or caller.is_seller):
        raise PermissionDenied(
            "balances, ledgers and payouts are for sellers and admins",
            reason=CommonReason.ROLE_REQUIRED,
        )
    seller_id = caller.user_id if requested == ME else requested
    if not caller.is_admin and seller_id != caller.user_id:
        raise PermissionDenied(
            "sellers see only their own money",
            reason=ErrorReason.NOT_YOUR_LEDGER,
            metadata={"seller_id": seller_id},
        )
    return seller_id
