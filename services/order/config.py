"""Settings of the order service, read from ORDER_* environment variables."""

from __future__ import annotations

from typing import Self

from pydantic import Field, PostgresDsn, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from services.common.config import EventStreamSettings, SealedDataSettings
from services.order.domain.ledger import DEFAULT_COMMISSION_BPS

# The sandbox gateway's placeholder key; refused outside dev and test mode.
DEV_GATEWAY_API_KEY = "sandbox-gateway-dev-key"


class Settings(SealedDataSettings, EventStreamSettings):
    """The order service's settings on top of the shared ones."""

    model_config = SettingsConfigDict(env_prefix="ORDER_", extra="ignore", frozen=True)

    error_domain: str = "order.marketplace.example.com"

    database_url: PostgresDsn
    database_pool_size: int = Field(default=10, ge=1)
    # How long a request waits for a pooled connection before answering UNAVAILABLE.
    database_acquire_timeout_seconds: float = Field(default=5.0, gt=0)
    # host:port of the product service, whose internal API reserves stock.
    product_target: str = "product:50051"
    # host:port of the user service, whose internal API vouches for buyers and addresses.
    user_target: str = "user:50051"
    # The sandbox card processor's simulated latency per call.
    payment_latency_ms: int = Field(default=150, ge=0)
    # How long a gateway call may take before the payment counts as failed.
    payment_timeout_seconds: float = Field(default=5.0, gt=0)
    # How long a retry waits for the first request with its idempotency key to finish.
    idempotency_wait_seconds: float = Field(default=10.0, ge=0)
    # Redis, where the outbox relay publishes order events (stream below).
    redis_url: str = "redis://redis:6379/0"
    events_stream: str = "marketplace.order.events.v1"
    # The user event stream (user.deleted: erase the buyer's addresses and cart), read
    # with the `order-service` consumer group; off in tests of other features.
    consume_user_events: bool = True
    outbox_interval_seconds: float = Field(default=0.2, gt=0)
    # The outbox relay's poll while it is woken by NOTIFY: how long a lost notification
    # can delay an event (outbox_interval_seconds applies while it cannot listen).
    outbox_fallback_seconds: float = Field(default=5.0, gt=0)
    # The payment gateway's HTTP API (the sandbox gateway service in dev) and its API key.
    # Empty uses the in-process sandbox fake, which dev and test mode alone allow.
    payment_gateway_url: str = ""
    payment_gateway_api_key: SecretStr = SecretStr(DEV_GATEWAY_API_KEY)
    # An order untouched this long mid-saga is settled by the reconciler; longer than any
    # live saga can take (inventory + gateway timeouts with retries).
    reconcile_after_seconds: float = Field(default=60.0, ge=0)
    reconcile_interval_seconds: float = Field(default=2.0, gt=0)
    # A running saga leases its idempotency key for this long and renews it; after a crash
    # the reconciler takes the saga over once the lease lapses, so a retry gets its answer
    # within seconds of a restart.
    saga_lease_seconds: float = Field(default=10.0, gt=0)
    # A claimed cancel or refund is its process's for this long; then the reconciler may
    # finish it. Longer than a gateway call with its retries.
    change_lease_seconds: float = Field(default=30.0, gt=0)
    # How often a WatchOrder stream re-reads the order when no notification came.
    watch_recheck_seconds: float = Field(default=5.0, gt=0)
    # A cart checkout holds its cart this long unless it ends sooner; then a retry with the
    # same key may take over a checkout whose runner stopped. Longer than a checkout runs.
    cart_checkout_lease_seconds: float = Field(default=30.0, gt=0)
    # How many days after delivery a buyer may ask to return items.
    return_window_days: int = Field(default=30, ge=0)
    # The platform's commission on each seller's part of a captured order, in basis points
    # (1000 = 10 %); a refund gives back the commission in proportion.
    commission_bps: int = Field(default=DEFAULT_COMMISSION_BPS, ge=0, le=10_000)
    # How long a sale is held before its money is available to a payout run (7 days).
    payout_hold_seconds: float = Field(default=7 * 24 * 3600.0, ge=0)

    @model_validator(mode="after")
    def _real_gateway_outside_dev(self) -> Self:
        if not self.dev_mode:
            if not self.payment_gateway_url:
                raise ValueError("payment_gateway_url must be set outside dev mode")
            if self.payment_gateway_api_key.get_secret_value() == DEV_GATEWAY_API_KEY:
                raise ValueError("payment_gateway_api_key must be set outside dev mode")
        return self
