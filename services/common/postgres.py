"""PostgreSQL for every service: pools whose every wait is bounded, and the unit-of-work base."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self, override

import asyncpg
from asyncpg.pool import PoolAcquireContext, PoolConnectionProxy
from asyncpg.transaction import Transaction

type Connection = asyncpg.Connection[asyncpg.Record]
# What a unit of work's repositories run their statements on.
type PooledConnection = PoolConnectionProxy[asyncpg.Record]
# What a repository accepts: a pooled connection, or a direct one in tools and tests.
type AnyConnection = Connection | PooledConnection

if TYPE_CHECKING:  # the pool is generic in asyncpg's stubs only
    from services.common.envelope import DataKeys

    _Pool = asyncpg.Pool[asyncpg.Record]
else:
    _Pool = asyncpg.Pool


class BoundedPool(_Pool):
    """An asyncpg pool whose `acquire()` gives up after a default timeout.

    Without it, a stalled database or an exhausted pool makes every caller wait forever;
    with it, the caller gets a TimeoutError raised through asyncpg, which the chassis
    answers as UNAVAILABLE.
    """

    def __init__(self, *args: Any, acquire_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.acquire_timeout = acquire_timeout
        # The data keys of this database (envelope encryption at rest), when its service
        # seals personal data: they belong to the database, so they travel with its pool.
        self.data_keys: DataKeys | None = None

    @override
    def acquire(self, *, timeout: float | None = None) -> PoolAcquireContext[asyncpg.Record]:
        return super().acquire(timeout=self.acquire_timeout if timeout is None else timeout)

    def not_ready(self) -> str | None:
        """Why this database's service must not take traffic, or None.

        It must not while its sealed data cannot be opened: the keyring does not open the
        database's newest data key.
        """
        if self.data_keys is not None and self.data_keys.active_key_id is None:
            return "the data keyring does not open this database's newest data key"
        return None


async def _keep_session(connection: Connection) -> None:
    """The reset of pools whose connections hold no session state: nothing to send.

    asyncpg still rolls back a transaction left open and drops listener callbacks before
    calling this; what is skipped is the `RESET ALL; UNLISTEN *; CLOSE ALL;
    pg_advisory_unlock_all()` round trip on every release (a tenth of the order service's
    CPU under load).
    """


async def create_pool(
    dsn: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    acquire_timeout: float = 5.0,
    command_timeout: float = 10.0,
    connect_timeout: float = 5.0,
    init: Callable[[Connection], Awaitable[None]] | None = None,
    session_state: bool = False,
    data_keys: DataKeys | None = None,
) -> BoundedPool:
    """Open a pool; the caller closes it.

    Args:
        dsn: The database URL.
        min_size: Connections kept open.
        max_size: Connections at most.
        acquire_timeout: Seconds a caller waits for a free connection.
        command_timeout: Seconds a statement may run (a stalled server never answers).
        connect_timeout: Seconds a new connection may take to open.
        init: Run on every new connection (codecs, settings).
        session_state: Whether borrowers leave session state behind (SET, LISTEN, session
            advisory locks, temporary tables, held cursors): only then is each released
            connection reset with a round trip. The services' pools use none (their
            advisory locks are transaction-scoped; the order change feed listens on its
            own connection, outside the pool).
        data_keys: The database's data keys (envelope encryption at rest), loaded here
            (the first DEK is created on a new database) and carried by the pool.
    """
    pool = BoundedPool(
        dsn,
        acquire_timeout=acquire_timeout,
        min_size=min_size,
        max_size=max_size,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        init=init,
        reset=None if session_state else _keep_session,
        loop=None,
        connection_class=asyncpg.Connection,
        record_class=asyncpg.Record,
        command_timeout=command_timeout,
        timeout=connect_timeout,
    )
    await pool  # opens min_size connections, as asyncpg.create_pool does
    if data_keys is not None:
        try:
            async with pool.acquire() as connection:
                await data_keys.load(connection)
        except BaseException:
            await pool.close()
            raise
        pool.data_keys = data_keys
    return pool


class PostgresUnitOfWork:
    """One transaction on one pooled connection: `async with uow:` rolls back unless committed.

    Subclasses build their repositories on the connection in `_bind`. The connection goes
    back to the pool on every path: when the transaction fails to start, when the block
    raises, and after a commit.
    """

    def __init__(self, pool: _Pool, *, acquire_timeout: float | None = None) -> None:
        """Use `pool`; `acquire_timeout` overrides the pool's wait for a free connection."""
        self._pool = pool
        self._acquire_timeout = acquire_timeout
        self._connection: PooledConnection | None = None
        self._transaction: Transaction | None = None
        self._committed = False

    async def __aenter__(self) -> Self:
        """Borrow a connection (bounded wait), begin the transaction, bind the repositories."""
        if self._connection is not None:
            raise RuntimeError("a unit of work runs one transaction at a time")
        connection = await self._acquire()
        try:
            transaction = connection.transaction()
            await transaction.start()
        except BaseException:
            await self._pool.release(connection)
            raise
        self._connection, self._transaction, self._committed = connection, transaction, False
        self._bind(connection)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Roll back unless committed, and give the connection back."""
        connection, self._connection = self._connection, None
        transaction, self._transaction = self._transaction, None
        if connection is None:
            return
        try:
            if not self._committed and transaction is not None:
                try:
                    await transaction.rollback()
                except Exception:
                    if exc is None:
                        raise
                    # The block failed already: a COMMIT cancelled in flight leaves the
                    # transaction unable to roll back. The block's own exception (the
                    # cancellation) must be the one that propagates, or a stopping task
                    # would carry on; the connection's state is unknown, so it is closed.
                    connection.terminate()
        finally:
            await self._pool.release(connection)

    async def commit(self) -> None:
        """Make the transaction's writes durable."""
        if self._transaction is None or self._connection is None:
            raise RuntimeError("commit outside the unit of work")
        await self._transaction.commit()
        self._committed = True

    @property
    def connection(self) -> PooledConnection:
        """The connection of the running transaction."""
        if self._connection is None:
            raise RuntimeError("the unit of work is not running")
        return self._connection

    @property
    def data_keys(self) -> DataKeys:
        """The data keys of the pool's database (set by the service's `create_pool`)."""
        keys: DataKeys | None = getattr(self._pool, "data_keys", None)
        if keys is None:
            raise RuntimeError("this pool has no data keys: open it with the service's create_pool")
        return keys

    async def _acquire(self) -> PooledConnection:
        """Wait (bounded) for a pooled connection; subclasses may translate the timeout."""
        connection: PooledConnection = await self._pool.acquire(timeout=self._acquire_timeout)
        return connection

    def _bind(self, connection: PooledConnection) -> None:
        """Build the repositories on `connection`; the base binds none."""
