"""PostgreSQL storage of the sellers' ledger and payouts as the PayoutService reads and pays them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import override

import asyncpg

from services.common import postgres
from services.common.money import Money
from services.order.adapters.postgres.ledger import INSERT_ENTRY, entry_row
from services.order.adapters.postgres.unit_of_work import OrderDatabaseUnitOfWork
from services.order.domain.ledger import IMMEDIATE_KINDS, Balance, EntryKind, LedgerEntry
from services.order.domain.payouts import PageCursor, Payout

type Connection = postgres.AnyConnection

# Serialises payout runs (pg_advisory_xact_lock): released when the run's transaction ends.
PAYOUT_RUN_LOCK = 0x5041_594F_5554  # "PAYOUT"

_IMMEDIATE = sorted(k.value for k in IMMEDIATE_KINDS)


class PostgresLedger:
    """The ledger_entries and payouts tables."""

    def __init__(self, connection: Connection) -> None:
        self._db = connection

    async def balances(self, seller_id: str, *, settled_before: datetime) -> dict[str, Balance]:
        """The seller's balance per currency; sales older than `settled_before` are settled."""
        rows = await self._db.fetch(
            """
            SELECT currency,
                   coalesce(sum(amount_minor) FILTER (
                       WHERE kind = ANY($3::text[]) OR created_at <= $2), 0) AS available,
                   coalesce(sum(amount_minor) FILTER (
                       WHERE NOT (kind = ANY($3::text[]) OR created_at <= $2)), 0) AS pending
            FROM ledger_entries WHERE seller_id = $1
            GROUP BY currency ORDER BY currency
            """,
            seller_id,
            settled_before,
            _IMMEDIATE,
        )
        return {
            r["currency"]: Balance(
                Money(int(r["available"]), r["currency"]), Money(int(r["pending"]), r["currency"])
            )
            for r in rows
        }

    async def entries(
        self, seller_id: str, *, limit: int, after: PageCursor | None
    ) -> list[LedgerEntry]:
        """The seller's entries, newest first, strictly after the cursor."""
        rows = await self._db.fetch(
            """
            SELECT * FROM ledger_entries
            WHERE seller_id = $1
              AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
            ORDER BY created_at DESC, id DESC
            LIMIT $4
            """,
            seller_id,
            after.created_at if after else None,
            after.row_id if after else None,
            limit,
        )
        return [_entry(r) for r in rows]

    async def payouts(
        self, seller_id: str | None, *, limit: int, after: PageCursor | None
    ) -> list[Payout]:
        """The seller's payouts (every seller's when None), newest first, after the cursor."""
        rows = await self._db.fetch(
            """
            SELECT * FROM payouts
            WHERE ($1::text IS NULL OR seller_id = $1)
              AND ($2::timestamptz IS NULL OR (created_at, id) < ($2, $3::uuid))
            ORDER BY created_at DESC, id DESC
            LIMIT $4
            """,
            seller_id,
            after.created_at if after else None,
            after.row_id if after else None,
            limit,
        )
        return [_payout(r) for r in rows]

    async def lock_payout_runs(self) -> None:
        """Wait for any other run's transaction to end, then hold the lock until ours does."""
        await self._db.execute("SELECT pg_advisory_xact_lock($1)", PAYOUT_RUN_LOCK)

    async def due(self, *, settled_before: datetime) -> list[tuple[str, Money]]:
        """Every positive available balance, per seller and currency."""
        # Read after the lock: under READ COMMITTED this statement sees every earlier
        # run's committed payouts.
        rows = await self._db.fetch(
            """
            SELECT seller_id, currency, sum(amount_minor) AS available
            FROM ledger_entries
            WHERE kind = ANY($2::text[]) OR created_at <= $1
            GROUP BY seller_id, currency
            HAVING sum(amount_minor) > 0
            ORDER BY seller_id, currency
            """,
            settled_before,
            _IMMEDIATE,
        )
        return [(r["seller_id"], Money(int(r["available"]), r["currency"])) for r in rows]

    async def add_payout(self, payout: Payout) -> None:
        """Record a payout and the entry that moves its amount out of the balance."""
        await self._db.execute(
            """
            INSERT INTO payouts (id, run_id, seller_id, currency, amount_minor, settled_before,
                                 created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            """,
            payout.payout_id,
            payout.run_id,
            payout.seller_id,
            payout.amount.currency,
            payout.amount.minor,
            payout.settled_before,
            payout.created_at,
        )
        entry = LedgerEntry(
            entry_id=uuid.uuid4(),
            seller_id=payout.seller_id,
            kind=EntryKind.PAYOUT,
            amount=Money(-payout.amount.minor, payout.amount.currency),
            source_id=payout.payout_id,
            created_at=payout.created_at,
            payout_id=payout.payout_id,
        )
        await self._db.execute(INSERT_ENTRY, *entry_row(entry))


def _entry(r: asyncpg.Record) -> LedgerEntry:
    return LedgerEntry(
        entry_id=r["id"],
        seller_id=r["seller_id"],
        kind=EntryKind(r["kind"]),
        amount=Money(r["amount_minor"], r["currency"]),
        source_id=r["source_id"],
        created_at=r["created_at"],
        order_id=r["order_id"],
        payout_id=r["payout_id"],
    )


def _payout(r: asyncpg.Record) -> Payout:
    return Payout(
        payout_id=r["id"],
        run_id=r["run_id"],
        seller_id=r["seller_id"],
        amount=Money(r["amount_minor"], r["currency"]),
        settled_before=r["settled_before"],
        created_at=r["created_at"],
    )


class PostgresPayoutUnitOfWork(OrderDatabaseUnitOfWork):
    """One transaction over the ledger and the payouts."""

    ledger: PostgresLedger

    @override
    def _bind(self, connection: postgres.PooledConnection) -> None:
        self.ledger = PostgresLedger(connection)
