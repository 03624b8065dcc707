"""The unit of work: one transaction on a pooled connection, with every repository bound to it."""

from __future__ import annotations

from services.common import postgres
from services.user.adapters.postgres.action_tokens import PostgresActionTokenRepository
from services.user.adapters.postgres.addresses import PostgresAddressRepository
from services.user.adapters.postgres.outbox import PostgresOutbox
from services.user.adapters.postgres.preferences import PostgresPreferencesRepository
from services.user.adapters.postgres.processed_events import PostgresProcessedEvents
from services.user.adapters.postgres.sessions import PostgresSessionRepository
from services.user.adapters.postgres.throttle import PostgresLoginThrottle
from services.user.adapters.postgres.users import PostgresUserRepository
from services.user.adapters.postgres.wishlist import PostgresWishlistRepository


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
    processed_events: PostgresProcessedEvents

    def _bind(self, connection: postgres.PooledConnection) -> None:
        self.users = PostgresUserRepository(connection, self.data_keys)
        self.sessions = PostgresSessionRepository(connection)
        self.addresses = PostgresAddressRepository(connection, self.data_keys)
        self.action_tokens = PostgresActionTokenRepository(connection)
        self.outbox = PostgresOutbox(connection)
        self.throttle = PostgresLoginThrottle(connection)
        self.preferences = PostgresPreferencesRepository(connection)
        self.wishlist = PostgresWishlistRepository(connection)
        self.processed_events = PostgresProcessedEvents(connection)
