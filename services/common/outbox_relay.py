"""The outbox relay: publishes the events a service wrote with each change to a Redis stream.

Every service that announces events (orders, users) keeps an `outbox` table of the same
shape (id, event_id, event_type, payload, published_at, stream_id, confirmed_at,
claimed_until) in its own database, and runs this relay over it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypedDict

import asyncpg
import structlog
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from services.common.clock import Clock
from services.common.notify import repeat_on_notify

log = structlog.get_logger("outbox")

type StreamId = tuple[int, int]
type Pool = asyncpg.Pool[asyncpg.Record]


def parse_stream_id(value: bytes | str) -> StreamId:
    """A stream entry id ("<ms>-<seq>") as a tuple that orders like the stream does."""
    text = value.decode() if isinstance(value, bytes) else value
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


@dataclass(frozen=True)
class GroupProgress:
    """How far one consumer group got in the stream.

    Every entry up to `delivered` and below `pending` (the oldest entry read but not
    acknowledged yet, if any) is acknowledged.
    """

    delivered: StreamId
    pending: StreamId | None

    def acknowledged(self, entry: StreamId) -> bool:
        """Whether the group has read `entry` and acknowledged it."""
        return entry <= self.delivered and (self.pending is None or entry < self.pending)


class RelayTuning(TypedDict, total=False):
    """The pace and bounds of an OutboxRelay, which a service's own relay passes through."""

    batch_size: int
    interval_seconds: float
    max_stream_length: int
    confirm_interval_seconds: float
    claim_seconds: float
    retention: timedelta
    listen_url: str | None
    fallback_seconds: float


@dataclass(frozen=True)
class _Published:
    row_id: int
    event_id: str
    stream_id: str
    published_at: datetime


class OutboxRelay:
    """Publishes outbox rows to a Redis stream, and keeps them until they are consumed.

    Publishing: a batch of unpublished rows is claimed for `claim_seconds` (no row lock
    is held across the XADD), published, and marked with the entry id XADD returned. A
    crash in between publishes the rows again when the claim lapses; consumers
    deduplicate on event_id.

    Confirming: a published event stays the outbox's responsibility until every group of
    `consumer_groups` has acknowledged its entry, or, when a group never comes, until
    `retention` has passed while the stream still holds it. Redis may lose data (a
    restart without its append-only file, a failover to a lagging replica): an entry that
    is not in the stream any more, or a stream that is gone, makes the relay publish the
    event again. The entry itself is looked up, with its event id, because after a loss
    the stream's ids start afresh and a new group's progress would vouch for old ids.

    Waking: given `listen_url` and `channel`, the relay LISTENs on a dedicated connection
    (never a pooled one) for the NOTIFY every transaction that writes outbox rows sends at commit,
    and publishes at once. Notifications are only hints: a pass also runs every
    `fallback_seconds` (a lost NOTIFY delays an event, never loses it), every
    `confirm_interval_seconds` while published events await their consumers, and every
    `interval_seconds` while the listening connection is down. Without `listen_url` it
    polls every `interval_seconds`.
    """

    def __init__(
        self,
        pool: Pool,
        redis: Redis,
        *,
        clock: Clock,
        stream: str,
        consumer_groups: Sequence[str],
        channel: str | None = None,
        batch_size: int = 100,
        interval_seconds: float = 0.2,
        max_stream_length: int = 1_000_000,
        confirm_interval_seconds: float = 1.0,
        claim_seconds: float = 30.0,
        retention: timedelta = timedelta(days=7),
        listen_url: str | None = None,
        fallback_seconds: float = 5.0,
    ) -> None:
        self._pool = pool
        self._redis = redis
        self._clock = clock
        self._stream = stream
        self._batch_size = batch_size
        self._interval = interval_seconds
        self._max_length = max_stream_length
        self._groups = tuple(consumer_groups)
        self._confirm_interval = confirm_interval_seconds
        self._claim_seconds = claim_seconds
        self._retention = retention
        self._confirm_after = 0  # the outbox id the next confirmation pass starts after
        self._confirmed_at = float("-inf")
        self._listen_url = listen_url if channel is not None else None
        self._channel = channel or ""
        self._fallback = fallback_seconds
        self._awaiting_consumers = False  # the last confirmation pass left events pending

    async def run_once(self) -> int:
        """Publish one batch, and check delivery when due; returns how many were published."""
        published = await self.publish_once()
        if time.monotonic() - self._confirmed_at >= self._confirm_interval:
            self._confirmed_at = time.monotonic()
            await self.confirm_once()
        return published

    async def publish_once(self) -> int:
        """Publish one batch of unpublished events; returns how many were published."""
        async with self._pool.acquire() as connection:
            rows = await connection.fetch(
                """
                UPDATE outbox SET claimed_until = now() + make_interval(secs => $2)
                WHERE id IN (
                    SELECT id FROM outbox
                    WHERE published_at IS NULL
                      AND (claimed_until IS NULL OR claimed_until < now())
                    ORDER BY id
                    LIMIT $1
                    FOR UPDATE SKIP LOCKED
                )
                RETURNING id, event_id, event_type, payload
                """,
                self._batch_size,
                self._claim_seconds,
            )
        if not rows:
            return 0
        rows = sorted(rows, key=lambda row: int(row["id"]))
        ids = [int(row["id"]) for row in rows]
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for row in rows:
                    pipe.xadd(
                        self._stream,
                        {
                            "event_id": str(row["event_id"]),
                            "type": row["event_type"],
                            "payload": bytes(row["payload"]),
                        },
                        maxlen=self._max_length,
                        approximate=True,
                    )
                entry_ids: list[Any] = await pipe.execute()
        except BaseException:
            # Hand the rows back at once rather than when the claim lapses; were this to
            # fail too, the lapse still frees them.
            with contextlib.suppress(Exception):
                async with self._pool.acquire() as connection:
                    await connection.execute(
                        "UPDATE outbox SET claimed_until = NULL "
                        "WHERE id = ANY($1::bigint[]) AND published_at IS NULL",
                        ids,
                    )
            raise
        async with self._pool.acquire() as connection:
            await connection.execute(
                """
                UPDATE outbox SET published_at = $3, stream_id = entry.stream_id,
                                  claimed_until = NULL
                FROM unnest($1::bigint[], $2::text[]) AS entry(id, stream_id)
                WHERE outbox.id = entry.id
                """,
                ids,
                [_text(entry_id) for entry_id in entry_ids],
                self._clock.now(),
            )
        log.info("outbox_published", count=len(rows))
        return len(rows)

    async def confirm_once(self) -> tuple[int, int]:
        """Check one batch of published events against the stream.

        Returns:
            How many were confirmed (consumed) and how many were lost and will be
            published again.
        """
        published = await self._published_batch()
        if not published:
            self._confirm_after = 0
            self._awaiting_consumers = False
            return 0, 0
        self._confirm_after = published[-1].row_id if len(published) == self._batch_size else 0
        self._awaiting_consumers = True  # until this pass finds every one of them settled
        progress = await self._progress()
        present = await self._present(published) if progress is not None else set()
        now = self._clock.now()
        confirmed: list[_Published] = []
        lost: list[_Published] = []
        for event in published:
            if event.row_id not in present:
                lost.append(event)
                continue
            entry = parse_stream_id(event.stream_id)
            groups = progress or {}
            consumed = all(
                name in groups and groups[name].acknowledged(entry) for name in self._groups
            )
            if consumed or now - event.published_at > self._retention:
                confirmed.append(event)
        async with self._pool.acquire() as connection:
            for query, events in ((_CONFIRM, confirmed), (_REPUBLISH, lost)):
                if events:
                    await connection.execute(
                        query, [e.row_id for e in events], [e.stream_id for e in events]
                    )
        if lost:
            log.warning("outbox_events_lost_in_stream", count=len(lost), stream=self._stream)
        self._awaiting_consumers = bool(lost) or len(confirmed) < len(published)
        return len(confirmed), len(lost)

    async def _published_batch(self) -> list[_Published]:
        async with self._pool.acquire() as connection:
            rows = await connection.fetch(
                """
                SELECT id, event_id, stream_id, published_at FROM outbox
                WHERE published_at IS NOT NULL AND confirmed_at IS NULL AND id > $1
                ORDER BY id
                LIMIT $2
                """,
                self._confirm_after,
                self._batch_size,
            )
        return [
            _Published(int(r["id"]), str(r["event_id"]), r["stream_id"], r["published_at"])
            for r in rows
            if r["stream_id"] is not None
        ]

    async def _progress(self) -> dict[str, GroupProgress] | None:
        """Each consumer group's progress; None when the stream itself is gone."""
        try:
            groups: list[dict[Any, Any]] = await self._redis.xinfo_groups(self._stream)
        except ResponseError as error:
            if "no such key" in str(error).lower():
                return None
            raise
        progress: dict[str, GroupProgress] = {}
        for group in groups:
            name = _text(group["name"])
            if name not in self._groups:
                continue
            pending = None
            if int(group["pending"]) > 0:
                summary: dict[str, Any] = await self._redis.xpending(self._stream, name)
                pending = parse_stream_id(summary["min"]) if summary.get("min") else None
            progress[name] = GroupProgress(parse_stream_id(group["last-delivered-id"]), pending)
        return progress

    async def _present(self, published: Sequence[_Published]) -> set[int]:
        """The outbox ids whose entries the stream still holds, with their event id."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for event in published:
                pipe.xrange(self._stream, min=event.stream_id, max=event.stream_id, count=1)
            answers: list[Any] = await pipe.execute()
        present: set[int] = set()
        for event, entries in zip(published, answers, strict=True):
            for _entry_id, fields in entries or ():
                if _text(fields.get(b"event_id", b"")) == event.event_id:
                    present.add(event.row_id)
        return present

    async def run(self) -> None:
        """Publish and confirm forever; errors are logged and retried after the interval."""
        await repeat_on_notify(
            self.run_once,
            listen_url=self._listen_url,
            channel=self._channel,
            failure_event="outbox_relay_failed",
            wait_seconds=self._wait_seconds,
            again_at_once=lambda published: published >= self._batch_size,
        )

    def _wait_seconds(self, listening: bool) -> float:
        if not listening:
            return self._interval
        if self._awaiting_consumers:
            return min(self._fallback, self._confirm_interval)
        return self._fallback


# Both updates skip rows another relay changed since they were read (republished, say).
_CONFIRM = """
    UPDATE outbox SET confirmed_at = now()
    FROM unnest($1::bigint[], $2::text[]) AS entry(id, stream_id)
    WHERE outbox.id = entry.id AND outbox.stream_id = entry.stream_id
      AND outbox.confirmed_at IS NULL
"""
_REPUBLISH = """
    UPDATE outbox SET published_at = NULL, stream_id = NULL
    FROM unnest($1::bigint[], $2::text[]) AS entry(id, stream_id)
    WHERE outbox.id = entry.id AND outbox.stream_id = entry.stream_id
      AND outbox.confirmed_at IS NULL
"""


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
