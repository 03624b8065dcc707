"""Users in the `users` table (phone numbers sealed at rest), and the username reservations."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg

from services.common.envelope import DataKeys
from services.common.identity import Role
from services.common.sealed_rows import SealedColumn
from services.user.adapters.postgres.pool import Connection
from services.user.domain.model import DuplicateUser, UniqueField, User, UserState

# Unique indexes of the users table (see the migrations) and the field each guards.
_UNIQUE_INDEXES = {
    "users_email_key": UniqueField.EMAIL,
    "users_username_key": UniqueField.USERNAME,
}
# A deleted account is a tombstone the repository never hands out: to every use case it
# is an account that does not exist.
_LIVE = "state <> 'deleted'"
_USER_COLUMNS = """
    id, email, username, password_hash, display_name, bio, avatar_url, phone_sealed,
    email_verified, roles, state, created_at, updated_at
"""
# Read also the plaintext phone number of rows written before encryption at rest.
_SELECT_COLUMNS = f"{_USER_COLUMNS}, phone_number"

# The profile's phone number, sealed at rest (the plaintext column is NULL once sealed).
SEALED_PHONE = SealedColumn("users", "phone_sealed", ("phone_number",))


def _user_from_row(row: asyncpg.Record, phone_number: str) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        username=row["username"],
        password_hash=row["password_hash"],
        display_name=row["display_name"],
        bio=row["bio"],
        avatar_url=row["avatar_url"],
        phone_number=phone_number,
        email_verified=row["email_verified"],
        roles=frozenset(Role(r) for r in row["roles"]),
        state=UserState(row["state"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _user_values(user: User, keys: DataKeys) -> tuple[Any, ...]:
    return (
        user.id,
        user.email,
        user.username,
        user.password_hash,
        user.display_name,
        user.bio,
        user.avatar_url,
        SEALED_PHONE.seal(keys, user.id, {"phone_number": user.phone_number}),
        user.email_verified,
        sorted(r.value for r in user.roles),
        user.state.value,
        user.created_at,
        user.updated_at,
    )


class PostgresUserRepository:
    """Users in the `users` table."""

    def __init__(self, connection: Connection, keys: DataKeys) -> None:
        self._connection = connection
        self._keys = keys

    async def _user(self, row: asyncpg.Record) -> User:
        sealed = row["phone_sealed"]
        if sealed is None:  # written before encryption at rest and not yet backfilled
            return _user_from_row(row, row["phone_number"] or "")
        opened = await SEALED_PHONE.open(self._keys, self._connection, row["id"], sealed)
        return _user_from_row(row, str(opened["phone_number"]))

    async def add(self, user: User) -> None:
        """Insert a new user; raises DuplicateUser when the email or username is taken.

        A username held by a reservation (see reserve_username) counts as taken.
        """
        if await self._reserved(user.username):
            raise DuplicateUser(UniqueField.USERNAME)
        try:
            await self._connection.execute(
                f"insert into users ({_USER_COLUMNS}) "
                "values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
                *_user_values(user, self._keys),
            )
        except asyncpg.UniqueViolationError as error:
            field = _UNIQUE_INDEXES.get(error.constraint_name or "")
            if field is None:
                raise
            raise DuplicateUser(field) from error

    async def add_if_absent(self, user: User) -> bool:
        """Insert a user unless the email or username exists; whether it was inserted."""
        status = await self._connection.execute(
            f"insert into users ({_USER_COLUMNS}) "
            "values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) "
            "on conflict do nothing",
            *_user_values(user, self._keys),
        )
        return status == "INSERT 0 1"

    async def get(self, user_id: uuid.UUID) -> User | None:
        """The user with this id, if any."""
        row = await self._connection.fetchrow(
            f"select {_SELECT_COLUMNS} from users where id = $1 and {_LIVE}", user_id
        )
        return None if row is None else await self._user(row)

    async def get_by_email(self, email: str) -> User | None:
        """The user with this email (compared case-insensitively), if any."""
        row = await self._connection.fetchrow(
            f"select {_SELECT_COLUMNS} from users where lower(email) = lower($1) and {_LIVE}", email
        )
        return None if row is None else await self._user(row)

    async def get_for_update(self, user_id: uuid.UUID) -> User | None:
        """The user with this id, row-locked until the transaction ends, if any."""
        row = await self._connection.fetchrow(
            f"select {_SELECT_COLUMNS} from users where id = $1 and {_LIVE} for update", user_id
        )
        return None if row is None else await self._user(row)

    async def erase(self, user: User, tombstone: User, now: datetime) -> None:
        """Replace the account by its tombstone and delete everything personal it owns.

        Sessions and their refresh tokens, mailed tokens, addresses, preferences, the
        wishlist and queued mail (it carries the address) go; the username stays
        reserved so nobody else can take the handle the user's reviews were known by.
        """
        for table in (
            "refresh_tokens",
            "sessions",
            "action_tokens",
            "addresses",
            "preferences",
            "wishlist_items",
            "email_outbox",
        ):
            await self._connection.execute(f"delete from {table} where user_id = $1", user.id)
        await self._connection.execute(
            "insert into username_reservations (username, created_at) values ($1, $2) "
            "on conflict do nothing",
            user.username,
            now,
        )
        await self._connection.execute(
            "update users set email = $2, username = $3, password_hash = $4, display_name = $5, "
            "bio = $6, avatar_url = $7, phone_number = null, phone_sealed = null, "
            "email_verified = $8, roles = $9, state = $10, updated_at = $11, deleted_at = $11, "
            "suspended_by = null, suspension_reason = null where id = $1",
            tombstone.id,
            tombstone.email,
            tombstone.username,
            tombstone.password_hash,
            tombstone.display_name,
            tombstone.bio,
            tombstone.avatar_url,
            tombstone.email_verified,
            sorted(r.value for r in tombstone.roles),
            tombstone.state.value,
            now,
        )

    async def username_taken(self, username: str) -> bool:
        """Whether an account or a reservation holds this username (case-insensitively)."""
        found = await self._connection.fetchval(
            "select exists (select 1 from users where lower(username) = lower($1)) "
            "or exists (select 1 from username_reservations where lower(username) = lower($1))",
            username,
        )
        return bool(found)

    async def _reserved(self, username: str) -> bool:
        # Users and reservations are two tables, so no single unique index covers both: a
        # transaction-scoped advisory lock on the username makes check-then-insert atomic
        # against a concurrent reserve_username (and vice versa) until the commit.
        await self._connection.execute(
            "select pg_advisory_xact_lock(hashtextextended('username:' || lower($1), 0))",
            username,
        )
        found = await self._connection.fetchval(
            "select exists (select 1 from username_reservations where lower(username) = lower($1))",
            username,
        )
        return bool(found)

    async def reserve_username(self, username: str, now: datetime) -> bool:
        """Hold a username no account has; False when an account or reservation holds it."""
        await self._reserved(username)
        if await self.username_taken(username):
            return False
        await self._connection.execute(
            "insert into username_reservations (username, created_at) values ($1, $2)",
            username,
            now,
        )
        return True

    async def set_password_hash(
        self, user_id: uuid.UUID, password_hash: str, now: datetime
    ) -> None:
        """Store a new password hash."""
        await self._connection.execute(
            "update users set password_hash = $2, updated_at = $3 where id = $1",
            user_id,
            password_hash,
            now,
        )

    async def mark_email_verified(self, user_id: uuid.UUID, email: str, now: datetime) -> bool:
        """Verify the account's email if it still is `email`; whether it changed."""
        status = await self._connection.execute(
            "update users set email_verified = true, updated_at = $3 "
            "where id = $1 and lower(email) = lower($2) and not email_verified",
            user_id,
            email,
            now,
        )
        return status == "UPDATE 1"

    async def update_profile(self, user: User) -> None:
        """Write back the profile fields: display name, bio, avatar URL, phone number."""
        await self._connection.execute(
            "update users set display_name = $2, bio = $3, avatar_url = $4, phone_sealed = $5, "
            "phone_number = null, updated_at = $6 where id = $1",
            user.id,
            user.display_name,
            user.bio,
            user.avatar_url,
            SEALED_PHONE.seal(self._keys, user.id, {"phone_number": user.phone_number}),
            user.updated_at,
        )

    async def set_roles(self, user_id: uuid.UUID, roles: frozenset[Role], now: datetime) -> None:
        """Replace the account's roles."""
        await self._connection.execute(
            "update users set roles = $2, updated_at = $3 where id = $1",
            user_id,
            sorted(r.value for r in roles),
            now,
        )

    async def set_state(
        self,
        user_id: uuid.UUID,
        state: UserState,
        *,
        by: uuid.UUID | None,
        reason: str | None,
        now: datetime,
    ) -> None:
        """Suspend or reactivate the account, recording who did it and why."""
        suspended = state is UserState.SUSPENDED
        await self._connection.execute(
            "update users set state = $2, suspended_at = $3, suspended_by = $4, "
            "suspension_reason = $5, updated_at = $6 where id = $1",
            user_id,
            state.value,
            now if suspended else None,
            by if suspended else None,
            reason if suspended else None,
            now,
        )

    async def search(
        self,
        *,
        query: str,
        role: Role | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[User]:
        """Users matching a prefix of username, display name or email, newest first."""
        conditions = [_LIVE]
        args: list[Any] = []
        if query:
            # LIKE metacharacters in the query are matched literally.
            escaped = query.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            args.append(escaped + "%")
            n = len(args)
            conditions.append(
                f"(lower(username) like ${n} or lower(display_name) like ${n} "
                f"or lower(email) like ${n})"
            )
        if role is not None:
            args.append(role.value)
            conditions.append(f"${len(args)} = any(roles)")
        if after is not None:
            args.extend(after)
            conditions.append(f"(created_at, id) < (${len(args) - 1}, ${len(args)})")
        args.append(limit)
        rows = await self._connection.fetch(
            f"select {_SELECT_COLUMNS} from users where {' and '.join(conditions)} "
            f"order by created_at desc, id desc limit ${len(args)}",
            *args,
        )
        return [await self._user(r) for r in rows]
