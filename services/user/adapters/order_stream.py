"""The order event stream in Redis, consumed with the `user-service` consumer group."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from google.protobuf.message import DecodeError
from google.type import money_pb2
from marketplace.order.v1 import events_pb2
from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

from services.common.money import Money
from services.user.domain.order_mail import OrderEventKind, OrderLine, OrderNotice

log = structlog.get_logger("user.order_events")

STREAM = "marketplace.order.events.v1"
# The order service's outbox keeps an event until this group (and the product
# service's) has acknowledged it: see services/order/adapters/outbox.py.
GROUP = "user-service"

type NoticeHandler = Callable[[OrderNotice], Awaitable[int]]


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def _money(value: money_pb2.Money) -> Money | None:
    if not value.currency_code:
        return None
    return Money(value.units * 100 + value.nanos // 10_000_000, value.currency_code)


def parse_entry(fields: dict[bytes, bytes]) -> OrderNotice | None:
    """The notice a stream entry carries, or None when it is malformed."""
    try:
        payload = events_pb2.OrderEvent.FromString(fields.get(b"payload", b""))
    except DecodeError:
        return None
    event_id = fields.get(b"event_id", b"").decode(errors="replace") or payload.event_id
    if not event_id or not payload.order.order_id:
        return None
    type_name = fields.get(b"type", b"").decode(errors="replace")
    type_name = type_name or events_pb2.OrderEventType.Name(payload.event_type)
    try:
        kind = OrderEventKind(type_name)
    except ValueError:
        kind = OrderEventKind.OTHER
    order = payload.order
    lines = tuple(
        OrderLine(
            title=item.title or item.product_id,
            quantity=int(item.quantity),
            seller_id=_uuid(item.seller_id),
            line_total=_money(item.line_total) or Money(0, order.total.currency_code or "USD"),
        )
        for item in order.items
    )
    return OrderNotice(
        event_id=event_id,
        kind=kind,
        order_id=order.order_id,
        buyer_id=_uuid(order.buyer_id),
        lines=lines,
        total=_money(order.total),
        refund_amount=_money(payload.refund_amount) if payload.HasField("refund_amount") else None,
    )


class OrderNoticeConsumer:
    """Reads order events as one consumer of the group, mails them, then acknowledges.

    An entry is acknowledged only after its handler committed, so a crash replays it and
    the handler's processed-events record makes the replay queue nothing. Entries a dead
    consumer left unacknowledged are claimed after `claim_idle_ms`. Malformed entries are
    logged and acknowledged: no retry can fix them.
    """

    def __init__(
        self,
        redis: Redis,
        handler: NoticeHandler,
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
        """Create the consumer group (and the stream) unless it exists.

        A new group starts at the stream's beginning: events published before the user
        service first subscribed are mailed too, once each, rather than lost.
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
            # Redis lost the stream and the group with it; the order service's outbox
            # publishes the unconfirmed events again, and processed ids are skipped.
            log.warning("order_event_group_recreated", stream=self._stream, group=self._group)
            await self.ensure_group()
            entries = await self._read(block_ms)
        handled = 0
        for entry_id, fields in entries:
            if fields is None:
                continue  # deleted from the stream while pending
            notice = parse_entry(fields)
            if notice is None:
                log.warning("order_event_malformed", entry_id=entry_id.decode())
            else:
                await self._handler(notice)
                handled += 1
            await self._redis.xack(self._stream, self._group, entry_id)
        return handled

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

    async def run(self) -> None:
        """Consume until cancelled; failures (Redis or PostgreSQL away) are retried later."""
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
