"""Mailed single-use tokens in `action_tokens`."""

from __future__ import annotations

import uuid
from datetime import datetime

from services.user.adapters.postgres.pool import Connection
from services.user.domain.model import ActionToken, TokenPurpose


class PostgresActionTokenRepository:
    """Mailed single-use tokens in `action_tokens`."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def add(self, token: ActionToken) -> None:
        """Store a new token."""
        await self._connection.execute(
            "insert into action_tokens (id, user_id, purpose, token_hash, email, created_at, "
            "expires_at) values ($1, $2, $3, $4, $5, $6, $7)",
            token.id,
            token.user_id,
            token.purpose.value,
            token.token_hash,
            token.email,
            token.created_at,
            token.expires_at,
        )

    async def invalidate(self, user_id: uuid.UUID, purpose: TokenPurpose, now: datetime) -> None:
        """Use up the user's earlier unused tokens of this purpose."""
        await self._connection.execute(
            "update action_tokens set used_at = $3 "
            "where user_id = $1 and purpose = $2 and used_at is null",
            user_id,
            purpose.value,
            now,
        )

    async def consume(
        self, token_hash: str, purpose: TokenPurpose, now: datetime
    ) -> ActionToken | None:
        """Mark an unused, unexpired token used and return it; None if there is none."""
        # One conditional UPDATE: of two concurrent uses exactly one matches.
        row = await self._connection.fetchrow(
            "update action_tokens set used_at = $3 where token_hash = $1 and purpose = $2 "
            "and used_at is null and expires_at > $3 "
            "returning id, user_id, purpose, token_hash, email, created_at, expires_at",
            token_hash,
            purpose.value,
            now,
        )
        if row is None:
            return None
        values = dict(row)
        values["purpose"] = TokenPurpose(values["purpose"])
        return ActionToken(**values)

    async def latest_issue_time(self, user_id: uuid.UUID, purpose: TokenPurpose) -> datetime | None:
        """When the user's newest token of this purpose was issued."""
        value = await self._connection.fetchval(
            "select max(created_at) from action_tokens where user_id = $1 and purpose = $2",
            user_id,
            purpose.value,
        )
        return value if isinstance(value, datetime) else None
