"""Settings of the product service, read from PRODUCT_* environment variables."""

from __future__ import annotations

from pydantic import MongoDsn, RedisDsn
from pydantic_settings import SettingsConfigDict

from services.common.config import ServiceSettings


class Settings(ServiceSettings):
    """The product service's settings: the common ones plus its MongoDB (and later Redis)."""

    model_config = SettingsConfigDict(env_prefix="PRODUCT_", extra="ignore", frozen=True)

    mongo_url: MongoDsn = MongoDsn("mongodb://127.0.0.1:27017")
    mongo_database: str = "marketplace_products"
    # The search cache comes in a later slice; nothing connects to Redis yet.
    redis_url: RedisDsn = RedisDsn("redis://127.0.0.1:6379/0")
    # How long a ReserveInventory call waits for a concurrent call with the same order id.
    reservation_wait_seconds: float = 5.0
    # How long a started reservation is protected from takeover by a retry of the same order.
    reservation_lease_seconds: float = 30.0
