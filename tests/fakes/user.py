"""In-memory fakes of every port of the user service, for unit tests of its use cases.

`FakeUserStore` holds the tables; `FakeUnitOfWork` gives each `async with` a copy of them
and keeps the copy only on commit(), so a use case that raises after a write leaves the
store as it was, as a rolled-back transaction would.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import TracebackType
from typing import Self

from services.common.clock import Clock
from services.common.identity import Role
from services.user.domain.addresses import Address
from services.user.domain.emails import EmailKind, MailPolicy, OutgoingEmail
from services.user.domain.model import (
    AccountDeleted,
    ActionToken,
    DuplicateUser,
    FailureCount,
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
from tests.fakes.clock import ManualClock


@dataclass
class QueuedEmail:
    """A mail in the fake outbox, with the time the unit of work's clock gave it."""

    message: OutgoingEmail
    queued_at: datetime


@dataclass
class FakeUserStore:
    """The user service's tables, in memory."""

    users: dict[uuid.UUID, User] = field(default_factory=dict)
    reserved_usernames: set[str] = field(default_factory=set)
    addresses: dict[uuid.UUID, Address] = field(default_factory=dict)
    sessions: dict[uuid.UUID, Session] = field(default_factory=dict)
    action_tokens: dict[uuid.UUID, tuple[ActionToken, datetime | None]] = field(
        default_factory=dict
    )
    outbox: list[QueuedEmail] = field(default_factory=list)
    throttle: dict[str, FailureCount] = field(default_factory=dict)
    preferences: dict[uuid.UUID, Preferences] = field(default_factory=dict)
    wishlist: dict[uuid.UUID, dict[str, WishlistItem]] = field(default_factory=dict)
    processed_events: dict[str, str] = field(default_factory=dict)
    events: list[AccountDeleted] = field(default_factory=list)

    def mail_to(self, address: str, kind: EmailKind | None = None) -> list[OutgoingEmail]:
        """The queued mail to an address, oldest first, of one kind if given."""
        return [
            q.message
            for q in self.outbox
            if q.message.to == address and (kind is None or q.message.kind is kind)
        ]


class FakeUserRepository:
    """Users and username reservations, compared case-insensitively like the SQL."""

    def __init__(self, store: FakeUserStore) -> None:
        self._store = store

    def _taken(self, field_name: str, value: str) -> bool:
        return any(
            getattr(u, field_name).lower() == value.lower() for u in self._store.users.values()
        )

    async def add(self, user: User) -> None:
        if user.username.lower() in self._store.reserved_usernames or self._taken(
            "username", user.username
        ):
            raise DuplicateUser(UniqueField.USERNAME)
        if self._taken("email", user.email):
            raise DuplicateUser(UniqueField.EMAIL)
        self._store.users[user.id] = copy.deepcopy(user)

    async def add_if_absent(self, user: User) -> bool:
        if self._taken("email", user.email) or self._taken("username", user.username):
            return False
        self._store.users[user.id] = copy.deepcopy(user)
        return True

    async def get(self, user_id: uuid.UUID) -> User | None:
        found = self._store.users.get(user_id)
        return copy.deepcopy(found)

    async def get_by_email(self, email: str) -> User | None:
        for user in self._store.users.values():
            if user.email.lower() == email.lower():
                return copy.deepcopy(user)
        return None

    async def get_for_update(self, user_id: uuid.UUID) -> User | None:
        return await self.get(user_id)

    async def erase(self, user: User, tombstone: User, now: datetime) -> None:
        # The SQL keeps the tombstone but never hands it out: here it simply goes.
        store = self._store
        del store.users[user.id]
        store.reserved_usernames.add(user.username.lower())
        store.sessions = {k: v for k, v in store.sessions.items() if v.user_id != user.id}
        store.addresses = {k: v for k, v in store.addresses.items() if v.user_id != user.id}
        store.preferences.pop(user.id, None)
        store.wishlist.pop(user.id, None)
        store.outbox = [q for q in store.outbox if q.message.user_id != user.id]

    async def username_taken(self, username: str) -> bool:
        return username.lower() in self._store.reserved_usernames or self._taken(
            "username", username
        )

    async def reserve_username(self, username: str, now: datetime) -> bool:
        if await self.username_taken(username):
            return False
        self._store.reserved_usernames.add(username.lower())
        return True

    async def set_password_hash(
        self, user_id: uuid.UUID, password_hash: str, now: datetime
    ) -> None:
        user = self._store.users[user_id]
        user.password_hash, user.updated_at = password_hash, now

    async def mark_email_verified(self, user_id: uuid.UUID, email: str, now: datetime) -> bool:
        user = self._store.users.get(user_id)
        if user is None or user.email.lower() != email.lower() or user.email_verified:
            return False
        user.email_verified, user.updated_at = True, now
        return True

    async def update_profile(self, user: User) -> None:
        stored = self._store.users[user.id]
        for name in ("display_name", "bio", "avatar_url", "phone_number", "updated_at"):
            setattr(stored, name, getattr(user, name))

    async def set_roles(self, user_id: uuid.UUID, roles: frozenset[Role], now: datetime) -> None:
        user = self._store.users[user_id]
        user.roles, user.updated_at = roles, now

    async def set_state(
        self,
        user_id: uuid.UUID,
        state: UserState,
        *,
        by: uuid.UUID | None,
        reason: str | None,
        now: datetime,
    ) -> None:
        user = self._store.users[user_id]
        user.state, user.updated_at = state, now

    async def search(
        self,
        *,
        query: str,
        role: Role | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[User]:
        def matches(user: User) -> bool:
            names = (user.username.lower(), user.display_name.lower(), user.email.lower())
            return (
                (not query or any(n.startswith(query.lower()) for n in names))
                and (role is None or role in user.roles)
                and (after is None or (user.created_at, user.id) < after)
            )

        found = sorted(
            (u for u in self._store.users.values() if matches(u)),
            key=lambda u: (u.created_at, u.id),
            reverse=True,
        )
        return copy.deepcopy(found[:limit])


class FakeAddressRepository:
    """Address books; every lookup is scoped to its owner."""

    def __init__(self, store: FakeUserStore) -> None:
        self._store = store

    def _book(self, user_id: uuid.UUID) -> list[Address]:
        return [a for a in self._store.addresses.values() if a.user_id == user_id]

    async def list(self, user_id: uuid.UUID) -> list[Address]:
        book = sorted(self._book(user_id), key=lambda a: a.created_at, reverse=True)
        return copy.deepcopy(sorted(book, key=lambda a: not a.is_default_shipping))

    async def get(
        self, user_id: uuid.UUID, address_id: uuid.UUID, *, for_update: bool = False
    ) -> Address | None:
        found = self._store.addresses.get(address_id)
        return copy.deepcopy(found) if found is not None and found.user_id == user_id else None

    async def get_default(self, user_id: uuid.UUID) -> Address | None:
        defaults = [a for a in self._book(user_id) if a.is_default_shipping]
        return copy.deepcopy(defaults[0]) if defaults else None

    async def count(self, user_id: uuid.UUID) -> int:
        return len(self._book(user_id))

    async def add(self, address: Address) -> None:
        self._store.addresses[address.id] = copy.deepcopy(address)

    async def update(self, address: Address) -> None:
        self._store.addresses[address.id] = copy.deepcopy(address)

    async def delete(self, user_id: uuid.UUID, address_id: uuid.UUID) -> bool:
        found = self._store.addresses.get(address_id)
        if found is None or found.user_id != user_id:
            return False
        del self._store.addresses[address_id]
        return True

    async def clear_default(self, user_id: uuid.UUID) -> None:
        for address in self._book(user_id):
            address.fields = replace(address.fields, is_default_shipping=False)


class FakeSessionRepository:
    """Sessions with their refresh tokens."""

    def __init__(self, store: FakeUserStore) -> None:
        self._store = store

    async def add(self, session: Session) -> None:
        self._store.sessions[session.id] = copy.deepcopy(session)

    async def get(self, session_id: uuid.UUID) -> Session | None:
        return copy.deepcopy(self._store.sessions.get(session_id))

    async def find_token(self, token_hash: str) -> RefreshState | None:
        for session in self._store.sessions.values():
            for token in session.tokens:
                if token.token_hash == token_hash:
                    return RefreshState(copy.deepcopy(token), session.revoked_at is not None)
        return None

    async def rotate(self, old: RefreshToken, new: RefreshToken, now: datetime) -> None:
        session = self._store.sessions[old.family_id]
        for token in session.tokens:
            if token.id == old.id:
                token.replaced_by = new.id
        session.tokens.append(copy.deepcopy(new))
        session.last_used_at = now

    async def revoke(self, session_id: uuid.UUID, reason: str, now: datetime) -> bool:
        session = self._store.sessions.get(session_id)
        if session is None or session.revoked_at is not None:
            return False
        session.revoked_at = now
        for token in session.tokens:
            token.revoked_at = token.revoked_at or now
        return True

    async def revoke_all(
        self, user_id: uuid.UUID, reason: str, now: datetime, *, keep: uuid.UUID | None = None
    ) -> int:
        ended = 0
        for session in list(self._store.sessions.values()):
            if session.user_id == user_id and session.id != keep:
                ended += await self.revoke(session.id, reason, now)
        return ended

    async def list_live(self, user_id: uuid.UUID, now: datetime) -> list[SessionView]:
        live = [
            s
            for s in self._store.sessions.values()
            if s.user_id == user_id
            and s.revoked_at is None
            and any(
                t.replaced_by is None and t.revoked_at is None and t.expires_at > now
                for t in s.tokens
            )
        ]
        live.sort(key=lambda s: s.created_at, reverse=True)
        return [
            SessionView(s.id, s.user_agent, s.client_ip, s.created_at, s.last_used_at) for s in live
        ]


class FakeActionTokenRepository:
    """Mailed single-use tokens, each with the time it was used."""

    def __init__(self, store: FakeUserStore) -> None:
        self._store = store

    async def add(self, token: ActionToken) -> None:
        self._store.action_tokens[token.id] = (token, None)

    async def invalidate(self, user_id: uuid.UUID, purpose: TokenPurpose, now: datetime) -> None:
        for token_id, (token, used_at) in list(self._store.action_tokens.items()):
            if token.user_id == user_id and token.purpose is purpose and used_at is None:
                self._store.action_tokens[token_id] = (token, now)

    async def consume(
        self, token_hash: str, purpose: TokenPurpose, now: datetime
    ) -> ActionToken | None:
        for token_id, (token, used_at) in self._store.action_tokens.items():
            if (
                token.token_hash == token_hash
                and token.purpose is purpose
                and used_at is None
                and token.expires_at > now
            ):
                self._store.action_tokens[token_id] = (token, now)
                return token
        return None

    async def latest_issue_time(self, user_id: uuid.UUID, purpose: TokenPurpose) -> datetime | None:
        times = [
            t.created_at
            for t, _ in self._store.action_tokens.values()
            if t.user_id == user_id and t.purpose is purpose
        ]
        return max(times, default=None)


class FakeOutbox:
    """The outbox: queued mail, stamped by the clock the fake unit of work was given."""

    def __init__(self, store: FakeUserStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def add(self, message: OutgoingEmail) -> None:
        self._store.outbox.append(QueuedEmail(message, self._clock.now()))

    async def queued_since(self, user_id: uuid.UUID, kind: EmailKind, since: datetime) -> bool:
        return any(
            q.message.user_id == user_id and q.message.kind is kind and q.queued_at >= since
            for q in self._store.outbox
        )

    async def add_event(self, event: AccountDeleted) -> None:
        self._store.events.append(event)


class FakeLoginThrottle:
    """Failed sign-in counts per key."""

    def __init__(self, store: FakeUserStore) -> None:
        self._store = store

    async def blocked_until(self, keys: list[str], now: datetime) -> datetime | None:
        blocks = [
            c.blocked_until
            for k in keys
            if (c := self._store.throttle.get(k)) is not None and c.blocked_at(now)
        ]
        return max((b for b in blocks if b is not None), default=None)

    async def count_for_update(self, key: str, now: datetime) -> FailureCount:
        return self._store.throttle.get(key) or FailureCount(key, 0, now)

    async def save(self, count: FailureCount) -> None:
        self._store.throttle[count.key] = count

    async def clear(self, key: str) -> None:
        self._store.throttle.pop(key, None)


class FakePreferencesRepository:
    """Preferences per user."""

    def __init__(self, store: FakeUserStore) -> None:
        self._store = store

    async def get(self, user_id: uuid.UUID) -> Preferences | None:
        return self._store.preferences.get(user_id)

    async def put(self, preferences: Preferences, now: datetime) -> None:
        self._store.preferences[preferences.user_id] = preferences


class FakeWishlistRepository:
    """Wishlists per user."""

    def __init__(self, store: FakeUserStore) -> None:
        self._store = store

    async def add(self, user_id: uuid.UUID, product_id: str, now: datetime) -> WishlistItem:
        items = self._store.wishlist.setdefault(user_id, {})
        return items.setdefault(product_id, WishlistItem(product_id, now))

    async def get(self, user_id: uuid.UUID, product_id: str) -> WishlistItem | None:
        return self._store.wishlist.get(user_id, {}).get(product_id)

    async def remove(self, user_id: uuid.UUID, product_id: str) -> bool:
        return self._store.wishlist.get(user_id, {}).pop(product_id, None) is not None

    async def count(self, user_id: uuid.UUID) -> int:
        return len(self._store.wishlist.get(user_id, {}))

    async def page(
        self, user_id: uuid.UUID, *, after: tuple[datetime, str] | None, limit: int
    ) -> list[WishlistItem]:
        items = sorted(
            self._store.wishlist.get(user_id, {}).values(),
            key=lambda i: (i.added_at, i.product_id),
            reverse=True,
        )
        if after is not None:
            items = [i for i in items if (i.added_at, i.product_id) < after]
        return items[:limit]


class FakeProcessedEvents:
    """Processed order event ids, each with its type."""

    def __init__(self, store: FakeUserStore) -> None:
        self._store = store

    async def remember(self, event_id: str, event_type: str, now: datetime) -> bool:
        if event_id in self._store.processed_events:
            return False
        self._store.processed_events[event_id] = event_type
        return True


class FakeUnitOfWork:
    """A transaction over a copy of the store, kept only when commit() runs."""

    def __init__(self, store: FakeUserStore, *, clock: Clock) -> None:
        self.store = store
        self._clock = clock
        self.commits = 0
        self._working: FakeUserStore | None = None
        self._committed = False

    def _bind(self, working: FakeUserStore) -> None:
        self.users = FakeUserRepository(working)
        self.sessions = FakeSessionRepository(working)
        self.addresses = FakeAddressRepository(working)
        self.action_tokens = FakeActionTokenRepository(working)
        self.outbox = FakeOutbox(working, self._clock)
        self.throttle = FakeLoginThrottle(working)
        self.preferences = FakePreferencesRepository(working)
        self.wishlist = FakeWishlistRepository(working)
        self.processed_events = FakeProcessedEvents(working)

    async def __aenter__(self) -> Self:
        if self._working is not None:
            raise RuntimeError("a unit of work opens one transaction at a time")
        self._working = copy.deepcopy(self.store)
        self._committed = False
        self._bind(self._working)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        working, self._working = self._working, None
        if self._committed and working is not None:
            self.store.__dict__.update(working.__dict__)

    async def commit(self) -> None:
        self._committed = True
        self.commits += 1


class ReversingHasher:
    """A cheap stand-in for argon2: the "hash" is the reversed password, with a tag."""

    def __init__(self, tag: str = "v1") -> None:
        self.tag = tag
        self.hashed = 0
        self.verified = 0

    async def hash(self, password: str) -> str:
        self.hashed += 1
        return f"{self.tag}${password[::-1]}"

    async def verify(self, password_hash: str, password: str) -> bool:
        self.verified += 1
        return password_hash.split("$", 1)[1] == password[::-1]

    def needs_rehash(self, password_hash: str) -> bool:
        return not password_hash.startswith(f"{self.tag}$")


class RecordingSender:
    """An email sender that keeps what it was given."""

    def __init__(self) -> None:
        self.sent: list[OutgoingEmail] = []

    async def send(self, message: OutgoingEmail) -> None:
        self.sent.append(message)


class FakeCatalog:
    """The product catalog: the products that exist, and how often it was asked."""

    def __init__(self, *products: str) -> None:
        self.products = set(products)
        self.asked = 0

    async def exists(self, product_id: str) -> bool:
        self.asked += 1
        return product_id in self.products


class FakeTokenIssuer:
    """Issues readable access tokens: "access:<user>:<session>:<roles>:<issued at>"."""

    ttl_seconds = 900

    def issue(self, user: User, session_id: uuid.UUID, now: datetime) -> str:
        roles = ",".join(sorted(r.value for r in user.roles))
        return f"access:{user.id}:{session_id}:{roles}:{now.isoformat()}"


class RecordingSleep:
    """A sleep that returns at once and records how long it was asked to wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


class UserWorld:
    """The user service's use cases wired to fakes: a store, a manual clock and the ports."""

    def __init__(self, clock: ManualClock | None = None) -> None:
        self.clock = clock or ManualClock()
        self.store = FakeUserStore()
        self.hasher = ReversingHasher()
        self.issuer = FakeTokenIssuer()
        self.catalog = FakeCatalog()
        self.sleep = RecordingSleep()
        self.mail = MailPolicy(base_url="https://shop.example")

    def uow(self) -> FakeUnitOfWork:
        """A fresh unit of work over the store, as the servicer makes one per request."""
        return FakeUnitOfWork(self.store, clock=self.clock)

    def user(self, email: str) -> User:
        """The stored account with this email."""
        return next(u for u in self.store.users.values() if u.email == email)
