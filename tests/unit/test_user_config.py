"""The user service's settings: required values and refusals outside dev mode."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydantic import ValidationError

from services.user.adapters.signing import SigningKey
from services.user.config import Settings

URL = "postgresql://marketplace@127.0.0.1:5432/users"
DATA_KEK = "prod-1:" + base64.b64encode(bytes(range(32))).decode()


def make(**values: Any) -> Settings:
    return Settings(**{"database_url": URL, **values})


def test_production_without_a_signing_key_refuses_to_start() -> None:
    with pytest.raises(ValidationError, match="USER_SIGNING_KEY_PEM must be set"):
        make(
            environment="prod",
            internal_secret="a-real-secret-for-production",
            smtp_host="smtp.example.com",
            data_kek=DATA_KEK,
        )


def test_production_with_a_signing_key_loads_it() -> None:
    key = SigningKey.generate()
    settings = make(
        environment="prod",
        internal_secret="a-real-secret-for-production",
        signing_key_pem=key.to_pem(),
        smtp_host="smtp.example.com",
        data_kek=DATA_KEK,
    )
    assert settings.signing_key().kid == key.kid
    assert settings.data_keyring().primary.kek_id == "prod-1"


def test_production_without_a_data_kek_refuses_to_start() -> None:
    with pytest.raises(ValidationError, match="USER_DATA_KEK must be set outside dev mode"):
        make(
            environment="prod",
            internal_secret="a-real-secret-for-production",
            signing_key_pem=SigningKey.generate().to_pem(),
            smtp_host="smtp.example.com",
        )


def test_dev_mode_generates_a_key_when_none_is_set() -> None:
    settings = make(environment="dev")
    assert settings.signing_key_pem is None
    assert settings.signing_key().kid != settings.signing_key().kid


def test_a_key_that_is_not_ed25519_pem_is_refused() -> None:
    with pytest.raises(ValidationError, match="Ed25519"):
        make(environment="dev", signing_key_pem="-----BEGIN PRIVATE KEY-----\nnope\n")


def test_database_url_is_required() -> None:
    with pytest.raises(ValidationError, match="database_url"):
        Settings(environment="dev")


def test_settings_read_the_user_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER_DATABASE_URL", URL)
    monkeypatch.setenv("USER_ENVIRONMENT", "dev")
    monkeypatch.setenv("USER_SEED_DEMO_ACCOUNTS", "true")
    monkeypatch.setenv("USER_ACCESS_TOKEN_TTL_SECONDS", "60")
    settings = Settings()
    assert settings.seed_demo_accounts
    assert settings.access_token_ttl_seconds == 60
    assert settings.refresh_token_ttl_seconds == 30 * 24 * 3600
    assert settings.demo_password.get_secret_value() == "marketplace-demo"


def test_access_tokens_must_expire_before_refresh_tokens() -> None:
    with pytest.raises(ValidationError):
        make(environment="dev", access_token_ttl_seconds=100, refresh_token_ttl_seconds=100)


def test_production_without_smtp_refuses_to_start() -> None:
    with pytest.raises(ValidationError, match="USER_SMTP_HOST must be set"):
        make(
            environment="prod",
            internal_secret="a-real-secret-for-production",
            signing_key_pem=SigningKey.generate().to_pem(),
            data_kek=DATA_KEK,
        )


def test_previous_keys_are_read_from_a_pem_bundle() -> None:
    old, older, upcoming = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    settings = make(
        environment="dev",
        previous_signing_keys_pem=old.to_pem() + older.to_pem(),
        next_signing_key_pem=upcoming.to_pem(),
    )
    assert [k.kid for k in settings.previous_signing_keys()] == [old.kid, older.kid]
    next_key = settings.next_signing_key()
    assert next_key is not None and next_key.kid == upcoming.kid
    with pytest.raises(ValidationError):
        make(environment="dev", previous_signing_keys_pem="not a key")
