"""The order event stream in Redis, consumed with the `product-service` consumer group."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from google.protobuf.message import DecodeError
from marketplace.order.v1 import events_pb2
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from services.product.service_layer.order_events import OrderEvent, OrderEventKind

log = structlog.get_logger("product.events")

STREAM = "marketplace.order.events.v1"
GROUP = "product-service"

type EventHandler = Callable[[OrderEvent], Awaitable[bool]]


def parse_entry(fields: dict[bytes, bytes]) -> OrderEvent | None:
    """The event a stream entry carries, or None when it is malformed."""
    event_id = fields.get(b"event_id", b"").decode(errors="replace")
    type_name = fields.get(b"type", b"").decode(errors="replace")
    try:
        payload = events_pb2.OrderEvent.FromString(fields.get(b"payload", b""))
    except DecodeError:
        return None
    event_id = event_id or payload.event_id
    if not event_id:
        return None
    if not type_name:
        type_name = events_pb2.OrderEventType.Name(payload.event_type)
    try:
        kind = OrderEventKind(type_name)
    except ValueError:
        kind = OrderEventKind.OTHER
    order = payload.order
    quantities: dict[str, int] = {}
    for item in order.items:
        if item.product_id and item.quantity > 0:
            quantities[item.product_id] = quantities.get(item.product_id, 0) + item.quantity
    return OrderEvent(
        event_id=event_id,
        kind=kind,
        order_id=order.order_id,
        buyer_id=order.buyer_id,
        product_ids=tuple(
            dict.fromkeys(item.product_id for item in order.items if item.product_id)
        ),
        quantities=tuple(quantities.items()),
        restock_required=payload.restock_required,
    )


class OrderEventConsumer:
    """Reads order events as one consumer of the group, applies them, then acknowledges.

    An entry is acknowledged only after its handler returned, so a crash replays it (the
    handler deduplicates). Entries a dead consumer left unacknowledged are claimed after
    `claim_idle_ms`. Malformed entries are logged and acknowledged: no retry can fix them.
    """

    def __init__(
        self,
        redis: Redis,
        handler: EventHandler,
        *,
        consumer: str,
        block_ms: int = 2000,
        batch: int = 50,
        claim_idle_ms: int = 60_000,
        retry_seconds: float = 1.0,
        stream: str = STREAM,
        group: str = GROUP,
    ) -> None:
        self._redis = redis
        self._handler = handler
        self._consumer = consumer
        self._block_ms = block_ms
        self._batch = batch
        self._claim_idle_ms = claim_idle_ms
        self._retry_seconds = retry_seconds
        self._stream = stream
        self._group = group
        self._group_ready = False

    async def ensure_group(self) -> None:
        """Create the consumer group (and the stream) unless it exists."""
        try:
            await self._redis.xgroup_create(self._stream, self._group, id="0", mkstream=True)
        except ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise
        self._group_ready = True

    async def run_once(self, *, block_ms: int | None = None) -> int:
        """Apply one batch: stale pending entries first, then new ones; how many applied."""
        if not self._group_ready:
            await self.ensure_group()
        try:
            entries = await self._read(block_ms)
        except ResponseError as error:
            if "NOGROUP" not in str(error):
                raise
            # Redis lost the stream (a restart without its data, a failover): the group
            # goes with it. Recreated from id 0, it reads whatever the order service's
            # outbox publishes again; events applied before are skipped by their id.
            log.warning("order_event_group_recreated", stream=self._stream, group=self._group)
            await self.ensure_group()
            entries = await self._read(block_ms)
        return await self._apply(entries)

    async def _read(self, block_ms: int | None) -> list[tuple[bytes, dict[bytes, bytes]]]:
        claimed: Any = await self._redis.xautoclaim(
            self._stream,
            self._group,
            self._consumer,
            min_idle_time=self._claim_idle_ms,
            start_id="0-0",
            count=self._batch,
        )
        entries: list[tuple[bytes, dict[bytes, bytes]]] = list(claimed[1])
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

    async def _apply(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> int:
        applied = 0
        for entry_id, fields in entries:
            if fields is None:
                continue  # deleted from the stream while pending
            event = parse_entry(fields)
            if event is None:
                log.warning("order_event_malformed", entry_id=entry_id.decode())
            else:
                await self._handler(event)
                applied += 1
            await self._redis.xack(self._stream, self._group, entry_id)
        return applied

    async def run(self) -> None:
        """Consume until cancelled; failures (Redis or MongoDB away) are retried later."""
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as error:
                log.warning("order_events_unavailable", error=repr(error))
                self._group_ready = False
                await asyncio.sleep(self._retry_seconds)
            except Exception:
                log.exception("order_event_failed")
                await asyncio.sleep(self._retry_seconds)
