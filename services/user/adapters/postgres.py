"""PostgreSQL adapters: the connection pool, the repositories and the unit of work."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import asyncpg
import asyncpg.pool

from services.common import postgres
from services.common.identity import Role
from services.user.domain.addresses import Address, AddressFields
from services.user.domain.emails import EmailKind, OutgoingEmail
from services.user.domain.model import (
    ActionToken,
    DuplicateUser,
    Preferences,
    RefreshState,
    RefreshToken,
    Session,
    SessionView,
    TokenPurpose,
    UniqueField,
    User,
    UserState,
    WishlistItem,
)

# Unique indexes of the users table (see the migrations) and the field each guards.
_UNIQUE_INDEXES = {
    "users_email_key": UniqueField.EMAIL,
    "users_username_key": UniqueField.USERNAME,
}

type Connection = (
    asyncpg.Connection[asyncpg.Record] | asyncpg.pool.PoolConnectionProxy[asyncpg.Record]
)
type Pool = asyncpg.Pool[asyncpg.Record]

_USER_COLUMNS = """
    id, email, username, password_hash, display_name, bio, avatar_url, phone_number,
    email_verified, roles, state, created_at, updated_at
"""


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    acquire_timeout: float = 5.0,
    command_timeout: float = 10.0,
) -> Pool:
    """A connection pool whose waits are bounded (the chassis's); the caller closes it."""
    return await postgres.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        acquire_timeout=acquire_timeout,
        command_timeout=command_timeout,
    )


def _user_from_row(row: asyncpg.Record) -> User:
    return User(
        id=row["id"],
        email=row["email"],
        username=row["username"],
        password_hash=row["password_hash"],
        display_name=row["display_name"],
        bio=row["bio"],
        avatar_url=row["avatar_url"],
        phone_number=row["phone_number"],
        email_verified=row["email_verified"],
        roles=frozenset(Role(r) for r in row["roles"]),
        state=UserState(row["state"]),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _user_values(user: User) -> tuple[Any, ...]:
    return (
        user.id,
        user.email,
        user.username,
        user.password_hash,
        user.display_name,
        user.bio,
        user.avatar_url,
        user.phone_number,
        user.email_verified,
        sorted(r.value for r in user.roles),
        user.state.value,
        user.created_at,
        user.updated_at,
    )


class PostgresUserRepository:
    """Users in the `users` table."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

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
                *_user_values(user),
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
            *_user_values(user),
        )
        return status == "INSERT 0 1"

    async def get(self, user_id: uuid.UUID) -> User | None:
        """The user with this id, if any."""
        row = await self._connection.fetchrow(
            f"select {_USER_COLUMNS} from users where id = $1", user_id
        )
        return None if row is None else _user_from_row(row)

    async def get_by_email(self, email: str) -> User | None:
        """The user with this email (compared case-insensitively), if any."""
        row = await self._connection.fetchrow(
            f"select {_USER_COLUMNS} from users where lower(email) = lower($1)", email
        )
        return None if row is None else _user_from_row(row)

    async def get_for_update(self, user_id: uuid.UUID) -> User | None:
        """The user with this id, row-locked until the transaction ends, if any."""
        row = await self._connection.fetchrow(
            f"select {_USER_COLUMNS} from users where id = $1 for update", user_id
        )
        return None if row is None else _user_from_row(row)

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
            "update users set display_name = $2, bio = $3, avatar_url = $4, phone_number = $5, "
            "updated_at = $6 where id = $1",
            user.id,
            user.display_name,
            user.bio,
            user.avatar_url,
            user.phone_number,
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
        conditions = ["true"]
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
            f"select {_USER_COLUMNS} from users where {' and '.join(conditions)} "
            f"order by created_at desc, id desc limit ${len(args)}",
            *args,
        )
        return [_user_from_row(r) for r in rows]


_ADDRESS_COLUMNS = """
    id, user_id, recipient_name, line1, line2, city, region, postal_code, country_code,
    phone_number, is_default_shipping, created_at, updated_at
"""


def _address_from_row(row: asyncpg.Record) -> Address:
    return Address(
        id=row["id"],
        user_id=row["user_id"],
        fields=AddressFields(
            recipient_name=row["recipient_name"],
            line1=row["line1"],
            line2=row["line2"],
            city=row["city"],
            region=row["region"],
            postal_code=row["postal_code"],
            country_code=row["country_code"],
            phone_number=row["phone_number"],
            is_default_shipping=row["is_default_shipping"],
        ),
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


class PostgresAddressRepository:
    """Addresses in the `addresses` table; every lookup is scoped to its owner."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def list(self, user_id: uuid.UUID) -> list[Address]:
        """The user's addresses, the default shipping address first, then newest first."""
        rows = await self._connection.fetch(
            f"select {_ADDRESS_COLUMNS} from addresses where user_id = $1 "
            "order by is_default_shipping desc, created_at desc, id",
            user_id,
        )
        return [_address_from_row(r) for r in rows]

    async def get(
        self, user_id: uuid.UUID, address_id: uuid.UUID, *, for_update: bool = False
    ) -> Address | None:
        """The address if it exists and belongs to the user; row-locked when asked."""
        lock = " for update" if for_update else ""
        row = await self._connection.fetchrow(
            f"select {_ADDRESS_COLUMNS} from addresses where id = $1 and user_id = $2{lock}",
            address_id,
            user_id,
        )
        return None if row is None else _address_from_row(row)

    async def get_default(self, user_id: uuid.UUID) -> Address | None:
        """The user's default shipping address, if they have one."""
        row = await self._connection.fetchrow(
            f"select {_ADDRESS_COLUMNS} from addresses where user_id = $1 and is_default_shipping",
            user_id,
        )
        return None if row is None else _address_from_row(row)

    async def count(self, user_id: uuid.UUID) -> int:
        """How many addresses the user keeps."""
        value = await self._connection.fetchval(
            "select count(*) from addresses where user_id = $1", user_id
        )
        return int(value or 0)

    async def add(self, address: Address) -> None:
        """Insert a new address."""
        f = address.fields
        await self._connection.execute(
            f"insert into addresses ({_ADDRESS_COLUMNS}) "
            "values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            address.id,
            address.user_id,
            f.recipient_name,
            f.line1,
            f.line2,
            f.city,
            f.region,
            f.postal_code,
            f.country_code,
            f.phone_number,
            f.is_default_shipping,
            address.created_at,
            address.updated_at,
        )

    async def update(self, address: Address) -> None:
        """Write back the fields of an existing address."""
        f = address.fields
        await self._connection.execute(
            "update addresses set recipient_name = $3, line1 = $4, line2 = $5, city = $6, "
            "region = $7, postal_code = $8, country_code = $9, phone_number = $10, "
            "is_default_shipping = $11, updated_at = $12 where id = $1 and user_id = $2",
            address.id,
            address.user_id,
            f.recipient_name,
            f.line1,
            f.line2,
            f.city,
            f.region,
            f.postal_code,
            f.country_code,
            f.phone_number,
            f.is_default_shipping,
            address.updated_at,
        )

    async def delete(self, user_id: uuid.UUID, address_id: uuid.UUID) -> bool:
        """Remove the user's address; whether it existed."""
        status = await self._connection.execute(
            "delete from addresses where id = $1 and user_id = $2", address_id, user_id
        )
        return status == "DELETE 1"

    async def clear_default(self, user_id: uuid.UUID) -> None:
        """Make none of the user's addresses the default shipping address."""
        await self._connection.execute(
            "update addresses set is_default_shipping = false "
            "where user_id = $1 and is_default_shipping",
            user_id,
        )


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

    async def record_failure(
        self,
        key: str,
        *,
        now: datetime,
        window_seconds: float,
        max_failures: int,
        lockout_seconds: float,
    ) -> int:
        """Count one failure in the key's window (blocking it at the maximum); the count."""
        # One upsert, atomic under concurrency: a new window starts when the old one
        # (or an expired block) is over, and reaching the maximum sets the block.
        window = timedelta(seconds=window_seconds)
        lockout = timedelta(seconds=lockout_seconds)
        failures = await self._connection.fetchval(
            """
            insert into login_throttle as t (key, failures, window_start, blocked_until)
            values ($1, 1, $2::timestamptz, case when $4::int <= 1 then $2::timestamptz + $5::interval end)
            on conflict (key) do update set
                failures = case
                    when t.window_start < $2::timestamptz - $3::interval
                         and (t.blocked_until is null or t.blocked_until <= $2::timestamptz) then 1
                    else t.failures + 1 end,
                window_start = case
                    when t.window_start < $2::timestamptz - $3::interval
                         and (t.blocked_until is null or t.blocked_until <= $2::timestamptz) then $2::timestamptz
                    else t.window_start end,
                blocked_until = case
                    when t.window_start < $2::timestamptz - $3::interval
                         and (t.blocked_until is null or t.blocked_until <= $2::timestamptz) then null
                    when t.failures + 1 >= $4::int and (t.blocked_until is null or t.blocked_until <= $2::timestamptz)
                         then $2::timestamptz + $5::interval
                    else t.blocked_until end
            returning failures
            """,
            key,
            now,
            window,
            max_failures,
            lockout,
        )
        return int(failures)

    async def clear(self, key: str) -> None:
        """Forget the key's failures and any block."""
        await self._connection.execute("delete from login_throttle where key = $1", key)


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


class PostgresWishlistRepository:
    """The `wishlist_items` table."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    async def add(self, user_id: uuid.UUID, product_id: str, now: datetime) -> WishlistItem:
        """Add a product unless present; the stored item either way."""
        await self._connection.execute(
            "insert into wishlist_items (user_id, product_id, added_at) values ($1, $2, $3) "
            "on conflict do nothing",
            user_id,
            product_id,
            now,
        )
        added = await self._connection.fetchval(
            "select added_at from wishlist_items where user_id = $1 and product_id = $2",
            user_id,
            product_id,
        )
        return WishlistItem(product_id, added)

    async def get(self, user_id: uuid.UUID, product_id: str) -> WishlistItem | None:
        """The item if the product is on the wishlist."""
        added = await self._connection.fetchval(
            "select added_at from wishlist_items where user_id = $1 and product_id = $2",
            user_id,
            product_id,
        )
        return None if added is None else WishlistItem(product_id, added)

    async def remove(self, user_id: uuid.UUID, product_id: str) -> bool:
        """Remove a product; whether it was there."""
        status = await self._connection.execute(
            "delete from wishlist_items where user_id = $1 and product_id = $2",
            user_id,
            product_id,
        )
        return status == "DELETE 1"

    async def count(self, user_id: uuid.UUID) -> int:
        """How many products the wishlist holds."""
        value = await self._connection.fetchval(
            "select count(*) from wishlist_items where user_id = $1", user_id
        )
        return int(value or 0)

    async def page(
        self, user_id: uuid.UUID, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[WishlistItem]:
        """Items newest first, after a position."""
        if after is None:
            rows = await self._connection.fetch(
                "select product_id, added_at from wishlist_items where user_id = $1 "
                "order by added_at desc, product_id desc limit $2",
                user_id,
                limit,
            )
        else:
            rows = await self._connection.fetch(
                "select product_id, added_at from wishlist_items where user_id = $1 "
                "and (added_at, product_id) < ($2, $3) "
                "order by added_at desc, product_id desc limit $4",
                user_id,
                after[0],
                after[1],
                limit,
            )
        return [WishlistItem(r["product_id"], r["added_at"]) for r in rows]


class PostgresUnitOfWork(postgres.PostgresUnitOfWork):
    """Each `async with` borrows a pooled connection and wraps one transaction."""

    users: PostgresUserRepository
    sessions: PostgresSessionRepository
    addresses: PostgresAddressRepository
    action_tokens: PostgresActionTokenRepository
    outbox: PostgresOutbox
    throttle: PostgresLoginThrottle
    preferences: PostgresPreferencesRepository
    wishlist: PostgresWishlistRepository

    def _bind(self, connection: postgres.PooledConnection) -> None:
        self.users = PostgresUserRepository(connection)
        self.sessions = PostgresSessionRepository(connection)
        self.addresses = PostgresAddressRepository(connection)
        self.action_tokens = PostgresActionTokenRepository(connection)
        self.outbox = PostgresOutbox(connection)
        self.throttle = PostgresLoginThrottle(connection)
        self.preferences = PostgresPreferencesRepository(connection)
        self.wishlist = PostgresWishlistRepository(connection)
