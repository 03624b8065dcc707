"""What the service remembers about an idempotency key: its request and its outcome."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum


class KeyState(StrEnum):
    """Whether the first request with a key is still running."""

    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


@dataclass(frozen=True)
class StoredError:
    """A failure answered to the first request, replayed to its retries."""

    code: str  # the gRPC status name, such as FAILED_PRECONDITION
    message: str
    reason: str
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class IdempotencyRecord:
    """One buyer's use of one key."""

    request_fingerprint: bytes
    state: KeyState
    response: bytes | None = None
    error: StoredError | None = None
    order_id: uuid.UUID | None = None
