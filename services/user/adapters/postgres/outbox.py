"""The `email_outbox` and `outbox` (events) tables, written in the transaction of the change."""

from __future__ import annotations

import uuid
from datetime import datetime

from google.protobuf.timestamp_pb2 import Timestamp
from marketplace.user.v1 import events_pb2

from services.user.adapters.postgres.pool import Connection
from services.user.domain.emails import EmailKind, OutgoingEmail
from services.user.domain.model import AccountDeleted

# The stream the relay publishes user events to; the contract is shared, so it is versioned.
USER_EVENTS_STREAM = "marketplace.user.events.v1"


class PostgresOutbox:
    """The `email_outbox` table (mail) and the `outbox` table (events for other services)."""

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

    async def add_event(self, event: AccountDeleted) -> None:
        """Queue the event as a marketplace.user.v1.UserEvent for the event relay."""
        stamp = Timestamp()
        stamp.FromDatetime(event.occurred_at)
        message = events_pb2.UserEvent(
            event_id=str(event.event_id),
            event_type=events_pb2.USER_EVENT_TYPE_DELETED,
            occur_time=stamp,
            user_id=str(event.user_id),
        )
        await self._connection.execute(
            "insert into outbox (event_id, user_id, event_type, payload) values ($1, $2, $3, $4)",
            event.event_id,
            event.user_id,
            events_pb2.UserEventType.Name(message.event_type),
            message.SerializeToString(),
        )
