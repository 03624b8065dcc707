"""Settings of the user service, read from USER_* environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field, PostgresDsn, RedisDsn, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from services.common.config import EventStreamSettings, SealedDataSettings
from services.user.adapters.signing import SigningKey

_PEM_END = "-----END PRIVATE KEY-----"


def split_pem_bundle(bundle: str) -> list[SigningKey]:
    """The keys of one or more concatenated PKCS#8 PEM blocks."""
    blocks = [b.strip() for b in bundle.split(_PEM_END) if b.strip()]
    return [SigningKey.from_pem(f"{b}\n{_PEM_END}\n") for b in blocks]


class Settings(SealedDataSettings, EventStreamSettings):
    """The user service's settings: its database, signing key and token lifetimes."""

    # Inputs stay out of validation errors: they would print secrets such as the key.
    model_config = SettingsConfigDict(
        env_prefix="USER_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

    error_domain: str = "user.marketplace.example.com"

    database_url: PostgresDsn
    # PKCS#8 PEM of the Ed25519 key that signs access tokens. Required outside dev mode:
    # a generated key would change on every restart and sign everybody out.
    signing_key_pem: SecretStr | None = None
    access_token_ttl_seconds: int = 900
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    # The password of the demo accounts, seeded only in dev mode.
    demo_password: SecretStr = SecretStr("marketplace-demo")
    seed_demo_accounts: bool = False
    # Connections the service keeps to PostgreSQL.
    db_pool_min_size: int = 1
    db_pool_max_size: int = 10
    # Seconds a request waits for a free connection, and a statement may run, before the
    # call answers UNAVAILABLE instead of hanging on a stalled or exhausted database.
    db_acquire_timeout_seconds: float = Field(default=5.0, gt=0)
    db_command_timeout_seconds: float = Field(default=10.0, gt=0)

    # Key rotation (see the README): keys that signed recent tokens stay published so
    # those tokens verify until they expire; the next key is published before it signs,
    # so verifiers that cache the JWKS (Envoy: 60 s) already know it when it does.
    previous_signing_keys_pem: SecretStr | None = None
    next_signing_key_pem: SecretStr | None = None

    # Mail. Dev and tests write .eml files into mailbox_dir; production sends by SMTP.
    mailbox_dir: Path | None = None
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    mail_from: str = "Marketplace <no-reply@marketplace.example.com>"
    # Where the storefront serves the pages mailed links open.
    public_base_url: str = "http://localhost:8080"
    # The email relay polls this often only while it cannot LISTEN; woken by NOTIFY it
    # runs at once, and every email_relay_fallback_seconds for mail due after a backoff.
    email_relay_interval_seconds: float = 1.0
    email_relay_fallback_seconds: float = Field(default=5.0, gt=0)
    # How long a claimed mail is the claiming relay's: a relay that crashed mid-send
    # gives its mail back after this long. Longer than a batch of SMTP sends takes.
    email_relay_lease_seconds: float = Field(default=300.0, gt=0)
    verification_token_ttl_seconds: int = 48 * 3600
    reset_token_ttl_seconds: int = 30 * 60
    # A new verification or reset mail at most this often per account.
    mail_cooldown_seconds: int = 60

    # Order notifications: the order event stream in Redis, read with the `user-service`
    # consumer group. Without a URL no order mail is sent (tests of other features).
    redis_url: RedisDsn | None = None
    consume_order_events: bool = True
    order_events_stream: str = "marketplace.order.events.v1"
    # User events (user.deleted): the event outbox's relay publishes them to
    # `user_events_stream` (with a Redis URL) and keeps each until every one of these
    # consumer groups (the product and order services) has acknowledged it.
    user_event_groups: tuple[str, ...] = ("product-service", "order-service")
    event_relay_interval_seconds: float = Field(default=0.2, gt=0)

    # Brute-force protection of Login: failures per account and per client within the
    # window are slowed from `slowdown_after` on, and refused with RESOURCE_EXHAUSTED for
    # `lockout_seconds` at the maximum. The block always ends, so a victim is never
    # locked out for good, and a password reset lifts the account's block at once.
    login_window_seconds: int = 15 * 60
    login_account_max_failures: int = 10
    login_client_max_failures: int = 50
    login_lockout_seconds: int = 15 * 60
    login_slowdown_after: int = 3
    login_slowdown_ms: int = 200
    login_slowdown_max_ms: int = 3000

    # argon2id parameters; raising them rehashes each password at its next sign-in.
    password_time_cost: int = 3
    password_memory_kib: int = 65536
    password_parallelism: int = 4

    # The product service, asked whether wishlist products exist.
    product_target: str = "product:50051"
    # The order service, asked for a user's orders, returns and cart by the data export.
    order_target: str = "order:50051"

    @field_validator("signing_key_pem")
    @classmethod
    def _must_be_ed25519(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                SigningKey.from_pem(value.get_secret_value())
            except (ValueError, TypeError) as exc:
                raise ValueError(
                    f"signing_key_pem is not an Ed25519 PKCS#8 PEM key: {exc}"
                ) from None
        return value

    @field_validator("previous_signing_keys_pem", "next_signing_key_pem")
    @classmethod
    def _must_be_ed25519_bundle(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            try:
                split_pem_bundle(value.get_secret_value())
            except (ValueError, TypeError) as exc:
                raise ValueError(f"not Ed25519 PKCS#8 PEM keys: {exc}") from None
        return value

    @field_validator(
        "access_token_ttl_seconds",
        "refresh_token_ttl_seconds",
        "verification_token_ttl_seconds",
        "reset_token_ttl_seconds",
        "login_window_seconds",
        "login_account_max_failures",
        "login_client_max_failures",
        "login_lockout_seconds",
    )
    @classmethod
    def _positive(cls, value: int) -> int:
        if value <= 0:
            raise ValueError("must be positive")
        return value

    @model_validator(mode="after")
    def _signing_key_outside_dev_mode(self) -> Self:
        if not self.dev_mode and self.signing_key_pem is None:
            raise ValueError("USER_SIGNING_KEY_PEM must be set outside dev mode")
        if self.access_token_ttl_seconds >= self.refresh_token_ttl_seconds:
            raise ValueError("access tokens must expire before refresh tokens")
        if not self.dev_mode and not self.smtp_host:
            raise ValueError("USER_SMTP_HOST must be set outside dev mode")
        return self

    def previous_signing_keys(self) -> list[SigningKey]:
        """The retired keys whose tokens may still be live."""
        if self.previous_signing_keys_pem is None:
            return []
        return split_pem_bundle(self.previous_signing_keys_pem.get_secret_value())

    def next_signing_key(self) -> SigningKey | None:
        """The key published ahead of the next rotation, if any."""
        if self.next_signing_key_pem is None:
            return None
        return SigningKey.from_pem(self.next_signing_key_pem.get_secret_value())

    def signing_key(self) -> SigningKey:
        """The configured signing key, or a fresh one in dev mode when none is set."""
        if self.signing_key_pem is None:
            return SigningKey.generate()
        return SigningKey.from_pem(self.signing_key_pem.get_secret_value())
