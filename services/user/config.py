"""Settings of the user service, read from USER_* environment variables."""

from __future__ import annotations

from typing import Self

from pydantic import PostgresDsn, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from services.common.config import ServiceSettings
from services.user.adapters.signing import SigningKey


class Settings(ServiceSettings):
    """The user service's settings: its database, signing key and token lifetimes."""

    # Inputs stay out of validation errors: they would print secrets such as the key.
    model_config = SettingsConfigDict(
        env_prefix="USER_", extra="ignore", frozen=True, hide_input_in_errors=True
    )

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

    @field_validator("access_token_ttl_seconds", "refresh_token_ttl_seconds")
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
        return self

    def signing_key(self) -> SigningKey:
        """The configured signing key, or a fresh one in dev mode when none is set."""
        if self.signing_key_pem is None:
            return SigningKey.generate()
        return SigningKey.from_pem(self.signing_key_pem.get_secret_value())
