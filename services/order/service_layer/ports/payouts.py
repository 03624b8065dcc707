"""The ports of payouts: the sellers' ledger, their payouts, and the transaction over them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol

from services.common.money import Money
from services.common.transaction import Transaction
from services.order.domain.ledger import Balance, LedgerEntry
from services.order.domain.payouts import PageCursor, Payout


class Ledger(Protocol):
    """The sellers' ledger entries and payouts."""

    async def balances(self, seller_id: str, *, settled_before: datetime) -> dict[str, Balance]:
        """The seller's balance per currency; sales older than `settled_before` are settled."""
        ...

    async def entries(
        self, seller_id: str, *, limit: int, after: PageCursor | None
    ) -> list[LedgerEntry]:
        """The seller's entries, newest first, strictly after the cursor."""
        ...

    async def payouts(
        self, seller_id: str | None, *, limit: int, after: PageCursor | None
    ) -> list[Payout]:
        """The seller's payouts (every seller's when None), newest first, after the cursor."""
        ...

    async def lock_payout_runs(self) -> None:
        """Wait until no other payout run holds the lock, then hold it until the transaction ends."""
        ...

    async def due(self, *, settled_before: datetime) -> list[tuple[str, Money]]:
        """Every (seller, available balance) that is positive, one per seller and currency."""
        ...

    async def add_payout(self, payout: Payout) -> None:
        """Record a payout and the ledger entry that moves its amount out of the balance."""
        ...


class PayoutUnitOfWork(Transaction, Protocol):
    """One transaction over the ledger and the payouts."""

    @property
    def ledger(self) -> Ledger:
        """The ledger, inside the transaction."""
        ...


type PayoutUnitOfWorkFactory = Callable[[], PayoutUnitOfWork]
