"""Every port the use cases depend on: repositories, the unit of work, hashing, tokens, mail."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Protocol

from services.common.identity import Role
from services.common.transaction import Transaction
from services.user.domain.addresses import Address
from services.user.domain.emails import EmailKind, OutgoingEmail
from services.user.domain.model import (
    AccountDeleted,
    ActionToken,
    FailureCount,
    Preferences,
    RefreshState,
    RefreshToken,
    Session,
    SessionView,
    TokenPurpose,
    User,
    UserState,
    WishlistItem,
)

type Sleep = Callable[[float], Awaitable[None]]
"""Waits without blocking the loop (asyncio.sleep); tests pass one that records the wait."""
type ExportSource[T] = Callable[[uuid.UUID], Awaitable[T]]
"""A peer service's records of a user for their export; raises Unavailable if it cannot say."""


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

    async def username_taken(self, username: str) -> bool:
        """Whether an account or a reservation holds this username (case-insensitively)."""
        ...

    async def erase(self, user: User, tombstone: User, now: datetime) -> None:
        """Replace the account by its tombstone and delete everything personal it owns."""
        ...

    async def reserve_username(self, username: str, now: datetime) -> bool:
        """Hold a username no account has; False when an account or reservation holds it."""
        ...

    async def set_password_hash(
        self, user_id: uuid.UUID, password_hash: str, now: datetime
    ) -> None:
        """Store a new password hash."""
        ...

    async def mark_email_verified(self, user_id: uuid.UUID, email: str, now: datetime) -> bool:
        """Verify the account's email if it still is `email`; whether it changed."""
        ...

    async def update_profile(self, user: User) -> None:
        """Write back the profile fields: display name, bio, avatar URL, phone number."""
        ...

    async def set_roles(self, user_id: uuid.UUID, roles: frozenset[Role], now: datetime) -> None:
        """Replace the account's roles."""
        ...

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
        ...

    async def search(
        self,
        *,
        query: str,
        role: Role | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[User]:
        """Users matching a prefix of username, display name or email, newest first."""
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

    async def find_token(self, token_hash: str) -> RefreshState | None:
        """The refresh token with this hash, row-locked, with its session's state."""
        ...

    async def rotate(self, old: RefreshToken, new: RefreshToken, now: datetime) -> None:
        """Record that `old` was replaced by `new`, and that the session was used."""
        ...

    async def revoke(self, session_id: uuid.UUID, reason: str, now: datetime) -> bool:
        """End one session and its tokens; whether it was live."""
        ...

    async def revoke_all(
        self, user_id: uuid.UUID, reason: str, now: datetime, *, keep: uuid.UUID | None = None
    ) -> int:
        """End every live session of a user except `keep`; how many ended."""
        ...

    async def list_live(self, user_id: uuid.UUID, now: datetime) -> list[SessionView]:
        """The user's sessions that are not revoked and hold an unexpired token."""
        ...


class ActionTokenRepository(Protocol):
    """Single-use mailed tokens, stored by hash."""

    async def add(self, token: ActionToken) -> None:
        """Store a new token."""
        ...

    async def invalidate(self, user_id: uuid.UUID, purpose: TokenPurpose, now: datetime) -> None:
        """Use up the user's earlier unused tokens of this purpose."""
        ...

    async def consume(
        self, token_hash: str, purpose: TokenPurpose, now: datetime
    ) -> ActionToken | None:
        """Mark an unused, unexpired token used and return it; None if there is none."""
        ...

    async def latest_issue_time(self, user_id: uuid.UUID, purpose: TokenPurpose) -> datetime | None:
        """When the user's newest token of this purpose was issued."""
        ...


class Outbox(Protocol):
    """Mail and events queued in the same transaction as the change they report."""

    async def add(self, message: OutgoingEmail) -> None:
        """Queue a mail for the relay."""
        ...

    async def queued_since(self, user_id: uuid.UUID, kind: EmailKind, since: datetime) -> bool:
        """Whether a mail of this kind to this user was queued at or after `since`."""
        ...

    async def add_event(self, event: AccountDeleted) -> None:
        """Queue an event for the other services (the event relay publishes it)."""
        ...


class LoginThrottle(Protocol):
    """Failed sign-in counters per key, in windows."""

    async def blocked_until(self, keys: list[str], now: datetime) -> datetime | None:
        """The latest time any of the keys is blocked until, if one is blocked now."""
        ...

    async def count_for_update(self, key: str, now: datetime) -> FailureCount:
        """The key's count, locked until the transaction ends; an empty one if new."""
        ...

    async def save(self, count: FailureCount) -> None:
        """Write back a count read with count_for_update."""
        ...

    async def clear(self, key: str) -> None:
        """Forget the key's failures and any block."""
        ...


class PreferencesRepository(Protocol):
    """Stores users' preferences."""

    async def get(self, user_id: uuid.UUID) -> Preferences | None:
        """The stored preferences, or None when the user never set any."""
        ...

    async def put(self, preferences: Preferences, now: datetime) -> None:
        """Insert or replace the user's preferences."""
        ...


class WishlistRepository(Protocol):
    """Stores users' wishlists."""

    async def add(self, user_id: uuid.UUID, product_id: str, now: datetime) -> WishlistItem:
        """Add a product unless present; the stored item either way."""
        ...

    async def get(self, user_id: uuid.UUID, product_id: str) -> WishlistItem | None:
        """The item if the product is on the wishlist."""
        ...

    async def remove(self, user_id: uuid.UUID, product_id: str) -> bool:
        """Remove a product; whether it was there."""
        ...

    async def count(self, user_id: uuid.UUID) -> int:
        """How many products the wishlist holds."""
        ...

    async def page(
        self, user_id: uuid.UUID, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[WishlistItem]:
        """Items newest first, after a position."""
        ...


class ProcessedEvents(Protocol):
    """The order events already acted on, so a redelivered one acts no more."""

    async def remember(self, event_id: str, event_type: str, now: datetime) -> bool:
        """Record the event as processed; False when it already was."""
        ...


class UnitOfWork(Transaction, Protocol):
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

    @property
    def action_tokens(self) -> ActionTokenRepository:
        """The mailed single-use tokens."""
        ...

    @property
    def outbox(self) -> Outbox:
        """The email outbox."""
        ...

    @property
    def throttle(self) -> LoginThrottle:
        """The failed sign-in counters."""
        ...

    @property
    def preferences(self) -> PreferencesRepository:
        """The users' preferences."""
        ...

    @property
    def wishlist(self) -> WishlistRepository:
        """The users' wishlists."""
        ...

    @property
    def processed_events(self) -> ProcessedEvents:
        """The order events already turned into mail."""
        ...


class PasswordHasher(Protocol):
    """Hashes and verifies passwords without blocking the event loop."""

    async def hash(self, password: str) -> str:
        """A salted hash of `password` in PHC string form."""
        ...

    async def verify(self, password_hash: str, password: str) -> bool:
        """Whether `password` matches `password_hash`."""
        ...

    def needs_rehash(self, password_hash: str) -> bool:
        """Whether the hash was made with other parameters than the current ones."""
        ...


class EmailSender(Protocol):
    """Delivers one mail; raises when it could not, so the relay retries."""

    async def send(self, message: OutgoingEmail) -> None:
        """Deliver `message`."""
        ...


class ProductCatalog(Protocol):
    """The product service, as the wishlist sees it."""

    async def exists(self, product_id: str) -> bool:
        """Whether the product exists and is visible to buyers."""
        ...


class TokenIssuer(Protocol):
    """Signs access tokens."""

    @property
    def ttl_seconds(self) -> int:
        """How long an access token stays valid."""
        ...

    def issue(self, user: User, session_id: uuid.UUID, now: datetime) -> str:
        """A signed access token for `user` in session `session_id`, issued at `now`."""
        ...
