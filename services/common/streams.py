"""The chassis consumer of a Redis (Valkey) stream: one consumer of one consumer group.

Every service that reacts to another's events (the product and user services to order
events, the product and order services to user events) reads them the same way, so the
loop lives here once; a service brings the stream's parser and its handler.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypedDict

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

if TYPE_CHECKING:
    from services.common.config import EventStreamSettings

log = structlog.get_logger("streams")

type Entry = tuple[bytes, dict[bytes, bytes]]


class ConsumerTuning(TypedDict, total=False):
    """The pace of a StreamConsumer, which a service's own consumer passes through."""

    block_ms: int
    batch: int
    claim_idle_ms: int
    retry_seconds: float


def stream_client(url: str, settings: EventStreamSettings) -> Redis:
    """A Redis client for a service's stream consumers.

    Their reads block for `event_block_ms`, so the socket timeout is longer than that: a
    shorter one would fail every idle read.
    """
    return Redis.from_url(
        url, socket_timeout=settings.event_block_ms / 1000 + 5, socket_connect_timeout=2
    )


class StreamConsumer[T]:
    """Reads a stream as one consumer of a group, handles each entry, then acknowledges it.

    An entry is acknowledged only after its handler returned, so a crash replays it: the
    delivery is at least once and handlers deduplicate on the event id. Entries a dead
    consumer left unacknowledged are claimed after `claim_idle_ms`. Malformed entries
    (`parse` returns None) are logged and acknowledged: no retry can fix them.
    """

    def __init__(
        self,
        redis: Redis,
        parse: Callable[[dict[bytes, bytes]], T | None],
        handler: Callable[[T], Awaitable[object]],
        *,
        stream: str,
        group: str,
        consumer: str,
        block_ms: int = 2000,
        batch: int = 50,
        claim_idle_ms: int = 60_000,
        retry_seconds: float = 1.0,
        event_prefix: str = "stream_event",
    ) -> None:
        self._redis = redis
        self._parse = parse
        self._handler = handler
        self._stream = stream
        self._group = group
        self._consumer = consumer
        self._block_ms = block_ms
        self._batch = batch
        self._claim_idle_ms = claim_idle_ms
        self._retry_seconds = retry_seconds
        self._prefix = event_prefix
        self._group_ready = False

    @classmethod
    def from_settings(
        cls,
        settings: EventStreamSettings,
        redis: Redis,
        parse: Callable[[dict[bytes, bytes]], T | None],
        handler: Callable[[T], Awaitable[object]],
        *,
        stream: str,
        group: str,
        event_prefix: str,
    ) -> StreamConsumer[T]:
        """The consumer a service runs: named and paced by its EventStreamSettings."""
        return cls(
            redis,
            parse,
            handler,
            stream=stream,
            group=group,
            consumer=settings.event_consumer_name,
            event_prefix=event_prefix,
            **settings.consumer_tuning(),
        )

    async def ensure_group(self) -> None:
        """Create the consumer group (and the stream) unless it exists.

        A new group starts at the stream's beginning: events published before the service
        first subscribed are handled too, once each, rather than lost.
        """
        try:
            await self._redis.xgroup_create(self._stream, self._group, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._group_ready = True

    async def run_once(self, *, block_ms: int | None = None) -> int:
        """Handle one batch: stale pending entries first, then new ones; how many handled."""
        if not self._group_ready:
            await self.ensure_group()
        try:
            entries = await self._read(block_ms)
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            # Redis lost the stream (a restart without its data, a failover): the group
            # goes with it. Recreated from id 0, it reads whatever the publisher's outbox
            # publishes again; events handled before are skipped by their id.
            log.warning(f"{self._prefix}_group_recreated", stream=self._stream, group=self._group)
            await self.ensure_group()
            entries = await self._read(block_ms)
        handled = 0
        for entry_id, fields in entries:
            if fields is None:
                continue  # deleted from the stream while pending
            event = self._parse(fields)
            if event is None:
                log.warning(f"{self._prefix}_malformed", entry_id=entry_id.decode())
            else:
                await self._handler(event)
                handled += 1
            await self._redis.xack(self._stream, self._group, entry_id)
        return handled

    async def _read(self, block_ms: int | None) -> list[Entry]:
        claimed: Any = await self._redis.xautoclaim(
            self._stream,
            self._group,
            self._consumer,
            min_idle_time=self._claim_idle_ms,
            start_id="0-0",
            count=self._batch,
        )
        entries: list[Entry] = list(claimed[1])
        if not entries:
            block = self._block_ms if block_ms is None else block_ms
            response: Any = await self._redis.xreadgroup(
                self._group,
                self._consumer,
                {self._stream: ">"},
                count=self._batch,
                block=block or None,
            )
            for _stream, stream_entries in response or ():
                entries.extend(stream_entries)
        return entries

    async def run(self) -> None:
        """Consume until cancelled; failures (Redis or the database away) are retried later."""
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as error:
                log.warning(f"{self._prefix}s_unavailable", error=repr(error))
                self._group_ready = False
                await asyncio.sleep(self._retry_seconds)
            except Exception:
                log.exception(f"{self._prefix}_failed")
                await asyncio.sleep(self._retry_seconds)
