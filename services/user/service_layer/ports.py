"""The ports handlers depend on: repositories, a unit of work, hashing and token issuing."""

from __future__ import annotations

import uuid
from types import TracebackType
from typing import Protocol, Self

from services.user.domain.addresses import Address
from services.user.domain.model import Session, User


class UserRepository(Protocol):
    """Stores and finds User aggregates."""

    async def add(self, user: User) -> None:
        """Insert a new user; raises DuplicateUser when the email or username is taken."""
        ...

    async def add_if_absent(self, user: User) -> bool:
        """Insert a user unless the email or username exists; whether it was inserted."""
        ...

    async def get(self, user_id: uuid.UUID) -> User | None:
        """The user with this id, if any."""
        ...

    async def get_by_email(self, email: str) -> User | None:
        """The user with this email (compared case-insensitively), if any."""
        ...

    async def get_for_update(self, user_id: uuid.UUID) -> User | None:
        """The user with this id, row-locked until the transaction ends, if any."""
        ...


class AddressRepository(Protocol):
    """Stores and finds the addresses of users' address books."""

    async def list(self, user_id: uuid.UUID) -> list[Address]:
        """The user's addresses, the default shipping address first, then newest first."""
        ...

    async def get(
        self, user_id: uuid.UUID, address_id: uuid.UUID, *, for_update: bool = False
    ) -> Address | None:
        """The address if it exists and belongs to the user; row-locked when asked."""
        ...

    async def get_default(self, user_id: uuid.UUID) -> Address | None:
        """The user's default shipping address, if they have one."""
        ...

    async def count(self, user_id: uuid.UUID) -> int:
        """How many addresses the user keeps."""
        ...

    async def add(self, address: Address) -> None:
        """Insert a new address."""
        ...

    async def update(self, address: Address) -> None:
        """Write back the fields of an existing address."""
        ...

    async def delete(self, user_id: uuid.UUID, address_id: uuid.UUID) -> bool:
        """Remove the user's address; whether it existed."""
        ...

    async def clear_default(self, user_id: uuid.UUID) -> None:
        """Make none of the user's addresses the default shipping address."""
        ...


class SessionRepository(Protocol):
    """Stores sessions and their refresh tokens."""

    async def add(self, session: Session) -> None:
        """Insert a new session with its refresh tokens."""
        ...

    async def get(self, session_id: uuid.UUID) -> Session | None:
        """The session with this id and its refresh tokens, if any."""
        ...


class UnitOfWork(Protocol):
    """A transaction per `async with`: rolled back on exit unless commit() ran.

    One instance serves one request and may open several transactions one after another
    (never two at once), so a handler can keep slow work such as hashing between them.
    """

    @property
    def users(self) -> UserRepository:
        """The users, seen through the open transaction."""
        ...

    @property
    def sessions(self) -> SessionRepository:
        """The sessions, seen through the open transaction."""
        ...

    @property
    def addresses(self) -> AddressRepository:
        """The address books, seen through the open transaction."""
        ...

    async def __aenter__(self) -> Self:
        """Begin the transaction."""
        ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back unless committed, and release the connection."""
        ...

    async def commit(self) -> None:
        """Make the transaction's writes durable."""
        ...


class PasswordHasher(Protocol):
    """Hashes and verifies passwords without blocking the event loop."""

    async def hash(self, password: str) -> str:
        """A salted hash of `password` in PHC string form."""
        ...

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether `password` matches `password_hash`."""
        ...


class TokenIssuer(Protocol):
    """Signs access tokens."""

    @property
    def ttl_seconds(self) -> int:
        """How long an access token stays valid."""
        ...

    def issue(self, user: User, session_id: uuid.UUID) -> str:
        """A signed access token for `user` in session `session_id`."""
        ...
