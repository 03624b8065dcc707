"""What a card payment gateway answers: holds, captures and the ways a call can fail."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from services.common.money import Money


class PaymentError(Exception):
    """The gateway did not do what was asked."""


class PaymentDeclined(PaymentError):
    """The issuer refused the charge; retrying the same card will not help."""

    def __init__(self, decline_code: str) -> None:
        super().__init__(f"payment declined: {decline_code}")
        self.decline_code = decline_code


class PaymentUnavailable(PaymentError):
    """The gateway failed or did not answer; the outcome is unknown to us."""


class PaymentTimeout(PaymentUnavailable):
    """The gateway did not answer within the timeout."""


@dataclass(frozen=True)
class Authorization:
    """Money held on the buyer's card, not yet taken."""

    authorization_id: str
    amount: Money


@dataclass(frozen=True)
class Capture:
    """Money taken from an authorisation."""

    charge_id: str
    authorization_id: str
    amount: Money


@dataclass(frozen=True)
class GatewayCall:
    """One call to the payment gateway, recorded before it is made and after it ends."""

    attempt_id: uuid.UUID
    order_id: uuid.UUID
    operation: str  # authorize, capture, void, refund
    idempotency_key: str
    amount: Money
    at: datetime
    outcome: str = "pending"  # pending, succeeded, declined, failed, timed_out
    gateway_reference: str = ""
    detail: str = ""
