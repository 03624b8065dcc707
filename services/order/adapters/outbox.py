"""The outbox relay: publishes the events written with each change to Redis Streams."""

from __future__ import annotations

from datetime import UTC, datetime

import structlog
from redis.asyncio import Redis

from services.common.workers import repeat
from services.order.adapters.events import ORDER_EVENTS_STREAM
from services.order.adapters.repository import Pool

log = structlog.get_logger("outbox")


class OutboxRelay:
    """Publishes outbox rows to a Redis stream, oldest first, at least once.

    A row is marked published only after XADD returned, in the transaction that locked
    it: a crash in between publishes the row again, and consumers deduplicate on
    event_id. SKIP LOCKED lets several relays (replicas) share the table without
    publishing one row twice in the common case.
    """

    def __init__(
        self,
        pool: Pool,
        redis: Redis,
        *,
        stream: str = ORDER_EVENTS_STREAM,
        batch_size: int = 100,
        interval_seconds: float = 0.2,
        max_stream_length: int = 1_000_000,
    ) -> None:
        self._pool = pool
        self._redis = redis
        self._stream = stream
        self._batch_size = batch_size
        self._interval = interval_seconds
        self._max_length = max_stream_length

    async def run_once(self) -> int:
        """Publish one batch of unpublished events; returns how many were published."""
        async with self._pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                """
                SELECT id, event_id, event_type, payload FROM outbox
                WHERE published_at IS NULL
                ORDER BY id
                LIMIT $1
                FOR UPDATE SKIP LOCKED
                """,
                self._batch_size,
            )
            if not rows:
                return 0
            async with self._redis.pipeline(transaction=False) as pipe:
                for row in rows:
                    pipe.xadd(
                        self._stream,
                        {
                            "event_id": str(row["event_id"]),
                            "type": row["event_type"],
                            "payload": bytes(row["payload"]),
                        },
                        maxlen=self._max_length,
                        approximate=True,
                    )
                await pipe.execute()
            await connection.execute(
                "UPDATE outbox SET published_at = $2 WHERE id = ANY($1::bigint[])",
                [row["id"] for row in rows],
                datetime.now(UTC),
            )
        log.info("outbox_published", count=len(rows))
        return len(rows)

    async def run(self) -> None:
        """Publish forever; errors are logged and retried after the interval."""
        await repeat(
            self.run_once,
            interval_seconds=self._interval,
            failure_event="outbox_relay_failed",
            again_at_once=lambda published: published >= self._batch_size,
        )
