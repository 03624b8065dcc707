"""MongoDB record of the order events already applied."""

from __future__ import annotations

from datetime import datetime

from pymongo.errors import DuplicateKeyError

from services.product.adapters.mongo.schema import PROCESSED_EVENTS, Database


class MongoProcessedEvents:
    """Processed event ids in `processed_events`; the _id makes each one unique."""

    def __init__(self, db: Database) -> None:
        self._events = db[PROCESSED_EVENTS]

    async def seen(self, event_id: str) -> bool:
        """Whether the event was processed already."""
        return await self._events.find_one({"_id": event_id}, {"_id": 1}) is not None

    async def remember(self, event_id: str, event_type: str, *, now: datetime) -> bool:
        """Record the event as processed; False when it already was."""
        try:
            await self._events.insert_one({"_id": event_id, "type": event_type, "time": now})
        except DuplicateKeyError:
            return False
        return True
