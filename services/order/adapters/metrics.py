"""The order service's business metrics: checkout outcomes, card processor calls, outbox lag."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any

import asyncpg
import structlog
from google.type import money_pb2
from marketplace.order.v1 import order_pb2

from services.common.business_metrics import OrderMetrics, RpcObserver
from services.common.money import Money
from services.order.adapters.payments import (
    Authorization,
    Capture,
    PaymentDeclined,
    PaymentGateway,
    PaymentTimeout,
    PaymentUnavailable,
)

CREATE_ORDER = "/marketplace.order.v1.OrderService/CreateOrder"

log = structlog.get_logger("order.metrics")


def checkout_observers(metrics: OrderMetrics) -> dict[str, RpcObserver]:
    """Count each answered CreateOrder: placed with its revenue, or failed by reason.

    An idempotent replay of a placed order answers again and counts again: the counter
    is of answered checkouts, which is what a client experiences.
    """

    def placed(_: Any, order: order_pb2.Order) -> None:
        metrics.placed.inc()
        total = order.total
        metrics.revenue.labels(total.currency_code).inc(_minor_units(total))

    def failed(_: Any, reason: str) -> None:
        metrics.failed.labels(reason).inc()

    return {CREATE_ORDER: RpcObserver(succeeded=placed, failed=failed)}


def _minor_units(money: money_pb2.Money) -> int:
    # Every marketplace currency has two decimals (services/common/money.py).
    return money.units * 100 + money.nanos // 10_000_000


class MeteredPayments:
    """A PaymentGateway that records each call's latency and outcome, then delegates."""

    def __init__(self, inner: PaymentGateway, metrics: OrderMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def authorize(self, amount: Money, token: str, idempotency_key: str) -> Authorization:
        """Authorize through the wrapped gateway."""
        return await self._timed("authorize", self._inner.authorize(amount, token, idempotency_key))

    async def capture(self, authorization_id: str, amount: Money, idempotency_key: str) -> Capture:
        """Capture through the wrapped gateway."""
        return await self._timed(
            "capture", self._inner.capture(authorization_id, amount, idempotency_key)
        )

    async def void(self, authorization_id: str, idempotency_key: str) -> None:
        """Void through the wrapped gateway."""
        await self._timed("void", self._inner.void(authorization_id, idempotency_key))

    async def refund(self, charge_id: str, amount: Money, idempotency_key: str) -> None:
        """Refund through the wrapped gateway."""
        await self._timed("refund", self._inner.refund(charge_id, amount, idempotency_key))

    async def find_authorization(self, idempotency_key: str) -> Authorization | None:
        """Look an authorization up (not metered: a lookup is not a payment)."""
        return await self._inner.find_authorization(idempotency_key)

    async def find_capture(self, idempotency_key: str) -> Capture | None:
        """Look a capture up (not metered: a lookup is not a payment)."""
        return await self._inner.find_capture(idempotency_key)

    async def _timed[T](self, operation: str, call: Awaitable[T]) -> T:
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await call
            outcome = "success"
            return result
        except PaymentDeclined:
            outcome = "declined"
            raise
        except PaymentTimeout:
            outcome = "timeout"
            raise
        except PaymentUnavailable:
            outcome = "unavailable"
            raise
        finally:
            self._metrics.payment_duration.labels(operation).observe(time.perf_counter() - started)
            self._metrics.payment_outcomes.labels(operation, outcome).inc()


_OLDEST_UNPUBLISHED = """
    SELECT coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8
    FROM outbox WHERE published_at IS NULL
"""


async def watch_outbox_lag(
    pool: asyncpg.Pool, metrics: OrderMetrics, interval_seconds: float = 5.0
) -> None:
    """Keep outbox_lag_seconds current until cancelled; one short query per interval."""
    while True:
        try:
            async with pool.acquire(timeout=interval_seconds) as connection:
                lag = await connection.fetchval(_OLDEST_UNPUBLISHED)
            metrics.outbox_lag.set(float(lag))
        except (OSError, TimeoutError, asyncpg.PostgresError) as error:
            # Stale beats wrong: the gauge keeps its last value while the store is away.
            log.warning("outbox_lag_unknown", error=type(error).__name__)
        await asyncio.sleep(interval_seconds)
