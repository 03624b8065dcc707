"""PostgreSQL storage of the outcome of each buyer's idempotency keys."""

from __future__ import annotations

import uuid
from datetime import datetime

from services.common import postgres
from services.common.envelope import DataKeys, field_context
from services.order.domain.idempotency import IdempotencyRecord, KeyState, StoredError

type Connection = postgres.AnyConnection

_SEAL_BATCH = 200


def response_context(buyer_id: uuid.UUID, key: str) -> bytes:
    """The associated data of a stored answer: its buyer and idempotency key."""
    return field_context("idempotency_keys", "response", f"{buyer_id}:{key}")


async def seal_legacy_responses(pool: postgres.BoundedPool) -> int:
    """Seal the answers stored before encryption at rest (a startup step); how many."""
    keys = pool.data_keys
    if keys is None or keys.active_key_id is None:
        return 0  # no usable key: the rows wait (sealed_rows logs why at startup)
    total = 0
    while True:
        async with pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                "SELECT buyer_id, key, response FROM idempotency_keys "
                "WHERE response IS NOT NULL AND NOT response_sealed "
                f"LIMIT {_SEAL_BATCH} FOR UPDATE SKIP LOCKED"
            )
            for row in rows:
                context = response_context(row["buyer_id"], row["key"])
                await connection.execute(
                    "UPDATE idempotency_keys SET response = $3, response_sealed = true "
                    "WHERE buyer_id = $1 AND key = $2",
                    row["buyer_id"],
                    row["key"],
                    keys.seal(bytes(row["response"]), context=context),
                )
        total += len(rows)
        if len(rows) < _SEAL_BATCH:
            return total


class IdempotencyRepository:
    """The outcome of each buyer's idempotency keys."""

    def __init__(self, connection: Connection, keys: DataKeys) -> None:
        self._db = connection
        self._keys = keys

    async def claim(
        self,
        buyer_id: uuid.UUID,
        key: str,
        fingerprint: bytes,
        *,
        lease_until: datetime | None = None,
        order_id: uuid.UUID | None = None,
    ) -> IdempotencyRecord | None:
        """Take the key for a new request; None if taken, else the record already there."""
        inserted = await self._db.fetchval(
            """
            INSERT INTO idempotency_keys (buyer_id, key, request_fingerprint, state,
                                          lease_expires_at, order_id)
            VALUES ($1, $2, $3, 'in_progress', $4, $5)
            ON CONFLICT (buyer_id, key) DO NOTHING
            RETURNING true
            """,
            buyer_id,
            key,
            fingerprint,
            lease_until,
            order_id,
        )
        if inserted:
            return None
        record = await self.get(buyer_id, key)
        if record is None:
            # The holder gave the key back between our insert and our read: try once more.
            return await self.claim(
                buyer_id, key, fingerprint, lease_until=lease_until, order_id=order_id
            )
        return record

    async def lease(self, buyer_id: uuid.UUID, key: str, until: datetime) -> None:
        """Move the lease of a key in progress to `until` (renew it, or let it lapse now)."""
        await self._db.execute(
            "UPDATE idempotency_keys SET lease_expires_at = $3 "
            "WHERE buyer_id = $1 AND key = $2 AND state = 'in_progress'",
            buyer_id,
            key,
            until,
        )

    async def get(self, buyer_id: uuid.UUID, key: str) -> IdempotencyRecord | None:
        """The record of a key, if it was used."""
        row = await self._db.fetchrow(
            "SELECT * FROM idempotency_keys WHERE buyer_id = $1 AND key = $2", buyer_id, key
        )
        if row is None:
            return None
        error = None
        if row["error_code"] is not None:
            error = StoredError(
                code=row["error_code"],
                message=row["error_message"],
                reason=row["error_reason"],
                metadata=dict(row["error_metadata"] or {}),
            )
        response = None if row["response"] is None else bytes(row["response"])
        if response is not None and row["response_sealed"]:
            response = await self._keys.open(
                self._db, response, context=response_context(buyer_id, key)
            )
        return IdempotencyRecord(
            request_fingerprint=bytes(row["request_fingerprint"]),
            state=KeyState(row["state"]),
            response=response,
            error=error,
            order_id=row["order_id"],
        )

    async def attach_order(self, buyer_id: uuid.UUID, key: str, order_id: uuid.UUID) -> None:
        """Note which order a key's request is placing, for reconciliation after a crash."""
        await self._db.execute(
            "UPDATE idempotency_keys SET order_id = $3, updated_at = now() "
            "WHERE buyer_id = $1 AND key = $2",
            buyer_id,
            key,
            order_id,
        )

    async def complete(self, buyer_id: uuid.UUID, key: str, response: bytes) -> None:
        """Store the successful response of a key's request, sealed (it holds the address)."""
        await self._db.execute(
            "UPDATE idempotency_keys SET state = 'completed', response = $3, "
            "response_sealed = true, updated_at = now() WHERE buyer_id = $1 AND key = $2",
            buyer_id,
            key,
            self._keys.seal(response, context=response_context(buyer_id, key)),
        )

    async def fail(self, buyer_id: uuid.UUID, key: str, error: StoredError) -> None:
        """Store the error a key's request ended with."""
        await self._db.execute(
            """
            UPDATE idempotency_keys
            SET state = 'completed', error_code = $3, error_message = $4, error_reason = $5,
                error_metadata = $6, updated_at = now()
            WHERE buyer_id = $1 AND key = $2
            """,
            buyer_id,
            key,
            error.code,
            error.message,
            error.reason,
            error.metadata,
        )

    async def for_order(self, order_id: uuid.UUID) -> tuple[uuid.UUID, str] | None:
        """The (buyer, key) that is placing or placed an order."""
        row = await self._db.fetchrow(
            "SELECT buyer_id, key FROM idempotency_keys WHERE order_id = $1", order_id
        )
        return (row["buyer_id"], row["key"]) if row else None

    async def stale_in_progress(
        self, *, older_than: datetime, now: datetime, limit: int
    ) -> list[tuple[uuid.UUID, str, uuid.UUID | None]]:
        """Keys in progress whose lease lapsed, or unleased since before `older_than`."""
        rows = await self._db.fetch(
            """
            SELECT buyer_id, key, order_id FROM idempotency_keys
            WHERE state = 'in_progress'
              AND CASE WHEN lease_expires_at IS NOT NULL THEN lease_expires_at < $2
                       ELSE updated_at < $1 END
            ORDER BY updated_at
            LIMIT $3
            """,
            older_than,
            now,
            limit,
        )
        return [(r["buyer_id"], r["key"], r["order_id"]) for r in rows]

    async def release(self, buyer_id: uuid.UUID, key: str) -> None:
        """Give a key back when its request left no trace, so a retry can run afresh."""
        await self._db.execute(
            "DELETE FROM idempotency_keys WHERE buyer_id = $1 AND key = $2 AND state = 'in_progress'",
            buyer_id,
            key,
        )
