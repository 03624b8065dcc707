"""The user service's business metrics: sign-ins by outcome."""

from __future__ import annotations

from typing import Any

from services.common.business_metrics import RpcObserver, UserMetrics

LOGIN = "/marketplace.user.v1.UserService/Login"


def sign_in_observers(metrics: UserMetrics) -> dict[str, RpcObserver]:
    """Count each sign-in: `success`, or the reason it was refused."""

    def succeeded(_: Any, __: Any) -> None:
        metrics.sign_ins.labels("success").inc()

    def failed(_: Any, reason: str) -> None:
        metrics.sign_ins.labels(reason).inc()

    return {LOGIN: RpcObserver(succeeded=succeeded, failed=failed)}
