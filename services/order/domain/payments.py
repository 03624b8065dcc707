"""What a card payment gateway answers: holds, captures and the ways a call can fail."""

from __future__ import annotations

from dataclasses import dataclass

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
