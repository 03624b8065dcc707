"""Settings of the order service, read from ORDER_* environment variables."""

from __future__ import annotations

from pydantic import Field, PostgresDsn
from pydantic_settings import SettingsConfigDict

from services.common.config import ServiceSettings


class Settings(ServiceSettings):
    """The order service's settings on top of the shared ones."""

    model_config = SettingsConfigDict(env_prefix="ORDER_", extra="ignore", frozen=True)

    database_url: PostgresDsn
    database_pool_size: int = Field(default=10, ge=1)
    # host:port of the product service, whose internal API reserves stock.
    product_target: str = "product:50051"
    # The sandbox card processor's simulated latency per call.
    payment_latency_ms: int = Field(default=150, ge=0)
    # How long a gateway call may take before the payment counts as failed.
    payment_timeout_seconds: float = Field(default=5.0, gt=0)
    # How long a retry waits for the first request with its idempotency key to finish.
    idempotency_wait_seconds: float = Field(default=10.0, ge=0)
