"""Sessions in `sessions`, their refresh tokens in `refresh_tokens`."""

from __future__ import annotations

import uuid
from datetime import datetime

from services.user.adapters.postgres.pool import Connection
from services.user.domain.model import RefreshState, RefreshToken, Session, SessionView


class PostgresSessionRepository:
    """Sessions in `sessions`, their refresh tokens in `refresh_tokens`."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def add(self, session: Session) -> None:
        """Insert a new session with its refresh tokens."""
        await self._connection.execute(
            "insert into sessions (id, user_id, user_agent, client_ip, created_at, last_used_at) "
            "values ($1, $2, $3, $4, $5, $6)",
            session.id,
            session.user_id,
            session.user_agent,
            session.client_ip,
            session.created_at,
            session.last_used_at,
        )
        await self._connection.executemany(
            "insert into refresh_tokens "
            "(id, family_id, user_id, token_hash, created_at, expires_at, revoked_at, replaced_by) "
            "values ($1, $2, $3, $4, $5, $6, $7, $8)",
            [
                (
                    t.id,
                    t.family_id,
                    t.user_id,
                    t.token_hash,
                    t.created_at,
                    t.expires_at,
                    t.revoked_at,
                    t.replaced_by,
                )
                for t in session.tokens
            ],
        )

    async def get(self, session_id: uuid.UUID) -> Session | None:
        """The session with this id and its refresh tokens, oldest first, if any."""
        row = await self._connection.fetchrow(
            "select id, user_id, user_agent, host(client_ip) as client_ip, created_at, "
            "last_used_at, revoked_at from sessions where id = $1",
            session_id,
        )
        if row is None:
            return None
        tokens = await self._connection.fetch(
            "select id, family_id, user_id, token_hash, created_at, expires_at, revoked_at, "
            "replaced_by from refresh_tokens where family_id = $1 order by created_at, id",
            session_id,
        )
        return Session(
            id=row["id"],
            user_id=row["user_id"],
            user_agent=row["user_agent"],
            client_ip=row["client_ip"],
            created_at=row["created_at"],
            last_used_at=row["last_used_at"],
            revoked_at=row["revoked_at"],
            tokens=[RefreshToken(**dict(t)) for t in tokens],
        )

    async def find_token(self, token_hash: str) -> RefreshState | None:
        """The refresh token with this hash, row-locked, with its session's state."""
        row = await self._connection.fetchrow(
            "select t.id, t.family_id, t.user_id, t.token_hash, t.created_at, t.expires_at, "
            "t.revoked_at, t.replaced_by, s.revoked_at is not null as session_revoked "
            "from refresh_tokens t join sessions s on s.id = t.family_id "
            "where t.token_hash = $1 for update of t, s",
            token_hash,
        )
        if row is None:
            return None
        values = dict(row)
        revoked = bool(values.pop("session_revoked"))
        return RefreshState(RefreshToken(**values), revoked)

    async def rotate(self, old: RefreshToken, new: RefreshToken, now: datetime) -> None:
        """Record that `old` was replaced by `new`, and that the session was used."""
        await self._connection.execute(
            "insert into refresh_tokens (id, family_id, user_id, token_hash, created_at, expires_at) "
            "values ($1, $2, $3, $4, $5, $6)",
            new.id,
            new.family_id,
            new.user_id,
            new.token_hash,
            new.created_at,
            new.expires_at,
        )
        await self._connection.execute(
            "update refresh_tokens set replaced_by = $2 where id = $1", old.id, new.id
        )
        await self._connection.execute(
            "update sessions set last_used_at = $2 where id = $1", old.family_id, now
        )

    async def revoke(self, session_id: uuid.UUID, reason: str, now: datetime) -> bool:
        """End one session and its tokens; whether it was live."""
        status = await self._connection.execute(
            "update sessions set revoked_at = $2, revoke_reason = $3 "
            "where id = $1 and revoked_at is null",
            session_id,
            now,
            reason,
        )
        await self._connection.execute(
            "update refresh_tokens set revoked_at = $2 where family_id = $1 and revoked_at is null",
            session_id,
            now,
        )
        return status == "UPDATE 1"

    async def revoke_all(
        self, user_id: uuid.UUID, reason: str, now: datetime, *, keep: uuid.UUID | None = None
    ) -> int:
        """End every live session of a user except `keep`; how many ended."""
        rows = await self._connection.fetch(
            "update sessions set revoked_at = $2, revoke_reason = $3 "
            "where user_id = $1 and revoked_at is null and id is distinct from $4 returning id",
            user_id,
            now,
            reason,
            keep,
        )
        ids = [r["id"] for r in rows]
        if ids:
            await self._connection.execute(
                "update refresh_tokens set revoked_at = $2 "
                "where family_id = any($1::uuid[]) and revoked_at is null",
                ids,
                now,
            )
        return len(ids)

    async def list_live(self, user_id: uuid.UUID, now: datetime) -> list[SessionView]:
        """The user's sessions that are not revoked and hold an unexpired token."""
        rows = await self._connection.fetch(
            "select s.id, s.user_agent, host(s.client_ip) as client_ip, s.created_at, "
            "s.last_used_at from sessions s where s.user_id = $1 and s.revoked_at is null "
            "and exists (select 1 from refresh_tokens t where t.family_id = s.id "
            "and t.replaced_by is null and t.revoked_at is null and t.expires_at > $2) "
            "order by s.created_at desc, s.id",
            user_id,
            now,
        )
        return [SessionView(**dict(r)) for r in rows]
