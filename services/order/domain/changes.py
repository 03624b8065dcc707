"""A cancel or refund of a paid order, claimed before the gateway is called."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.common.money import Money


class ChangeKind(StrEnum):
    """What the change does to the order."""

    CANCEL = "cancel"
    REFUND = "refund"


class ChangeState(StrEnum):
    """Where the change is: claimed and maybe at the gateway, or finished either way."""

    PENDING = "pending"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True)
class OrderChange:
    """The durable intent of one cancel or refund: enough for anyone to finish it."""

    change_id: uuid.UUID
    order_id: uuid.UUID
    kind: ChangeKind
    gateway_key: str
    amount: Money
    actor: str
    seller_id: str | None
    reason: str
    lease_expires_at: datetime
    created_at: datetime
    request_key: str = ""
    request_fingerprint: bytes = b""
    state: ChangeState = ChangeState.PENDING
