"""The user events stream in Redis: its name, and the entry parser every consumer shares."""

from __future__ import annotations

from google.protobuf.message import DecodeError
from marketplace.user.v1 import events_pb2

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
