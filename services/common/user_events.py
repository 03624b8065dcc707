"""A user event as its consumers see it: what the product and order services act on."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class UserDeleted:
    """An account was deleted: the consumer erases or anonymises what it holds of the user."""

    event_id: str
    user_id: str
