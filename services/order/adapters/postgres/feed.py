"""Order change notifications: one LISTEN connection fans NOTIFYs out to watchers."""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import structlog

from services.order.adapters.postgres.orders import ORDER_CHANGES_CHANNEL

log = structlog.get_logger("changes")


class ChangeFeed:
    """Tells subscribers when an order changed; the repository NOTIFYs on every commit.

    One connection listens for the whole process, so a thousand watchers cost one
    connection, not a thousand. Notifications are hints: a watcher re-reads the order,
    and also re-reads on a timer in case the listening connection dropped a message.
    """

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._connection: asyncpg.Connection[asyncpg.Record] | None = None
        self._queues: defaultdict[uuid.UUID, set[asyncio.Queue[None]]] = defaultdict(set)

    async def start(self) -> None:
        """Open the listening connection."""
        self._connection = await asyncpg.connect(self._url)
        await self._connection.add_listener(ORDER_CHANGES_CHANNEL, self._notified)

    async def close(self) -> None:
        """Close the listening connection."""
        if self._connection is not None:
            await self._connection.close()
            self._connection = None

    def _notified(self, connection: object, pid: int, channel: str, payload: object) -> None:
        try:
            order_id = uuid.UUID(str(payload))
        except ValueError:
            return
        for queue in self._queues.get(order_id, ()):
            if queue.empty():
                queue.put_nowait(None)

    @asynccontextmanager
    async def subscribe(self, order_id: uuid.UUID) -> AsyncIterator[asyncio.Queue[None]]:
        """A queue that receives a token whenever the order changes."""
        queue: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        self._queues[order_id].add(queue)
        try:
            yield queue
        finally:
            self._queues[order_id].discard(queue)
            if not self._queues[order_id]:
                del self._queues[order_id]
