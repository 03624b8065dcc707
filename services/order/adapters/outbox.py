"""The order service's outbox relay: the chassis relay over the order events stream."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Unpack

from redis.asyncio import Redis

from services.common import outbox_relay
from services.common.clock import Clock
from services.common.outbox_relay import GroupProgress, RelayTuning, parse_stream_id
from services.order.adapters.events import ORDER_EVENTS_STREAM
from services.order.adapters.postgres.orders import ORDER_CHANGES_CHANNEL
from services.order.adapters.postgres.unit_of_work import Pool

__all__ = [
    "CONSUMER_GROUPS",
    "PLATFORM_CONSUMER_GROUPS",
    "GroupProgress",
    "OutboxRelay",
    "parse_stream_id",
]

# The consumer groups whose acknowledgement releases an event from the outbox: the product
# service's (stock back after a cancellation, verified purchases, co-purchases).
CONSUMER_GROUPS: tuple[str, ...] = ("product-service",)
# The groups of the whole platform, which the service's relay waits for: the product
# service's, and the user service's (order notifications, services/user/adapters/
# order_stream.py). Tests of the order and product services alone use CONSUMER_GROUPS.
PLATFORM_CONSUMER_GROUPS: tuple[str, ...] = (*CONSUMER_GROUPS, "user-service")


class OutboxRelay(outbox_relay.OutboxRelay):
    """The chassis relay with the order service's stream, groups and NOTIFY channel."""

    def __init__(
        self,
        pool: Pool,
        redis: Redis,
        *,
        clock: Clock,
        stream: str = ORDER_EVENTS_STREAM,
        consumer_groups: Sequence[str] = CONSUMER_GROUPS,
        **tuning: Unpack[RelayTuning],
    ) -> None:
        super().__init__(
            pool,
            redis,
            clock=clock,
            stream=stream,
            consumer_groups=consumer_groups,
            channel=ORDER_CHANGES_CHANNEL,
            **tuning,
        )
