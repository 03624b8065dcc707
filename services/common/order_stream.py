"""The order events stream in Redis, as the services that react to orders consume it.

The order service's outbox relay publishes its events there; the product service (stock,
verified purchases) and the user service (order mail) read them, each in its own consumer
group and with its own parser into its own domain's event, so only the consumer around
the parser is built here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from services.common.config import EventStreamSettings
from services.common.streams import StreamConsumer


def order_events_consumer[T](
    settings: EventStreamSettings,
    redis: Redis,
    parse: Callable[[dict[bytes, bytes]], T | None],
    handler: Callable[[T], Awaitable[object]],
    *,
    stream: str,
    group: str,
) -> StreamConsumer[T]:
    """The consumer of the order events `stream` in the service's own consumer `group`."""
    return StreamConsumer.from_settings(
        settings, redis, parse, handler, stream=stream, group=group, event_prefix="order_event"
    )
