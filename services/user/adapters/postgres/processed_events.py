"""The `processed_order_events` table: the order events already turned into mail."""

from __future__ import annotations

from datetime import datetime

from services.user.adapters.postgres.pool import Connection


class PostgresProcessedEvents:
    """Processed order event ids; the primary key makes each one count once."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def remember(self, event_id: str, event_type: str, now: datetime) -> bool:
        """Record the event in the open transaction; False when it already was.

        A concurrent transaction recording the same id makes this one wait for it, then
        see the conflict: of two consumers handed one event, one mails.
        """
        inserted = await self._connection.fetchval(
            "insert into processed_order_events (event_id, event_type, processed_at) "
            "values ($1, $2, $3) on conflict (event_id) do nothing returning true",
            event_id,
            event_type,
            now,
        )
        return bool(inserted)
