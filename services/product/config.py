"""Settings of the product service, read from PRODUCT_* environment variables."""

from __future__ import annotations

from pydantic import Field, MongoDsn, RedisDsn
from pydantic_settings import SettingsConfigDict

from services.common.config import EventStreamSettings


class Settings(EventStreamSettings):
    """The product service's settings: the common ones plus MongoDB, Redis and timings."""

    model_config = SettingsConfigDict(env_prefix="PRODUCT_", extra="ignore", frozen=True)

    error_domain: str = "product.marketplace.example.com"

    mongo_url: MongoDsn = MongoDsn("mongodb://127.0.0.1:27017")
    mongo_database: str = "marketplace_products"
    # How long a call waits for a reachable MongoDB, and for one answer from it, before it
    # answers UNAVAILABLE (the driver's defaults, 30 s and forever, outlast every client).
    mongo_server_selection_timeout_seconds: float = Field(default=5.0, gt=0)
    mongo_socket_timeout_seconds: float = Field(default=15.0, gt=0)
    # The product cache and the order event stream.
    redis_url: RedisDsn = RedisDsn("redis://127.0.0.1:6379/0")
    # How long a cached product lives at most; writes refresh it long before that.
    cache_ttl_seconds: int = Field(default=300, ge=1)
    # A cache call slower than this is abandoned and the read goes to MongoDB.
    cache_timeout_seconds: float = Field(default=0.25, gt=0)
    # After a cache failure, Redis is left alone this long before it is tried again.
    cache_retry_after_seconds: float = Field(default=2.0, ge=0)
    # How long a ReserveInventory call waits for a concurrent call with the same order id.
    reservation_wait_seconds: float = 5.0
    # How long a started reservation is protected from takeover by a retry of the same order.
    reservation_lease_seconds: float = 30.0
    # How long reserved stock stays held without a commit or release before it returns.
    reservation_ttl_seconds: float = Field(default=900.0, gt=0)
    # How often the sweeper returns lapsed reservations and restates discounted prices.
    sweep_interval_seconds: float = Field(default=10.0, gt=0)
    # Whether to consume the order event stream (verified purchases, co-purchases).
    consume_order_events: bool = True
    # The Redis stream the order service publishes its events to.
    order_events_stream: str = "marketplace.order.events.v1"
    # Whether to consume the user event stream (a deleted account's reviews and listings).
    consume_user_events: bool = True
