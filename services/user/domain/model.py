"""The User aggregate and the sessions its sign-ins open."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum

from services.common.identity import Role


class UserState(StrEnum):
    """The lifecycle state of an account, as stored."""

    ACTIVE = "active"
    SUSPENDED = "suspended"
    # The account was deleted by its owner: a tombstone without personal data.
    DELETED = "deleted"


class UniqueField(StrEnum):
    """The fields of a user that no two accounts may share."""

    EMAIL = "email"
    USERNAME = "username"


class DuplicateUser(Exception):
    """Another account already holds this email or username."""

    def __init__(self, field: UniqueField) -> None:
        super().__init__(f"{field.value} is taken")
        self.field = field


@dataclass
class User:
    """One account on the marketplace together with its public profile."""

    id: uuid.UUID
    email: str
    username: str
    password_hash: str
    display_name: str
    roles: frozenset[Role]
    email_verified: bool
    state: UserState
    created_at: datetime
    updated_at: datetime
    bio: str = ""
    avatar_url: str = ""
    phone_number: str = ""

    @classmethod
    def register(
        cls,
        *,
        email: str,
        username: str,
        password_hash: str,
        display_name: str,
        now: datetime,
        roles: frozenset[Role] = frozenset({Role.CUSTOMER}),
        email_verified: bool = False,
    ) -> User:
        """A new active account; customers start with an unverified email."""
        return cls(
            id=uuid.uuid4(),
            email=email,
            username=username,
            password_hash=password_hash,
            display_name=display_name,
            roles=roles,
            email_verified=email_verified,
            state=UserState.ACTIVE,
            created_at=now,
            updated_at=now,
        )

    @property
    def can_sign_in(self) -> bool:
        """Whether the account may start sessions."""
        return self.state is UserState.ACTIVE

    def tombstone(self, now: datetime) -> User:
        """The account as it stays after deletion: its id and dates, no personal data.

        The email becomes a placeholder under the reserved .invalid domain, so the real
        address is free for a new account; the username gives way to one derived from
        the id (the old one stays reserved, see the user repository's erase). The
        password hash is no PHC string, so no password ever verifies against it.
        """
        return replace(
            self,
            email=f"deleted-{self.id.hex}@deleted.invalid",
            username=f"deleted-{self.id.hex[:24]}",
            password_hash="!deleted",
            display_name="",
            bio="",
            avatar_url="",
            phone_number="",
            email_verified=False,
            roles=frozenset({Role.CUSTOMER}),
            state=UserState.DELETED,
            updated_at=now,
        )


@dataclass(frozen=True)
class AccountDeleted:
    """The event announcing a deletion to the other services (user.deleted)."""

    event_id: uuid.UUID
    user_id: uuid.UUID
    occurred_at: datetime


def hash_token(raw: str) -> str:
    """The sha256 hex digest under which an opaque token is stored."""
    return hashlib.sha256(raw.encode()).hexdigest()


@dataclass
class RefreshToken:
    """One refresh token of a session, known to the database only by its hash."""

    id: uuid.UUID
    family_id: uuid.UUID
    user_id: uuid.UUID
    token_hash: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None = None
    replaced_by: uuid.UUID | None = None


@dataclass
class Session:
    """One sign-in on one device: a family of refresh tokens descending from one Login."""

    id: uuid.UUID
    user_id: uuid.UUID
    user_agent: str
    client_ip: str | None
    created_at: datetime
    last_used_at: datetime
    revoked_at: datetime | None = None
    tokens: list[RefreshToken] = field(default_factory=list)

    @classmethod
    def start(
        cls,
        *,
        user_id: uuid.UUID,
        user_agent: str,
        client_ip: str | None,
        refresh_token: str,
        refresh_ttl: timedelta,
        now: datetime,
    ) -> Session:
        """Open a session whose first refresh token is `refresh_token`."""
        session_id = uuid.uuid4()
        first = RefreshToken(
            id=uuid.uuid4(),
            family_id=session_id,
            user_id=user_id,
            token_hash=hash_token(refresh_token),
            created_at=now,
            expires_at=now + refresh_ttl,
        )
        return cls(
            id=session_id,
            user_id=user_id,
            user_agent=user_agent,
            client_ip=client_ip,
            created_at=now,
            last_used_at=now,
            tokens=[first],
        )


class TokenPurpose(StrEnum):
    """What a mailed single-use token is for."""

    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"


@dataclass(frozen=True)
class ActionToken:
    """A single-use token mailed to a user; only its sha256 is stored."""

    id: uuid.UUID
    user_id: uuid.UUID
    purpose: TokenPurpose
    token_hash: str
    email: str
    created_at: datetime
    expires_at: datetime

    @classmethod
    def issue(
        cls,
        *,
        user_id: uuid.UUID,
        purpose: TokenPurpose,
        raw_token: str,
        email: str,
        ttl: timedelta,
        now: datetime,
    ) -> ActionToken:
        """A new token for `raw_token`, valid for `ttl`."""
        return cls(uuid.uuid4(), user_id, purpose, hash_token(raw_token), email, now, now + ttl)


@dataclass(frozen=True)
class SessionView:
    """A live session as ListSessions shows it."""

    id: uuid.UUID
    user_agent: str
    client_ip: str | None
    created_at: datetime
    last_used_at: datetime


@dataclass(frozen=True)
class RefreshState:
    """A presented refresh token with the state of its session, read under a row lock."""

    token: RefreshToken
    session_revoked: bool


@dataclass(frozen=True)
class ThrottlePolicy:
    """How failed sign-ins are slowed and then refused for a while."""

    window: timedelta
    account_max_failures: int
    client_max_failures: int
    lockout: timedelta
    slowdown_after: int
    slowdown_step: timedelta
    slowdown_max: timedelta

    def delay_after(self, failures: int, max_failures: int) -> timedelta:
        """How long to hold a failed answer after `failures` of at most `max_failures`.

        The last failures before a block are slowed, doubling each time: an account from
        its `slowdown_after`-th failure, a client the same distance before its own block.
        Guessing gets slow long before the block, while a person who mistypes once or
        twice waits for nothing.
        """
        start = max(1, max_failures - (self.account_max_failures - self.slowdown_after))
        if failures < start:
            return timedelta(0)
        steps = min(failures - start, 16)
        delay: timedelta = self.slowdown_step * (2**steps)
        return min(self.slowdown_max, delay)


@dataclass(frozen=True)
class FailureCount:
    """The failed sign-ins of one throttle key in its current window, and its block."""

    key: str
    failures: int
    window_start: datetime
    blocked_until: datetime | None = None

    def blocked_at(self, now: datetime) -> bool:
        """Whether sign-ins under this key are refused at `now`."""
        return self.blocked_until is not None and self.blocked_until > now

    def after_failure(
        self, now: datetime, *, window: timedelta, max_failures: int, lockout: timedelta
    ) -> FailureCount:
        """The count with one more failure at `now`.

        A new window starts once the old one is over and no block holds; reaching
        `max_failures` blocks the key for `lockout`. A block is never extended by the
        failures it refuses, so it always ends.
        """
        blocked = self.blocked_at(now)
        if self.window_start < now - window and not blocked:
            failures, window_start, blocked_until = 1, now, None
        else:
            failures, window_start, blocked_until = (
                self.failures + 1,
                self.window_start,
                self.blocked_until,
            )
        if failures >= max_failures and not blocked:
            blocked_until = now + lockout
        return FailureCount(self.key, failures, window_start, blocked_until)


@dataclass(frozen=True)
class Preferences:
    """A user's typed settings; users who never chose get the defaults."""

    user_id: uuid.UUID
    language: str = "en"
    currency_code: str = "USD"
    marketing_opt_in: bool = False
    notification_channels: tuple[str, ...] = ("email",)


@dataclass(frozen=True)
class WishlistItem:
    """A product a user keeps for later."""

    product_id: str
    added_at: datetime
