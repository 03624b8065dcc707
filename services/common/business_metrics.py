"""Business metrics (orders, payments, stock, sign-ins) and the gRPC hook that counts them.

The names are the contract of the dashboards and alerts in k8s/monitoring. Each service
registers only its own family of metrics in the registry its ops endpoint serves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, override

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.common.errors import DomainError
from services.common.interceptors import Stream, Unary, _AroundInterceptor

# An RPC that failed for a reason other than a domain error (a bug, an outage).
UNEXPECTED = "UNEXPECTED"


class OrderMetrics:
    """What the order service counts: checkouts, revenue and the card processor's answers."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.placed = Counter(
            "orders_placed", "Orders placed (paid and confirmed).", registry=registry
        )
        self.failed = Counter(
            "orders_failed",
            "Orders that could not be placed, by ErrorInfo reason.",
            ["reason"],
            registry=registry,
        )
        self.revenue = Counter(
            "revenue_minor",
            "Total of placed orders in minor units (cents), by ISO 4217 currency.",
            ["currency"],
            registry=registry,
        )
        self.payment_duration = Histogram(
            "payment_duration_seconds",
            "Time the card processor took to answer, by operation.",
            ["operation"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=registry,
        )
        self.payment_outcomes = Counter(
            "payment_outcomes",
            "The card processor's answers, by operation and outcome.",
            ["operation", "outcome"],
            registry=registry,
        )
        self.outbox_lag = Gauge(
            "outbox_lag_seconds",
            "Age of the oldest order event not yet published to the event stream.",
            registry=registry,
        )


class ProductMetrics:
    """What the product service counts: stock-outs and lapsed reservations."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.stock_outs = Counter(
            "stock_outs",
            "Reservations refused because an item was out of stock.",
            registry=registry,
        )
        self.reservation_expiries = Counter(
            "reservation_expiries",
            "Reservations released by the sweeper because their order never completed.",
            registry=registry,
        )


class UserMetrics:
    """What the user service counts: sign-ins by outcome."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.sign_ins = Counter(
            "sign_ins",
            "Sign-in attempts, by outcome (success or the ErrorInfo reason).",
            ["outcome"],
            registry=registry,
        )


@dataclass(frozen=True)
class RpcObserver:
    """What to count when one RPC succeeds (with its response) or fails (with its reason)."""

    succeeded: Callable[[Any, Any], None]
    failed: Callable[[Any, str], None]


class BusinessEventsInterceptor(_AroundInterceptor):
    """Hands each observed unary RPC's outcome to its observer.

    Innermost in the chain, so it sees the domain error itself (its reason) before the
    error mapper turns it into a status.
    """

    def __init__(self, observers: Mapping[str, RpcObserver]) -> None:
        super().__init__()
        self._observers = observers

    @override
    def _wraps(self, method: str) -> bool:
        # A method nobody observes (every read) is served by its own handler: a wrapper
        # that only passes the call on cost a cached read a coroutine per call.
        return method in self._observers

    @override
    async def around_unary(
        self, method: str, request: Any, context: grpc.aio.ServicerContext[Any, Any], call: Unary
    ) -> Any:
        observer = self._observers.get(method)
        if observer is None:
            return await call(request, context)
        try:
            response = await call(request, context)
        except DomainError as error:
            observer.failed(request, str(error.reason))
            raise
        except Exception:
            observer.failed(request, UNEXPECTED)
            raise
        observer.succeeded(request, response)
        return response

    @override
    async def around_stream(
        self, method: str, request: Any, context: grpc.aio.ServicerContext[Any, Any], call: Stream
    ) -> AsyncIterator[Any]:
        async for item in call(request, context):
            yield item
