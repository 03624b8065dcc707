"""The `email_outbox` table, written in the transaction of the change a mail reports."""

from __future__ import annotations

import uuid
from datetime import datetime

from services.user.adapters.postgres.pool import Connection
from services.user.domain.emails import EmailKind, OutgoingEmail


class PostgresOutbox:
    """The `email_outbox` table."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def add(self, message: OutgoingEmail) -> None:
        """Queue a mail for the relay."""
        await self._connection.execute(
            "insert into email_outbox (id, user_id, kind, to_address, subject, body) "
            "values ($1, $2, $3, $4, $5, $6)",
            message.id,
            message.user_id,
            message.kind.value,
            message.to,
            message.subject,
            message.body,
        )

    async def queued_since(self, user_id: uuid.UUID, kind: EmailKind, since: datetime) -> bool:
        """Whether a mail of this kind to this user was queued at or after `since`."""
        found = await self._connection.fetchval(
            "select exists (select 1 from email_outbox where user_id = $1 and kind = $2 "
            "and created_at >= $3)",
            user_id,
            kind.value,
            since,
        )
        return bool(found)
