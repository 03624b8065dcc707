"""Users' preferences in `preferences`."""

from __future__ import annotations

import uuid
from datetime import datetime

from services.user.adapters.postgres.pool import Connection
from services.user.domain.model import Preferences


class PostgresPreferencesRepository:
    """The `preferences` table."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def get(self, user_id: uuid.UUID) -> Preferences | None:
        """The stored preferences, or None when the user never set any."""
        row = await self._connection.fetchrow(
            "select user_id, language, currency_code, marketing_opt_in, notification_channels "
            "from preferences where user_id = $1",
            user_id,
        )
        if row is None:
            return None
        values = dict(row)
        values["notification_channels"] = tuple(values["notification_channels"])
        return Preferences(**values)

    async def put(self, preferences: Preferences, now: datetime) -> None:
        """Insert or replace the user's preferences."""
        await self._connection.execute(
            "insert into preferences (user_id, language, currency_code, marketing_opt_in, "
            "notification_channels, updated_at) values ($1, $2, $3, $4, $5, $6) "
            "on conflict (user_id) do update set language = excluded.language, "
            "currency_code = excluded.currency_code, "
            "marketing_opt_in = excluded.marketing_opt_in, "
            "notification_channels = excluded.notification_channels, "
            "updated_at = excluded.updated_at",
            preferences.user_id,
            preferences.language,
            preferences.currency_code,
            preferences.marketing_opt_in,
            list(preferences.notification_channels),
            now,
        )
