"""The ports of payments: the card processor, and the record of every call made to it."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Protocol

from services.common.money import Money
from services.order.domain.model import GatewayCall

# Re-exported: the gateway port answers with these.
from services.order.domain.payments import (
    Authorization as Authorization,
)
from services.order.domain.payments import (
    Capture as Capture,
)
from services.order.domain.payments import (
    PaymentDeclined as PaymentDeclined,
)
from services.order.domain.payments import (
    PaymentError as PaymentError,
)
from services.order.domain.payments import (
    PaymentTimeout as PaymentTimeout,
)
from services.order.domain.payments import (
    PaymentUnavailable as PaymentUnavailable,
)


class PaymentGateway(Protocol):
    """The card processor. Every call carries an idempotency key: the same key, the same result."""

    async def authorize(self, amount: Money, token: str, idempotency_key: str) -> Authorization:
        """Hold `amount` on the card `token` stands for; raises PaymentDeclined or PaymentUnavailable."""
        ...

    async def capture(self, authorization_id: str, amount: Money, idempotency_key: str) -> Capture:
        """Take `amount` of an authorisation."""
        ...

    async def void(self, authorization_id: str, idempotency_key: str) -> None:
        """Drop an authorisation that was not captured."""
        ...

    async def refund(self, charge_id: str, amount: Money, idempotency_key: str) -> None:
        """Return `amount` of a captured charge."""
        ...

    async def find_authorization(self, idempotency_key: str) -> Authorization | None:
        """The authorisation an earlier authorize call with this key made, if it succeeded.

        None means the gateway never made one with this key; PaymentUnavailable means it
        cannot tell yet (the call is still running, or the gateway is unreachable).
        """
        ...

    async def find_capture(self, idempotency_key: str) -> Capture | None:
        """The capture an earlier capture call with this key made, if it succeeded.

        None and PaymentUnavailable mean what they mean for `find_authorization`.
        """
        ...


class PaymentAttempts(Protocol):
    """The record of every payment gateway call."""

    async def start(self, attempt: GatewayCall) -> None:
        """Record a call about to be made."""
        ...

    async def finish(
        self, attempt_id: uuid.UUID, outcome: str, reference: str, detail: str, at: datetime
    ) -> None:
        """Record how a call ended."""
        ...

    async def for_order(self, order_id: uuid.UUID) -> list[GatewayCall]:
        """The calls made for an order."""
        ...
