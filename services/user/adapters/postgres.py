"""PostgreSQL adapters: the connection pool, the repositories and the unit of work."""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Any, Self

import asyncpg
import asyncpg.pool
from asyncpg.transaction import Transaction

from services.common.auth import Role
from services.user.domain.addresses import Address, AddressFields
from services.user.domain.model import (
    DuplicateUser,
    RefreshToken,
    Session,
    UniqueField,
    User,
    UserState,
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


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> Pool:
    """A connection pool; the caller closes it."""
    pool = await asyncpg.create_pool(dsn, min_size=min_size, max_size=max_size)
    if pool is None:  # only None when used without awaiting, which we never do
        raise RuntimeError("asyncpg returned no pool")
    return pool


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
        """Insert a new user; raises DuplicateUser when the email or username is taken."""
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


class PostgresUnitOfWork:
    """Each `async with` borrows a pooled connection and wraps one transaction."""

    users: PostgresUserRepository
    sessions: PostgresSessionRepository
    addresses: PostgresAddressRepository

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._connection: asyncpg.pool.PoolConnectionProxy[asyncpg.Record] | None = None
        self._transaction: Transaction | None = None
        self._committed = False

    async def __aenter__(self) -> Self:
        """Begin the transaction."""
        if self._connection is not None:
            raise RuntimeError("a unit of work runs one transaction at a time")
        connection = await self._pool.acquire()
        try:
            transaction = connection.transaction()
            await transaction.start()
        except BaseException:
            await self._pool.release(connection)
            raise
        self._connection, self._transaction, self._committed = connection, transaction, False
        self.users = PostgresUserRepository(connection)
        self.sessions = PostgresSessionRepository(connection)
        self.addresses = PostgresAddressRepository(connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back unless committed, and release the connection."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if not self._committed and self._transaction is not None:
                await self._transaction.rollback()
        finally:
            await self._pool.release(connection)

    async def commit(self) -> None:
        """Make the transaction's writes durable."""
        if self._transaction is None or self._connection is None:
            raise RuntimeError("commit outside the unit of work")
        await self._transaction.commit()
        self._committed = True
