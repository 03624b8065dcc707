"""The user events stream in Redis: its name, its entry parser, the consumer its readers share."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from google.protobuf.message import DecodeError
from marketplace.user.v1 import events_pb2
from redis.asyncio import Redis

from services.common.config import EventStreamSettings
from services.common.streams import StreamConsumer
from services.common.user_events import UserDeleted

# The stream the user service's outbox relay publishes to; versioned like the contract.
USER_EVENTS_STREAM = "marketplace.user.events.v1"


def parse_user_deleted(fields: dict[bytes, bytes]) -> UserDeleted | None:
    """The deletion a stream entry announces, or None when it is malformed or another event.

    Other user event types are acknowledged unread by the chassis consumer, so a consumer
    built before a new type appears skips it rather than retrying it forever.
    """
    try:
        payload = events_pb2.UserEvent.FromString(fields.get(b"payload", b""))
    except DecodeError:
        return None
    event_id = fields.get(b"event_id", b"").decode(errors="replace") or payload.event_id
    if not event_id or not payload.user_id:
        return None
    if payload.event_type != events_pb2.USER_EVENT_TYPE_DELETED:
        return None
    return UserDeleted(event_id=event_id, user_id=payload.user_id)


def user_events_consumer(
    settings: EventStreamSettings,
    redis: Redis,
    handler: Callable[[UserDeleted], Awaitable[object]],
    *,
    group: str,
) -> StreamConsumer[UserDeleted]:
    """The consumer of user.deleted events in the service's own consumer `group`.

    The product and order services read the stream each in their group, and the user
    service's outbox keeps an event until every group acknowledged it.
    """
    return StreamConsumer.from_settings(
        settings,
        redis,
        parse_user_deleted,
        handler,
        stream=settings.user_events_stream,
        group=group,
        event_prefix="user_event",
    )
