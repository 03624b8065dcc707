"""The port of idempotency keys: the outcome of each key a buyer's request carried."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from services.order.domain.idempotency import IdempotencyRecord, StoredError


class IdempotencyKeys(Protocol):
    """Where the outcome of each idempotency key is kept."""

    async def claim(
        self,
        buyer_id: uuid.UUID,
        key: str,
        fingerprint: bytes,
        *,
        lease_until: datetime | None = None,
        order_id: uuid.UUID | None = None,
    ) -> IdempotencyRecord | None:
        """Take the key (leased, naming `order_id`); None when taken now, else the record."""
        ...

    async def lease(self, buyer_id: uuid.UUID, key: str, until: datetime) -> None:
        """Renew the lease of a key in progress, or let it lapse now."""
        ...

    async def get(self, buyer_id: uuid.UUID, key: str) -> IdempotencyRecord | None:
        """The record of a key."""
        ...

    async def attach_order(self, buyer_id: uuid.UUID, key: str, order_id: uuid.UUID) -> None:
        """Note the order a key is placing."""
        ...

    async def complete(self, buyer_id: uuid.UUID, key: str, response: bytes) -> None:
        """Store a successful response."""
        ...

    async def fail(self, buyer_id: uuid.UUID, key: str, error: StoredError) -> None:
        """Store a failure."""
        ...

    async def release(self, buyer_id: uuid.UUID, key: str) -> None:
        """Forget an in-progress key whose request left no trace."""
        ...

    async def for_order(self, order_id: uuid.UUID) -> tuple[uuid.UUID, str] | None:
        """The (buyer, key) placing an order."""
        ...

    async def stale_in_progress(
        self, *, older_than: datetime, now: datetime, limit: int
    ) -> list[tuple[uuid.UUID, str, uuid.UUID | None]]:
        """Keys in progress whose lease lapsed, or unleased since before `older_than`."""
        ...
