"""Failed sign-in counters in `login_throttle`; the counting rule is the domain's."""

from __future__ import annotations

from datetime import datetime

from services.user.adapters.postgres.pool import Connection
from services.user.domain.model import FailureCount


class PostgresLoginThrottle:
    """Failed sign-in windows in `login_throttle`."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def blocked_until(self, keys: list[str], now: datetime) -> datetime | None:
        """The latest time any of the keys is blocked until, if one is blocked now."""
        value = await self._connection.fetchval(
            "select max(blocked_until) from login_throttle "
            "where key = any($1::text[]) and blocked_until > $2",
            keys,
            now,
        )
        return value if isinstance(value, datetime) else None

    async def count_for_update(self, key: str, now: datetime) -> FailureCount:
        """The key's count, row-locked until the transaction ends; an empty one if new."""
        # An upsert that changes nothing: it inserts an empty count for a new key and
        # row-locks the existing one, so two first failures of a key meet on one lock
        # instead of racing to insert it.
        row = await self._connection.fetchrow(
            "insert into login_throttle (key, failures, window_start) values ($1, 0, $2) "
            "on conflict (key) do update set key = excluded.key "
            "returning key, failures, window_start, blocked_until",
            key,
            now,
        )
        if row is None:  # an upsert with RETURNING always returns its row
            raise RuntimeError("login_throttle upsert returned no row")
        return FailureCount(
            key=row["key"],
            failures=row["failures"],
            window_start=row["window_start"],
            blocked_until=row["blocked_until"],
        )

    async def save(self, count: FailureCount) -> None:
        """Write back a count read with count_for_update."""
        await self._connection.execute(
            "update login_throttle set failures = $2, window_start = $3, blocked_until = $4 "
            "where key = $1",
            count.key,
            count.failures,
            count.window_start,
            count.blocked_until,
        )

    async def clear(self, key: str) -> None:
        """Forget the key's failures and any block."""
        await self._connection.execute("delete from login_throttle where key = $1", key)
